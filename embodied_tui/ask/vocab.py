"""The names a question may use (``Vocabulary``: models, families, tasks, types, devices and their power modes, from
the registry graph) and the readers that find them in a question: model names, device names (a few words of a name or
an alias: 'jetson', 'orin nano', 'pi 5'), power modes ('at 15 W', 'MAXN'), families ('resnets', 'vision
transformers'), and the close matches offered for words no reader took.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from embodied_tui.ask.quantities import NUM, clean, number
from embodied_tui.ask.query import Condition
from embodied_tui.ask.text import QuestionText
from embodied_tui.ask.words import FAMILY_ALIASES, GENERIC_DEVICE_WORDS, KNOWN_FAMILIES, STOPWORDS, TYPE_TOKENS


@dataclass(frozen=True)
class DeviceTerm:
    """One device as a question may name it: id, name, vendor, aliases, and its power modes' names."""

    id: str
    name: str
    vendor: str = ""
    type: str = ""
    aliases: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()
    host: str | None = None  # the device this accelerator is paired with ('raspberry-pi-5' for the Pi 5 + Hailo-8L)


@dataclass(frozen=True)
class Vocabulary:
    """The names a question may use: from the registry graph (``services.graph.vocabulary``)."""

    models: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    devices: tuple[DeviceTerm, ...] = ()
    pipelines: tuple[str, ...] = ()  # stored pipeline names

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(sorted({m for d in self.devices for m in d.modes}))


def tokens(text: str) -> list[str]:
    """Letter runs and digit runs: 'Orin Nano 8GB' -> ['orin', 'nano', '8', 'gb']; 'pi5' -> ['pi', '5']."""
    return re.findall(r"[a-z]+|\d+", text.lower())


@dataclass
class _Device:
    term: DeviceTerm
    primary: frozenset[str]  # tokens of id + name + vendor
    every: frozenset[str]  # and of the aliases


def name_pattern(name: str) -> str:
    """A name as a pattern that also matches it spaced, dashed or dotted: 'resnet_tiny' ~ 'resnet tiny'."""
    parts = tokens(name)
    return r"[\s_.-]?".join(re.escape(p) for p in parts) if parts else re.escape(name.lower())


def read_power_modes(st: QuestionText, vocab: Vocabulary) -> None:
    """'at 15 W', '15W mode', 'in the 15 watt mode' -> h.power_w = 15; 'MAXN', 'maxn super', '<name> mode'."""
    for m in list(st.finditer(rf"(?:(?:at|in|on)\s+(?:the\s+)?)?(?P<num>{NUM})\s*-?\s*(?:w|watts?)"
                              rf"(?:\s+(?:power\s+)?mode)?|(?:at|in|on)\s+(?:the\s+)?(?P<num2>{NUM})\s*-?\s*"
                              rf"(?:w|watts?)")):
        value = number(m.group("num") or m.group("num2"))
        st.add(Condition(field="h.power_w", op="=", value=clean(value)), st.take(m.start(), m.end()))
    modes = {re.sub(r"[\s_-]", "", mode.lower()): mode for mode in vocab.modes}
    names = sorted(modes, key=len, reverse=True)
    distinctive = [n for n in names if n.startswith("maxn") or re.search(r"\d", n) and not re.fullmatch(r"\d+w", n)]
    for key in distinctive:
        parts = re.findall(r"[a-z]+|\d+(?:\.\d+)?", modes[key].lower())
        spelled = r"[\s_-]*".join(re.escape(part) for part in parts)
        for m in list(st.finditer(rf"(?:(?:at|in)\s+(?:the\s+)?)?{spelled}(?:\s+(?:power\s+)?mode)?")):
            st.add(Condition(field="h.power_mode", op="=", value=modes[key]), st.take(m.start(), m.end()))
    for m in list(st.finditer(r"(?:(?:at|in)\s+(?:the\s+)?)?(?P<name>[a-z0-9_.]+)\s+(?:power\s+)?mode")):
        key = re.sub(r"[\s_-]", "", m.group("name"))
        if key in modes:
            st.add(Condition(field="h.power_mode", op="=", value=modes[key]), st.take(m.start(), m.end()))


def read_devices(st: QuestionText, vocab: Vocabulary) -> None:
    """Device phrases: runs of words whose letter/digit tokens all belong to one device's names, with at least one
    distinctive word ('jetson', 'orin nano', 'pi 5', 'rtx 4090', 'a100'). Several devices may match: all are kept."""
    devices = [_Device(d, frozenset(tokens(" ".join((d.id, d.name, d.vendor)))),
                       frozenset(tokens(" ".join((d.id, d.name, d.vendor, *d.aliases))))) for d in vocab.devices]
    if not devices:
        return
    known = set().union(*(d.every for d in devices))
    text = st.masked()
    words = [(m.start(), m.end(), m.group(0)) for m in re.finditer(r"[a-z0-9]+(?:[-.][a-z0-9]+)*", text)]

    def toks(word: str) -> list[str]:
        t = tokens(word)
        if t and t[-1] not in known and t[-1].endswith("s") and t[-1][:-1] in known:  # jetsons, hailos
            t[-1] = t[-1][:-1]
        return t

    def anchor(word: str) -> bool:
        t = toks(word)
        if any(x.isalpha() and len(x) >= 2 and x not in GENERIC_DEVICE_WORDS for x in t):
            return True
        if any(x.isdigit() and len(x) >= 3 for x in t):
            return True
        return len(t) >= 2 and any(x.isdigit() for x in t) and any(x.isalpha() and x not in GENERIC_DEVICE_WORDS
                                                                   for x in t)

    # a device phrase is at most as long as the longest name or alias (in words): without this bound a run of words
    # that are all device tokens ('x x x ...', 'gpus gpus ...') was tried from every start to every end, cubic
    longest = max(len(re.findall(r"[a-z0-9]+(?:[-.][a-z0-9]+)*", text_.lower()))
                  for d in vocab.devices for text_ in (d.id, d.name, f"{d.vendor} {d.name}", *d.aliases))
    i = 0
    while i < len(words):
        best = None
        for j in range(i + 1, min(len(words), i + longest + 2) + 1):
            if j > i + 1 and text[words[j - 2][1]:words[j - 1][0]].strip():  # words must be adjacent
                break
            phrase = [t for w in words[i:j] for t in toks(w[2])]
            if not phrase or any(t not in known for t in phrase) or any(w[2] in STOPWORDS for w in words[i:j]):
                break
            if not any(anchor(w[2]) for w in words[i:j]):
                continue
            hits = [d for d in devices if set(phrase) <= d.every]
            typed = [t for t in phrase if t in TYPE_TOKENS]
            if typed:  # 'nvidia gpus' is a vendor and a type; 'orin nano cpu' is a device's name
                hits = [d for d in hits if set(typed) <= d.primary]
            if not hits:
                break
            primary = [d for d in hits if set(phrase) <= d.primary]
            best = (j, primary or hits)
        if best is None:
            i += 1
            continue
        j, hits = best
        hits = _without_pairs_of(hits, {t for w in words[i:j] for t in toks(w[2])})
        negated, start = st.negated_before(words[i][0])
        phrase = st.take(start, words[j - 1][1])
        ids = sorted(d.term.id for d in hits)
        cond = Condition(field="h.device", op="IN" if len(ids) > 1 else "=", value=ids if len(ids) > 1 else ids[0],
                         negate=negated)
        st.add(cond, phrase)
        i = j


def _without_pairs_of(hits: list, phrase: set[str]) -> list:
    """'pi 5' names the Raspberry Pi 5, not the Pi 5 + Hailo-8L pair whose names contain it too: a paired accelerator
    is dropped when its host is among the hits and the phrase has no word of the pair's that the host's names lack
    ('pi 5 hailo' keeps the pair)."""
    by_id = {d.term.id: d for d in hits}
    return [d for d in hits if not (d.term.host in by_id and phrase <= by_id[d.term.host].every)]


def read_model_names(st: QuestionText, vocab: Vocabulary) -> None:
    """Registered model names, longest first ('yolo_style_detector' before 'yolo'), negatable: ``m.name = ...``."""
    names = sorted(vocab.models, key=len, reverse=True)
    st.read_entities([(name_pattern(n), n) for n in names], "m.name")


def pipeline_patterns(names: tuple[str, ...]) -> list[tuple[str, str]]:
    """Each stored pipeline name as a pattern, longest first: its letters and digits with any one of space, '_', '.'
    or '-' allowed between them ('pi05' ~ 'pi0.5', 'pi 05'), and its leading word when no other pipeline shares it
    and it has 4 characters or more ('openvla' for 'openvla-7b')."""
    def spelled(text: str) -> str:
        return r"[\s_.-]?".join(re.escape(c) for c in re.sub(r"[^a-z0-9]", "", text.lower()))

    out = [(spelled(n), n) for n in names if re.search(r"[a-z0-9]", n.lower())]
    leads: dict[str, list[str]] = {}
    for n in names:
        lead = re.split(r"[-_.+]", n.lower())[0]
        if lead != n.lower() and len(lead) >= 4:
            leads.setdefault(lead, []).append(n)
    out += [(spelled(lead), found[0]) for lead, found in leads.items() if len(found) == 1 and lead not in names]
    return sorted(out, key=lambda pair: len(pair[0]), reverse=True)


def read_pipeline_names(st: QuestionText, vocab: Vocabulary) -> None:
    """Stored pipeline names (``p.name = ...``), read first: 'pi0.5' holds a number the thresholds would take."""
    st.read_entities(pipeline_patterns(vocab.pipelines), "p.name")


def read_families(st: QuestionText, vocab: Vocabulary) -> None:
    """Architecture families: the graph's and the well-known ones, plural or '-style'/'family', negatable."""
    families = sorted(set(vocab.families) | set(KNOWN_FAMILIES), key=len, reverse=True)
    patterns = [(rf"{re.escape(alias)}s?", fam) for alias, fam in FAMILY_ALIASES.items()]
    patterns.append((r"yolo(?:v\d+|-?v?\d+)?s?", "yolo"))
    patterns += [(rf"{name_pattern(f)}(?:e?s)?", f) for f in families if f not in ("unknown", "yolo")]
    patterns = [(rf"(?:{p})(?:[\s-]+(?:family|families|style|like|based))?", f) for p, f in patterns]
    st.read_entities(patterns, "m.family", "model")


def leftovers(st: QuestionText, vocab: Vocabulary) -> list[str]:
    """The words no reader took (stopwords aside), each with a note: the closest known name ('did you mean'), or that
    a bare number has no unit."""
    words = []
    for m in re.finditer(r"[^\s\x00?!,;:()\"]+", st.masked()):
        word = m.group(0).strip(".'")
        if not word or word in STOPWORDS or not re.search(r"[a-z0-9]", word):
            continue
        words.append(st.raw[m.start():m.end()].strip(".'\"?!,;:"))
    terms = (list(vocab.models) + list(vocab.pipelines) + list(vocab.families) + list(KNOWN_FAMILIES) + list(vocab.tasks)
             + [t for d in vocab.devices for t in tokens(f"{d.name} {' '.join(d.aliases)}")
                if len(t) >= 3 and t not in GENERIC_DEVICE_WORDS]
             + ["fastest", "slowest", "smallest", "largest", "cheapest", "headroom", "detectors", "classifiers",
                "segmentation", "policies", "params", "parameters", "memory", "measured", "transformers"])
    for word in words:
        close = difflib.get_close_matches(word.lower(), sorted(set(terms)), n=1, cutoff=0.75)
        if close:
            st.notes.append(f"'{word}' was not understood (did you mean '{close[0]}'?)")
        elif re.fullmatch(r"[\d.,]+", word):
            st.notes.append(f"'{word}' has no unit (ms, fps, W, MB, M params, GMACs ...): ignored")
    return words
