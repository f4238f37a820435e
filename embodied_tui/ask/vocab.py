"""The names a question may use (``Vocabulary``: models, families, tasks, types, devices and their power modes, from
the registry graph) and the readers that find them in a question: model names, device names (a few words of a name or
an alias: 'jetson', 'orin nano', 'pi 5'), power modes ('at 15 W', 'MAXN'), families ('resnets', 'vision
transformers'), and the close matches offered for words no reader took.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Mapping

from embodied_tui.ask.quantities import NUM, clean, number
from embodied_tui.ask.query import MAX_IN_VALUES, Comparison, Condition, Reading, Relative
from embodied_tui.ask.text import QuestionText
from embodied_tui.ask.words import FAMILY_ALIASES, GENERIC_DEVICE_WORDS, KNOWN_FAMILIES, STOPWORDS, TYPE_TOKENS, YES_NO


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
    watts: tuple[float | None, ...] = ()  # each mode's power budget, as ``modes``


@dataclass(frozen=True)
class Vocabulary:
    """The names a question may use: from the registry graph (``services.graph.vocabulary``)."""

    models: tuple[str, ...] = ()
    families: tuple[str, ...] = ()
    tasks: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    devices: tuple[DeviceTerm, ...] = ()
    pipelines: tuple[str, ...] = ()  # stored pipeline names
    # model name -> its sizes ({"m.params": ..., "m.macs": ..., "m.weight_bytes": ..., "m.input_shape": '1x3x224x224'};
    # None where not known), for 'lighter than resnet50' and 'models taking 224x224 inputs'; and model name -> its
    # tags ({"robot": "", "site": "lab"}), for 'the robot tag'
    sizes: Mapping[str, Mapping[str, float | None]] = dc_field(default_factory=dict, compare=False, hash=False)
    tags: Mapping[str, Mapping[str, str]] = dc_field(default_factory=dict, compare=False, hash=False)

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
    names: tuple[tuple[str, ...], ...] = ()  # the tokens of its id, name and each alias, in order

    def holds(self, word: list[str]) -> bool:
        """Whether a word of several tokens with a digit ('2gb', 'pi5') is said in one of its names as it is written
        (its tokens side by side): the 2 of 'JetPack 6.2' in a name is no '2 GB'."""
        n = len(word)
        return any(tuple(word) == seq[i:i + n] for seq in self.names for i in range(len(seq) - n + 1))


def name_pattern(name: str) -> str:
    """A name as a pattern that also matches it spaced, dashed or dotted: 'resnet_tiny' ~ 'resnet tiny'."""
    parts = tokens(name)
    return r"[\s_.-]?".join(re.escape(p) for p in parts) if parts else re.escape(name.lower())


_EXTREME_MODE = (r"(?:(?:at|in|on)\s+)?(?:(?:its|their|the|a)\s+)?(?P<d>lowest|min(?:imum)?|least|smallest|low|highest|"
                 r"max(?:imum)?|top|full|most|high)[\s-]+power(?:[\s-]+(?:mode|setting|profile|budget))?|"
                 r"(?:at|on)\s+full\s+power|(?:the\s+)?peak\s+power(?:\s+(?:draw|budget|consumption))?")


def read_mode_extremes(st: QuestionText) -> None:
    """'in its lowest power mode', 'at full power': taken before mode names are read ('max power mode' is no mode
    named 'max'); ``resolve_mode_extremes`` turns it into the modes once the devices are read."""
    for m in list(st.finditer(_EXTREME_MODE)):
        of = re.match(r"\s+of\b", st.low[m.end():]) is not None  # 'the max power of the orin nx': its top mode
        if (re.search(r"mode|setting|profile|its|their|full|peak", m.group(0)) or of) and st.mode_extreme is None:
            low = (m.group("d") or "max") in ("lowest", "min", "minimum", "least", "smallest", "low")
            st.mode_extreme = ("lowest" if low else "highest", st.take(m.start(), m.end()))


def resolve_mode_extremes(st: QuestionText, vocab: Vocabulary) -> None:
    """Each named device's (or every device's) lowest- or highest-power mode (ties: each): ``h.device_mode IN
    ['device/mode', ...]``."""
    if st.mode_extreme is None:
        return
    which, phrase = st.mode_extreme
    named = {v for c in st.conditions if c.field == "h.device" and not c.negate
             for v in (c.value if isinstance(c.value, list) else [c.value])}
    picked: set[str] = set()
    for d in vocab.devices:
        if named and d.id not in named:
            continue
        known = [(w, mode) for w, mode in zip(d.watts, d.modes) if w is not None]
        if known:
            best = (min if which == "lowest" else max)(w for w, _ in known)
            picked |= {f"{d.id}/{mode}" for w, mode in known if w == best}
    if not picked:
        st.reasons.append(f"'{phrase}': no power mode with a stated power budget")
        return
    st.add(one_of("h.device_mode", sorted(picked)), phrase)
    shown = ", ".join(sorted(picked)[:6]) + (f" and {len(picked) - 6} more" if len(picked) > 6 else "")
    st.notes.append(f"'{phrase}' read as each device's {which}-power mode: {shown}")


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
                       frozenset(tokens(" ".join((d.id, d.name, d.vendor, *d.aliases)))),
                       tuple(tuple(tokens(text_)) for text_ in (d.id, d.name, *d.aliases))) for d in vocab.devices]
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
    # each word is read once: its tokens, whether all are device tokens, whether it anchors a phrase
    word_toks = [toks(w[2]) for w in words]
    usable = [bool(t) and all(x in known for x in t) and w[2] not in STOPWORDS for w, t in zip(words, word_toks)]
    anchors = [anchor(w[2]) for w in words]
    exact_names = {d.term.id: ("".join(tokens(d.term.id)), "".join(tokens(d.term.name))) for d in devices}
    previous = None  # (end, ids, condition, phrase) of the last device phrase read
    i = 0
    while i < len(words):
        best = None
        unknown = None  # the end of a phrase whose last word (a size, a model number) no device of it holds
        spoken: list[str] = []
        anchored = False
        for j in range(i + 1, min(len(words), i + longest + 2) + 1):
            if j > i + 1 and text[words[j - 2][1]:words[j - 1][0]].strip():  # words must be adjacent
                break
            if not usable[j - 1]:
                break
            spoken += word_toks[j - 1]
            anchored = anchored or anchors[j - 1]
            if not anchored:
                continue
            hits = [d for d in devices if set(spoken) <= d.every]
            mixed = [t for t in word_toks[i:j] if len(t) > 1 and any(x.isdigit() for x in t)]  # '2gb', 'pi5'
            if mixed:
                hits = [d for d in hits if all(d.holds(t) for t in mixed)]
            typed = [t for t in spoken if t in TYPE_TOKENS]
            if typed:  # 'nvidia gpus' is a vendor and a type; 'orin nano cpu' is a device's name
                hits = [d for d in hits if set(typed) <= d.primary]
            if not hits:
                last = word_toks[j - 1]
                if best is not None and len(last) > 1 and any(x.isdigit() for x in last):
                    unknown = j  # 'jetson nano 2gb', 'orin nano 16gb': no such device, not the nearest
                break
            primary = [d for d in hits if set(spoken) <= d.primary]
            said = "".join(spoken)  # a device named exactly ('hailo-8') is that device, not every one containing it
            exact = [d for d in hits if said in exact_names[d.term.id]]
            best = (j, exact or primary or hits)
        if best is None:
            i += 1
            continue
        j, hits = best
        if unknown == j + 1:
            _no_such_device(st, st.take(words[i][0], words[j][1]), [d.term.id for d in hits])
            i = j + 1
            continue
        hits = _without_pairs_of(hits, {t for k in range(i, j) for t in word_toks[k]})
        negated, start = st.negated_before(words[i][0])
        # 'every jetson', 'both the pi 4 and the pi 5': a model must have a row on each (``every_device``)
        if re.search(r"(?:every|each|all|both)\s+(?:of\s+)?(?:the\s+)?$", text[:words[i][0]]):
            st.every_device = True
        phrase = st.take(start, words[j - 1][1])
        ids = sorted(d.term.id for d in hits)
        if negated and re.match(r"(?:can\s*not|can'?t|cannot|won'?t|will\s+not|doesn'?t|does\s+not|don'?t|do\s+not)"
                                r"\s+(?:run|work)", phrase.lower()):
            # 'which models can't run on the coral': the device named, the models that do not fit its memory
            st.add(one_of("h.device", ids), phrase)
            st.add(Condition(field="r.fits_memory", op="=", value=False), phrase)
            st.notes.append(f"'{phrase}' read as on {', '.join(ids)} without fitting its memory (every model has a "
                            f"predicted latency everywhere)")
            i = j
            continue
        if previous is not None and not negated and start == words[i][0] and j == i + 1 \
                and not text[previous[0]:start].strip() and not set(ids) & set(previous[1]):
            # 'jetson agx xavier': two device phrases side by side that share no device name one the catalog lacks
            st.conditions.remove(previous[2])
            st.readings[:] = [r for r in st.readings if r.phrase != previous[3]]
            _no_such_device(st, f"{previous[3]} {phrase}", [*previous[1], *ids])
            previous = None
            i = j
            continue
        st.add(one_of("h.device", ids, negated), phrase)
        previous = (words[j - 1][1], ids, st.conditions[-1], phrase)
        # 'list the jetsons', 'how many orins': a plural device word not after 'on'/'for' ... lists the devices
        plural = tokens(words[j - 1][2])[-1:] != word_toks[j - 1][-1:]
        before = re.findall(r"[a-z']+", text[:words[i][0]])[-1:]
        if plural and not (before and before[0] in _PLACE_WORDS):
            st.subject_votes.append((words[i][0], "hardware"))
        i = j


def _no_such_device(st: QuestionText, phrase: str, close: list[str]) -> None:
    """Refuse a device phrase the catalog has no device of ('jetson nano 2gb', 'jetson agx xavier'), naming the
    devices its words came close to: never read as those."""
    st.reasons.append(f"'{phrase}': no device of that name in the catalog (close: {', '.join(sorted(set(close)))}; "
                      f"`embodied-ai hw list`)")


# the words before a device that make it where models run ('on jetsons'), not what the answer lists
_PLACE_WORDS = frozenset({"on", "for", "with", "in", "at", "to", "across", "onto", "than", "vs", "versus", "using",
                          "over", "from", "between", "and", "or"})


def _without_pairs_of(hits: list, phrase: set[str]) -> list:
    """'pi 5' names the Raspberry Pi 5, not the Pi 5 + Hailo-8L pair whose names contain it too: a paired accelerator
    is dropped when its host is among the hits and the phrase has no word of the pair's that the host's names lack
    ('pi 5 hailo' keeps the pair)."""
    by_id = {d.term.id: d for d in hits}
    return [d for d in hits if not (d.term.host in by_id and phrase <= by_id[d.term.host].every)]


_TOKEN = re.compile(r"[a-z]+|\d+")


def _name_index(models: tuple[str, ...]) -> tuple[dict[str, str], int]:
    """Each model name by its tokens joined ('resnet_tiny' -> 'resnettiny'; the first of the longest names wins a
    shared key), and the most tokens in a name."""
    index: dict[str, str] = {}
    most = 1
    for n in sorted(models, key=len, reverse=True):
        parts = tokens(n)
        if parts:
            index.setdefault("".join(parts), n)
            most = max(most, len(parts))
    return index, most


# short forms people write inside a model's name, read as the word the name holds ('effnet b0' is efficientnet_b0,
# 'rn50' resnet50); tried only where the name as written matches no model
NAME_WORDS = {"effnet": "efficientnet", "effnetv2": "efficientnetv2", "rn": "resnet", "mnet": "mobilenet",
              "mbnet": "mobilenet", "mobnet": "mobilenet", "sqznet": "squeezenet"}


def read_model_names(st: QuestionText, vocab: Vocabulary) -> None:
    """Registered model names as people write them (``name_pattern``: spaced, dashed or dotted, 'resnet_tiny' ~
    'resnet tiny'), the longest run of words first ('yolo_style_detector' before 'yolo'), negatable:
    ``m.name = ...``. One pass over the question's tokens with a lookup by name, so the cost does not grow with the
    number of models (10,000 patterns tried one by one took about 1 s a question)."""
    index, most = _name_index(vocab.models)
    if not index:
        return
    text = st.masked()
    toks = [(m.start(), m.end(), m.group(0)) for m in _TOKEN.finditer(text)]
    i = 0
    while i < len(toks):
        found = None
        if toks[i][0] == 0 or not re.match(r"[a-z0-9_]", text[toks[i][0] - 1]):
            for n in range(min(most, len(toks) - i), 0, -1):
                run = toks[i:i + n]
                gaps = [text[a[1]:b[0]] for a, b in zip(run, run[1:])]
                if any(len(g) > 1 or (g and g not in " _.-") for g in gaps):
                    continue
                end = run[-1][1]
                if end < len(text) and re.match(r"[a-z0-9_]", text[end]):
                    continue
                name = index.get("".join(t for _, _, t in run))
                if name is None and any(t in NAME_WORDS for _, _, t in run):  # 'effnet b0' ~ efficientnet_b0
                    name = index.get("".join(NAME_WORDS.get(t, t) for _, _, t in run))
                if name is not None:
                    found = (name, n, end)
                    break
        if found is None:
            i += 1
            continue
        name, n, end = found
        negated, start = st.negated_before(toks[i][0])
        st.add(Condition(field="m.name", op="=", value=name, negate=negated), st.take(start, end))
        i += n


def one_of(field: str, values: list[str], negate: bool = False) -> Condition:
    """``field = value`` for one value, ``field IN [...]`` for several (a device phrase's ids, a tag's models, every
    stored pipeline)."""
    return Condition(field=field, op="IN" if len(values) > 1 else "=",
                     value=values if len(values) > 1 else values[0], negate=negate)


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
    for m in list(st.finditer(r"(?:the\s+|all\s+|every\s+|our\s+|stored\s+)*(?:pipelines|policy\s+pipelines)")):
        phrase = st.take(m.start(), m.end())  # 'which pipelines run on the orin nano', 'list pipelines'
        if not vocab.pipelines:
            st.reasons.append(f"'{phrase}': no pipeline is stored (add one with `embodied-ai pipeline register "
                              f"SPEC`)")
            continue
        names = sorted(vocab.pipelines)
        negated, _ = st.negated_before(m.start())
        if negated:
            continue
        if len(names) > MAX_IN_VALUES:
            st.reasons.append(f"'{phrase}': {len(names):,} pipelines are stored, more than one question can name; "
                              f"name one, or list them with `embodied-ai pipeline list`")
            continue
        st.conditions.append(one_of("p.name", names))
        st.readings.append(Reading(phrase=phrase, meaning=f"every stored pipeline: {', '.join(names)}"))
    if not any(c.field == "p.name" for c in st.conditions):
        return
    # 'which pipelines meet their rate', 'where does pi05 not hit its control rate': the device holds the pipeline's own
    # rate (a yes/no question, 'does pi05 hold its rate on X', lists every row with its verdict instead)
    rate = r"\s+(?:its|their|the)\s+(?:own\s+)?(?:control\s+)?(?:rates?|frequency|frequencies|loops?|deadlines?)"
    held = (r"(?P<held>meets?|meeting|hits?|hitting|holds?|holding|reach(?:es)?|reaching|makes?|making|"
            r"keeps?\s+up\s+with)|(?P<missed>miss(?:es|ing)?|falls?\s+short\s+of|falling\s+short\s+of)")
    for m in list(st.finditer(rf"(?:{held}){rate}")):
        if re.match(YES_NO, st.low):  # 'does pi05 meet its rate on X': every row, each with its verdict
            st.readings.append(Reading(phrase=st.take(m.start(), m.end()),
                                       meaning="the verdict: does r.rate_hz reach the pipeline's own rate?"))
            continue
        negated, start = st.negated_before(m.start())
        st.add(Condition(field="r.meets_rate", op="=", value=negated == bool(m.group("missed"))),
               st.take(start, m.end()))
    for m in list(st.finditer(r"(?:at\s+)?(?:its|their|the)\s+(?:own\s+)?control\s+(?:rate|frequency|loop)")):
        st.readings.append(Reading(phrase=st.take(m.start(), m.end()),  # no rate asked: the pipeline's own
                                   meaning="the pipeline's own rate (p.rate_hz)"))
    for m in list(st.finditer(r"(?:a\s+|the\s+|one\s+)?control\s+(?:period|step|cycle|tick)")):
        st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning="the measure is r.total_ms"))
    for m in list(st.finditer(r"(?:the\s+|what\s+)?control\s+(?:rates?|frequency|frequencies|hz)")):
        st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning="the measure is r.rate_hz"))


def read_families(st: QuestionText, vocab: Vocabulary) -> None:
    """Architecture families: the graph's and the well-known ones, plural or '-style'/'family', negatable."""
    families = sorted(set(vocab.families) | set(KNOWN_FAMILIES), key=len, reverse=True)
    patterns = [(rf"{re.escape(alias)}s?", fam) for alias, fam in FAMILY_ALIASES.items()]
    # 'yolo', 'yolos', 'yolov8', 'yolo11': the family; 'yolov8s' is a model (YOLOv8-small), not yolov8 plural
    patterns.append((r"yolos?|yolo(?:v\d+|-?v?\d+)", "yolo"))
    patterns += [(rf"{name_pattern(f)}(?:e?s)?", f) for f in families if f not in ("unknown", "yolo")]
    patterns = [(rf"(?:{p})(?:[\s-]+(?:family|families|style|like|based))?", f) for p, f in patterns]
    st.read_entities(patterns, "m.family", "model")


CORRECTABLE_WORDS = ("fastest", "slowest", "smallest", "largest", "cheapest", "headroom", "detectors",
                     "classifiers", "segmentation", "policies", "params", "parameters", "memory", "measured",
                     "transformers", "latency", "bandwidth", "devices", "models", "model", "device")
CORRECTION_CUTOFF = 0.8  # difflib ratio at which a word not understood is taken for a misspelt name
# words spelt right that are close to a known one ('large' is 0.83 of 'largest'): never corrected into it (a
# superlative would turn 'large detectors' into the one largest)
_PLAIN_WORDS = frozenset({"efficient", "efficiently", "large", "larger", "small", "smaller", "fast", "faster", "slow",
                          "slower", "light", "lighter", "heavy", "heavier", "big", "bigger", "cheap", "cheaper"})


_NAMES: list = [None, None, None]  # [the vocabulary, its names, their set]: the last one asked about


def _names(vocab: Vocabulary) -> tuple[list[str], frozenset[str]]:
    """What a misspelt word may have meant: model, pipeline and family names, device words (3+ letters, not
    generic), tasks; made once per vocabulary (a question corrects a word up to 3 times, each reading it again)."""
    if _NAMES[0] is vocab:
        return _NAMES[1], _NAMES[2]
    device_words = [t for d in vocab.devices for t in tokens(f"{d.name} {' '.join(d.aliases)}")
                    if len(t) >= 3 and t not in GENERIC_DEVICE_WORDS and t.isalpha()]
    names = sorted(set(list(vocab.models) + list(vocab.pipelines) + list(vocab.families) + list(KNOWN_FAMILIES)
                       + list(vocab.tasks) + device_words + list(CORRECTABLE_WORDS)))
    _NAMES[:] = [vocab, names, frozenset(names)]
    return names, _NAMES[2]


def close_names(word: str, vocab: Vocabulary) -> list[str]:
    """The known names within ``CORRECTION_CUTOFF`` of ``word`` (at most 3, closest first); none for a word of fewer
    than 4 characters or a number. Each name is ruled out by difflib's cheap upper bounds of its ratio (lengths, then
    letters: ``real_quick_ratio``, ``quick_ratio``, as ``difflib.get_close_matches``) before the ratio itself is
    computed: at 10,000 model names a misspelt word took ~0.25 s, most of it on names of another length."""
    low = word.lower()
    if len(low) < 4 or not re.search(r"[a-z]", low) or re.search(r"\s", low) or re.fullmatch(r"[\d.,]+[a-z]?", low):
        return []
    names, known = _names(vocab)
    if low in known or low in _PLAIN_WORDS:
        return []
    matcher = difflib.SequenceMatcher()
    matcher.set_seq1(low)  # as SequenceMatcher(None, low, name): the ratio is not symmetric in every case
    scored = []
    size = len(low)
    for n in names:
        if 2.0 * min(size, len(n)) / (size + len(n)) < CORRECTION_CUTOFF:  # real_quick_ratio, before any index
            continue
        matcher.set_seq2(n)
        if matcher.quick_ratio() >= CORRECTION_CUTOFF:
            ratio = matcher.ratio()
            if ratio >= CORRECTION_CUTOFF:
                scored.append((-ratio, n))
    scored = [(-r, n) for r, n in sorted(scored)]
    best = scored[0][0] if scored else 0.0
    # 'mobilnet_v2' is 0.96 of mobilenet_v2 and 0.80 of the family mobilenet: only the nearest (within 0.05) count
    return [n for r, n in scored if r >= max(CORRECTION_CUTOFF, best - 0.05)][:3]


_ON = re.compile(r"(?<![a-z])(?:on|onto)\s+(?:an?|the|my|our|your|some)?\s*$")
_MEASURE_BEFORE = re.compile(r"(?<![a-z])(?:best|highest|lowest|top|worst|most|least|max(?:imum)?|"
                             r"min(?:imum)?|better|worse)\s+$")
_OF_AFTER = re.compile(r"\s+of\s")
# 'what's the weather on X', 'how hot does X get': the word asked for is one ask does not hold
_ASKED_SLOT = re.compile(r"(?:^|[^a-z])(?:(?:what|which)(?:'s|\s+is|\s+are|\s+was)\s+(?:the\s+|its\s+|their\s+)?|how\s+)$")
_HOW_WORDS = ("fast", "slow", "quick", "quickly", "big", "large", "heavy", "small", "light", "long", "much", "many")
_AGGREGATES = frozenset({"average", "averages", "avg", "mean", "median", "sum", "aggregate", "aggregated"})
# what ask holds no data on: asked about, the question is refused, whatever else it names
_OUT_OF_SCOPE = re.compile(r"accuracy|accurate|precision@\w+|recall|map(?:50)?(?:-95)?|miou|iou|top-?[15]|f1|bleu|"
                           r"perplexity|cost|costs|price|prices|priced|dollars?|usd|eur|trained|training|dataset|"
                           r"datasets|imagenet|coco|license|licence|author|authors")


def _unknown_target_or_measure(st: QuestionText, word: str, start: int, end: int) -> None:
    """A word not understood where a device goes ('on an iphone', when no device is named) or where the measure asked
    goes ('the accuracy of X', 'the best mAP'), or a measure ask holds no data on (accuracy, datasets, prices): the
    rest of the question cannot answer it (dropping it would silently widen the answer), so it is a reason to refuse,
    said in words."""
    if re.fullmatch(r"[\d.,+-]+", word):
        return
    before, after = st.low[:start], st.low[end:]
    if word.startswith(("$", "€", "£")):
        st.reasons.append(f"'{word}': ask holds no data on prices; it answers latency, fps, energy, memory, power, "
                          f"params, MACs, FLOPs and weight bytes")
    elif word.lower() == "better" and not any(c.field.startswith("r.") for c in st.conditions):
        st.reasons.append("'better': say which measure (faster, smaller, lighter, more efficient); ask holds no "
                          "accuracy data")
    elif word.lower() in _AGGREGATES:
        st.reasons.append(f"'{word}': ask lists rows and counts them; it does not compute averages, medians or sums "
                          f"(the rows it lists hold each value)")
    elif word.lower() in ("watt", "watts", "w") and re.search(r"(?:tops|tflops|flops)\s+(?:per|/)\s*$", before):
        st.reasons.append(f"'per {word}': peak per watt is not a stored measure; ask for the peak (TOPS) and the power "
                          f"(W) apart, or 'most efficient' for a model's energy per inference")
    elif _OUT_OF_SCOPE.fullmatch(word.lower()):
        st.reasons.append(f"'{word}': ask holds no data on accuracy, training data or prices; it answers latency, "
                          f"fps, energy, memory, power, params, MACs, FLOPs and weight bytes")
    elif _ON.search(before) and not any(c.field.startswith("h.") for c in st.conditions):  # no device named
        st.reasons.append(f"'{word}': no device or model of that name here (devices: `embodied-ai hw list`; models: "
                          f"`embodied-ai model list`)")
    elif _MEASURE_BEFORE.search(before) or (_OF_AFTER.match(after) and re.search(r"(?:what|which|how)", before)) \
            or (_ASKED_SLOT.search(before) and not difflib.get_close_matches(word.lower(), _HOW_WORDS, cutoff=0.7)):
        st.reasons.append(f"'{word}' is not a measure ask knows: it answers latency, fps, energy, memory, power, "
                          f"params, MACs, FLOPs and weight bytes, not accuracy or price")


def leftovers(st: QuestionText, vocab: Vocabulary) -> list[str]:
    """The words no reader took (stopwords aside), each with a note: the closest known name ('did you mean'), or that
    a bare number has no unit."""
    words = []
    for m in re.finditer(r"[^\s\x00?!,;:()\"]+", st.masked()):
        word = m.group(0).strip(".'")
        if not word or word in STOPWORDS or not re.search(r"[a-z0-9]", word):
            continue
        words.append(st.raw[m.start():m.end()].strip(".'\"?!,;:"))
        _unknown_target_or_measure(st, words[-1], m.start(), m.end())
    terms = (list(vocab.models) + list(vocab.pipelines) + list(vocab.families) + list(KNOWN_FAMILIES) + list(vocab.tasks)
             + [t for d in vocab.devices for t in tokens(f"{d.name} {' '.join(d.aliases)}")
                if len(t) >= 3 and t not in GENERIC_DEVICE_WORDS]
             + list(CORRECTABLE_WORDS))
    known = sorted(set(terms))
    # a word much longer than every term cannot be 0.75 like one (the ratio is at most 2 * shorter / (sum of both)):
    # skipping those, and reading each distinct word once, keeps a long question of one long word linear
    reach = max((len(t) for t in known), default=0) * (2 / 0.75 - 1)
    close_to: dict[str, list[str]] = {}
    for word in words:
        low = word.lower()
        if low not in close_to:
            close_to[low] = (difflib.get_close_matches(low, known, n=1, cutoff=0.75) if len(low) <= reach else [])
        close = close_to[low]
        if close and close[0] == low:  # a known word, but nothing here reads it in this place
            st.notes.append(f"'{word}' was not understood here")
        elif close:
            st.notes.append(f"'{word}' was not understood (did you mean '{close[0]}'?)")
        elif re.fullmatch(r"[\d.,]+", word):
            st.notes.append(f"'{word}' has no unit (ms, fps, W, MB, M params, GMACs ...): ignored")
    return words


# ------------------------------------------------------------------------------------------------ relative, tags

_RELATIVE = [  # words before 'than <model>' -> (field, op)
    (r"lighter|smaller|fewer\s+(?:param(?:eter)?s|weights)|less\s+(?:heavy|big)", "m.params", "<"),
    (r"heavier|bigger|larger|more\s+(?:param(?:eter)?s|weights)", "m.params", ">"),
    (r"fewer\s+(?:g?macs|g?flops)|less\s+compute|cheaper(?:\s+(?:to\s+run|in\s+compute))?", "m.macs", "<"),
    (r"more\s+(?:g?macs|g?flops)|more\s+compute|costlier|more\s+expensive", "m.macs", ">"),
]


def _name_keys(vocab: Vocabulary) -> dict[str, str]:
    return {"".join(tokens(n)): n for n in vocab.models}


def _name_after(st: QuestionText, end: int, keys: dict[str, str]) -> tuple[str, int] | None:
    """The model name that starts right after ``end`` (spaced, dashed or dotted as people write it): (name, end)."""
    text = st.masked()
    words = list(re.finditer(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*", text[end:end + 120]))
    if words and text[end:end + words[0].start()].strip() not in ("", "the", "a", "an"):
        return None
    for n in range(min(4, len(words)), 0, -1):
        key = "".join(t for w in words[:n] for t in tokens(w.group(0)))
        if key in keys:
            return keys[key], end + words[n - 1].end()
    return None


def read_relative(st: QuestionText, vocab: Vocabulary) -> None:
    """'lighter than resnet50', 'fewer MACs than mobilenet_v2', 'heavier than X': a threshold at that model's own
    size (params, or MACs), strict, so the model itself is not in the answer. Read before model names. A model whose
    size is not known cannot be compared: the question is refused with that reason."""
    keys = _name_keys(vocab)
    referenced: list[str] = []
    for pattern, fld, op in _RELATIVE:
        for m in list(st.finditer(rf"(?:{pattern})\s+than(?=\s)")):
            found = _name_after(st, m.end(), keys)
            if found is None or (st.yes_no and _name_before(st, m.start(), keys)):
                continue  # 'is A bigger than B?': two models compared (read_comparison), not a threshold
            name, end = found
            phrase = st.take(m.start(), end)
            value = (vocab.sizes.get(name) or {}).get(fld)
            if value is None:
                st.reasons.append(f"'{phrase}': {fld.split('.')[1]} of {name} is not known, so nothing can be "
                                  f"compared with it")
                continue
            st.add(Condition(field=fld, op=op, value=value), phrase)
            st.notes.append(f"'{phrase}' read as {fld} {op} {value:,.0f} ({name}'s own)")
            referenced.append(name)
    if len(set(referenced)) == 1:  # 'more MACs than resnet50 but fewer params': the same model, not named again
        name = referenced[0]
        for pattern, fld, op in _RELATIVE:
            for m in list(st.finditer(rf"(?:but|and|yet|while)\s+(?:(?:with|has|have|having)\s+)?(?:{pattern})"
                                      rf"(?!\s+than)")):
                value = (vocab.sizes.get(name) or {}).get(fld)
                if value is None:
                    continue
                phrase = st.take(m.start(), m.end())
                st.add(Condition(field=fld, op=op, value=value), phrase)
                st.notes.append(f"'{phrase}' read against {name} too: {fld} {op} {value:,.0f} ({name}'s own)")
    _read_between_models(st, vocab, keys)


def _read_between_models(st: QuestionText, vocab: Vocabulary, keys: dict[str, str]) -> None:
    """'models between resnet18 and resnet50 in size': a range from one model's size to the other's (params, or MACs
    when said), both ends kept. 'between A and B, which has fewer params' compares the two (``read_comparison``):
    only the word 'between' is taken."""
    for m in list(st.finditer(r"between|from")):
        first = _name_after(st, m.end(), keys)
        joined = first and re.match(r"\s+(?:and|to|&)\s+", st.masked()[first[1]:])
        second = _name_after(st, first[1] + joined.end(), keys) if first and joined else None
        if second is None:
            continue
        rest = st.low[second[1]:]
        if re.match(r"\s*,?\s*(?:which|who|what)\b", rest) or re.search(
                r"(?:differences?|compare|comparison|choose|pick)\s+$", st.low[:m.start()]):
            st.take(m.start(), m.end())  # 'the difference between A and B': the two compared (read_comparison)
            continue
        said = re.match(r"\s+(?:in|by)\s+(?:(?P<macs>macs|compute|flops)|size|param(?:eter)?s|parameter\s+count)\b",
                        rest)
        fld = "m.macs" if said and said.group("macs") else "m.params"
        values = [(vocab.sizes.get(name) or {}).get(fld) for name in (first[0], second[0])]
        phrase = st.take(m.start(), second[1] + (said.end() if said else 0))
        if None in values:
            st.reasons.append(f"'{phrase}': the {fld.split('.')[1]} of both models must be known")
            continue
        lo, hi = min(values), max(values)
        st.add(Condition(field=fld, op=">=", value=lo), phrase)
        st.add(Condition(field=fld, op="<=", value=hi), phrase)
        st.notes.append(f"'{phrase}' read as {lo:,.0f} <= {fld} <= {hi:,.0f} (the two models' own)")




def _name_before(st: QuestionText, start: int, keys: dict[str, str]) -> bool:
    """Whether a model name (spaced, dashed or dotted as people write it) is written before ``start``."""
    words = re.findall(r"[a-z0-9]+(?:[-_.][a-z0-9]+)*", st.masked()[:start])
    return any("".join(t for w in words[i:i + n] for t in tokens(w)) in keys
               for i in range(len(words)) for n in range(1, 5))


def _tag_text(key: str, value: str) -> str:
    return f"{key}={value}" if value else key


# words before '=' that name a field, not a tag key ('params=5M', 'family = yolo': read, or refused, as fields)
_FIELD_KEYS = frozenset("""name model models params parameters param macs mac flops flop family task type format
precision device hardware mode power latency fps energy memory bytes weights layers version dtype bound""".split())


def read_tags(st: QuestionText, vocab: Vocabulary) -> None:
    """Tags as registered ('--tag robot', '--tag site=lab'): 'the robot tag', 'tagged robot', 'with tag site=lab',
    'at the lab site', 'site = lab'. A tag becomes the models that carry it (``m.name IN [...]``, resolved here from
    the registry's tags), negatable ('not tagged robot'). A tag no model carries, or one that more than
    ``query.MAX_IN_VALUES`` models carry, is a reason to refuse, said in words."""
    # 'untagged models': every model but those with tags; 'models that have tags', 'with any tags': those
    tagged = sorted(set(vocab.tags) & set(vocab.models))
    for pattern, without in ((r"untagged|(?:with\s+)?no\s+tags?(?:\s+at\s+all)?|without\s+(?:any\s+)?tags?", True),
                             (r"(?:with|have|having|has|carry(?:ing)?)\s+(?:any\s+|some\s+)?tags(?=\s*(?:$|[?!,;]|"
                              r"\.(?![a-z0-9])|(?:and|or|that|which|on|in|under|over|below|above)(?![a-z])))", False)):
        for m in list(st.finditer(pattern)):
            phrase = st.take(m.start(), m.end())
            if not tagged and without:
                st.readings.append(Reading(phrase=phrase, meaning="no model has tags: every model"))
            elif not tagged:
                st.reasons.append(f"'{phrase}': no registered model has tags")
            elif len(tagged) > MAX_IN_VALUES:
                st.reasons.append(f"'{phrase}': {len(tagged):,} models have tags, more than one question can name; "
                                  f"list them with `embodied-ai model list`")
            else:
                st.add(one_of("m.name", tagged, negate=without), phrase)
    bare = r"(?:tags\.)?(?P<k>[a-z][a-z0-9_-]*)\s*=\s*(?P<v>[a-z0-9_.-]+)"  # 'site=lab', as --tag writes it
    if not vocab.tags:
        for m in list(st.finditer(r"tagged\s+[a-z0-9_.=-]+|[a-z0-9_-]+\s+tags?|tags?\s+[a-z0-9_.=-]+|" + bare)):
            if m.groupdict().get("k") in _FIELD_KEYS:
                continue
            st.reasons.append(f"'{st.take(m.start(), m.end())}': no registered model has tags")
        return
    pairs = {(k.lower(), v.lower()) for t in vocab.tags.values() for k, v in t.items()}
    keys = {k for k, _ in pairs}

    def models_with(key: str, value: str | None) -> list[str]:
        return sorted(n for n, t in vocab.tags.items()
                      if any(k.lower() == key and (value is None or v.lower() == value) for k, v in t.items()))

    def add(begin: int, end: int, key: str, value: str | None) -> None:
        negated, start = st.negated_before(begin)
        phrase = st.take(start, end)
        names = models_with(key, value)
        said = _tag_text(key, value or "")
        if not names:
            st.reasons.append(f"'{phrase}': no registered model has the tag {said} (tags: "
                              f"{', '.join(sorted(_tag_text(k, v) for k, v in pairs))})")
        elif len(names) > MAX_IN_VALUES:
            st.reasons.append(f"'{phrase}': {len(names):,} models have the tag {said}, more than one question can "
                              f"name; list them with `embodied-ai model list --filter 'tags = {said}'`")
        else:
            added.append(one_of("m.name", names, negated))
            st.conditions.append(added[-1])
            st.readings.append(Reading(phrase=phrase, meaning=f"{'NOT ' if negated else ''}tag {said}: "
                                                              f"{', '.join(names)}"))
        st.subject_votes.append((begin, "model"))

    added: list[Condition] = []  # the tag conditions read, in turn ('tagged robot or demo' widens the last one)

    # 'robot-tagged', 'lab tagged', 'robot models': a known tag (or tag value) right before 'tagged' or a model word
    known = sorted(keys | {v for _, v in pairs if v}, key=len, reverse=True)
    alternatives = '|'.join(re.escape(t) for t in known)
    # ... or a tag in the plural after 'for' ('the best model for robots': the robot tag)
    for m in list(st.finditer(rf"(?<![a-z0-9_.-])(?P<t>{alternatives})(?:[\s-]+tagged"
                              rf"(?![a-z0-9_-])|(?=\s+(?:models?|networks?|nets?|ones)(?![a-z])))|"
                              rf"(?:(?<=for )|(?<=for the ))(?P<p>{alternatives})s(?![a-z0-9_-])")):
        tag = m.group("t") or m.group("p")
        key = tag if tag in keys else next(k for k, v in sorted(pairs) if v == tag)
        add(m.start(), m.end(), key, None if tag in keys else tag)
    for m in list(st.finditer(bare)):  # a key=value no field has: a tag, registered or not (then said so)
        if m.group("k") not in _FIELD_KEYS or m.group("k") in keys:
            add(m.start(), m.end(), m.group("k"), m.group("v"))
    word = r"[a-z0-9_.-]+"
    key_value = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    explicit = (rf"(?:tagged(?:\s+(?:with|as))?(?:\s+(?:the|a))?(?:\s+tags?)?|with\s+(?:the\s+)?tags?|"
                rf"carry(?:ing)?\s+(?:the\s+)?tags?|tags?)\s+(?:as\s+)?"
                rf"(?:(?P<k2>{key_value})\s+(?P<v2>{word})(?![a-z0-9_.=-])(?!\s*=)|"
                rf"(?P<a>{word})(?:\s*=\s*(?P<av>{word}))?)|(?:the\s+|a\s+)?(?P<b>{word})[\s-]+tags?(?!\s*=)")
    for m in list(st.finditer(explicit)):
        end = m.end()
        if m.group("k2") and (m.group("k2"), m.group("v2")) in pairs:
            add(m.start(), end, m.group("k2"), m.group("v2"))  # 'tagged with site lab': a known key, then its value
            continue
        if m.group("k2"):  # a known key then a word that is none of its values ('tagged site which ...'): the key
            tag, val = m.group("k2"), None
            end = m.end("k2")
        else:
            tag, val = (m.group("a"), m.group("av")) if m.group("a") else (m.group("b"), None)
        if tag in ("the", "a", "an", "with", "any", "no", "model", "models", "which", "what", "its", "their", "have",
                   "has", "having", "carry", "carries"):
            continue
        if "=" in tag:
            tag, val = tag.split("=", 1)
        if tag.startswith("tags."):
            tag = tag[5:]
        add(m.start(), end, tag, val)
    # 'tagged demo but not robot', 'demo models, not robot ones': a known tag right after a negation
    for m in list(st.finditer(rf"(?P<t>{'|'.join(re.escape(t) for t in known)})(?:\s+(?:tags?|ones))?")):
        if st.negated_before(m.start())[0]:
            tag = m.group("t")
            key = tag if tag in keys else next(k for k, v in sorted(pairs) if v == tag)
            add(m.start(), m.end(), key, None if tag in keys else tag)
    # 'tagged robot or demo': the models with either (with 'and', the two conditions hold together as read)
    for m in list(st.finditer(rf"(?:or|and)\s+(?P<t>{alternatives})(?:\s*=\s*(?P<v>{word}))?(?:\s+tags?)?")):
        if not added or added[-1].negate or not st.masked()[:m.start()].rstrip().endswith("\x00"):
            continue  # only right after a tag read
        tag = m.group("t")
        key = tag if tag in keys else next(k for k, v in sorted(pairs) if v == tag)
        value = m.group("v") if m.group("v") else (None if tag in keys else tag)
        if st.low[m.start():m.start() + 2] == "or":
            last = added[-1]
            names = sorted(set(last.value if isinstance(last.value, list) else [last.value])
                           | set(models_with(key, value)))
            if len(names) <= MAX_IN_VALUES:
                phrase = st.take(m.start(), m.end())
                wider = one_of("m.name", names)
                st.conditions[st.conditions.index(last)] = wider
                added[-1] = wider
                st.readings.append(Reading(phrase=phrase, meaning=f"or tag {_tag_text(key, value or '')}: "
                                                                  f"{', '.join(names)}"))
                continue
        add(m.start(), m.end(), key, value)
    for key in sorted(keys, key=len, reverse=True):
        kp = re.escape(key)
        vals = "|".join(re.escape(v) for v in sorted((v for k, v in pairs if k == key and v), key=len, reverse=True))
        if not vals:
            continue
        for m in list(st.finditer(rf"(?:tags\.)?{kp}\s*(?:=|:|is|of)?\s*(?P<v>{vals})|"
                                  rf"(?:(?:at|in|on|for|from)\s+(?:the\s+)?)?(?P<v2>{vals})\s+{kp}")):
            add(m.start(), m.end(), key, m.group("v") or m.group("v2"))


def _relative(st: QuestionText, m: re.Match, phrase: str, name: str, models: list[Condition],
              said: dict[str, int]) -> None:
    """'faster than resnet50' / 'slower than resnet50' with no number: the rows whose predicted latency is below
    (above) that model's own on the same device, power mode and precision (``query.Relative``; the latencies are
    read from its fit rows when the question is answered). The model is then the reference, not a condition. Refused
    when the question names no device (the model's latency is one number per device x mode x precision) or the
    model is named before the comparison."""
    reference = next(c for c in models if c.value == name)
    if said.get(reference.cypher(), -1) < m.start():
        st.reasons.append(f"'{phrase}': than which model? (models faster than {name} on X)")
        return
    if not any(c.field.startswith("h.") and not c.negate for c in st.conditions):
        st.reasons.append(f"'{phrase} {name}' compares latencies on one device: name it ('faster than {name} on the "
                          f"orin nano at 15 W'), or give a latency ('under 5 ms')")
        return
    st.conditions.remove(reference)
    st.readings = [r for r in st.readings if r.meaning != reference.cypher()]
    op = ">" if (m.group("w") or "").lower() == "slower" else "<"
    st.relative = Relative(model=name, op=op, phrase=f"{phrase} {name}")
    st.readings.append(Reading(phrase=f"{phrase} {name}", meaning=f"r.latency_ms {op} {name}'s r.latency_ms on the "
                                                                   f"same device, power mode and precision"))
    st.subject_votes.append((m.start(), "model"))


_FACTOR_WORDS = {"twice": 2.0, "two times": 2.0, "thrice": 3.0, "three times": 3.0, "four times": 4.0,
                 "five times": 5.0, "ten times": 10.0}
_COMPARE = (r"(?:at\s+least\s+)?(?P<f>twice|thrice|(?:two|three|four|five|ten)\s+times|\d+(?:\.\d+)?\s*(?:x|times))\s+"
            r"(?:as\s+(?P<w2>fast|quick|slow)(?:\s+as)?|(?P<w3>faster|slower|quicker)(?:\s+than)?)|"
            r"(?:how\s+much\s+|how\s+many\s+times\s+)?(?P<w>faster|slower|quicker)(?:\s+than)?|vs\.?|versus|"
            r"compared?\s+(?:to|with)|compare|against|(?:which|who)\s+is\s+(?:faster|quicker|slower)|"
            r"(?:the\s+)?(?P<speedup>speed[\s-]?ups?)(?:\s+(?:of|for))?|stacks?\s+up\s+(?:against|to|with)|"
            r"(?:the\s+)?differences?(?:\s+between)?|differs?(?:\s+from)?|"
            r"(?P<beat>beats?|beating|outperforms?|outperforming)")  # 'A beats B': A faster than B


def _factor(m: re.Match) -> float | None:
    """The factor a comparison asks about: 'twice as fast as' 2, '3x faster than' 3; None for a plain comparison."""
    said = m.group("f")
    if said is None:
        return None
    said = re.sub(r"\s+", " ", said.lower())
    if said in _FACTOR_WORDS:
        return _FACTOR_WORDS[said]
    return float(re.match(r"\d+(?:\.\d+)?", said).group(0))


def _size_comparison(st: QuestionText, names: list[str], vocab: Vocabulary) -> Comparison | None:
    """'is A bigger than B', 'does A have more MACs than B', 'how much lighter is A than B': two models named,
    compared on their size (params or MACs, ``_RELATIVE``'s words)."""
    for pattern, fld, op in _RELATIVE:
        for m in list(st.finditer(rf"(?:how\s+much\s+|how\s+many\s+times\s+)?(?:{pattern})(?:\s+than)?")):
            phrase = st.take(m.start(), m.end())
            st.readings.append(Reading(phrase=phrase, meaning=f"compare {names[0]} with {names[1]} on {fld}"))
            st.subject_votes.append((m.start(), "model"))  # their own rows, not where they run
            return Comparison(field="m.name", sides=[[names[0]], [names[1]]], labels=names, phrase=phrase,
                              yes_no=bool(st.yes_no), measure=fld, more=op == ">",
                              values=[(vocab.sizes.get(n) or {}).get(fld) for n in names])
    return None


def read_comparison(st: QuestionText, vocab: Vocabulary | None = None) -> Comparison | None:
    """'is A faster than B (on X)', 'A vs B on X', 'compare A and B', 'how much faster is A on X than on Y', 'X in
    int8 vs fp16': two models named (not negated), or else two device phrases, or else two precisions, compared on
    predicted latency. The comparison word is
    taken only when there are two sides; else it stays unread (and the question says it was not understood)."""
    models = [c for c in st.conditions if c.field == "m.name" and not c.negate and c.op == "="]
    devices = [c for c in st.conditions if c.field == "h.device" and not c.negate]
    said = {r.meaning: st.low.find(r.phrase.lower()) for r in st.readings}
    names = list(dict.fromkeys(str(c.value) for c in sorted(models, key=lambda c: said.get(c.cypher(), 0))))
    devices = sorted(devices, key=lambda c: said.get(c.cypher(), 0))
    precisions = list(dict.fromkeys(str(c.value) for c in sorted(
        (c for c in st.conditions if c.field == "r.precision" and c.op == "=" and not c.negate),
        key=lambda c: said.get(c.cypher(), 0))))
    if len(names) == 2 and vocab is not None and (sized := _size_comparison(st, names, vocab)) is not None:
        return sized
    if len(names) == 2:  # 'which is more efficient, A or B', 'does A use less energy than B': energy per inference
        for m in list(st.finditer(r"(?P<d>more|less)\s+(?:energy[\s-]+|power[\s-]+)?efficient(?:\s+than)?|"
                                  r"(?:uses?|using|needs?|draws?)\s+(?P<d2>less|more)\s+energy(?:\s+than)?")):
            phrase = st.take(m.start(), m.end())
            worse = (m.group("d") or "") == "less" or (m.group("d2") or "") == "more"
            st.add(Condition(field="r.energy_mj", op="IS NOT NULL"), phrase)
            st.readings.append(Reading(phrase=phrase, meaning=f"compare {names[0]} with {names[1]} on r.energy_mj"))
            return Comparison(field="m.name", sides=[[names[0]], [names[1]]], labels=names, phrase=phrase,
                              yes_no=bool(st.yes_no), measure="r.energy_mj", slower=worse)
    for m in list(st.finditer(_COMPARE)):
        phrase = st.take(m.start(), m.end())
        if len(names) == 2:
            sides, field, labels = [[names[0]], [names[1]]], "m.name", names
        elif len(devices) >= 2:
            sides = [v if isinstance(v, list) else [v] for v in (devices[0].value, devices[1].value)]
            field = "h.device"
            labels = [r.phrase for r in st.readings if r.meaning in (devices[0].cypher(), devices[1].cypher())][:2]
            if len(labels) < 2:
                labels = [", ".join(s) for s in sides]
        elif len(names) < 2 and len(precisions) == 2:  # 'is int8 faster than fp16 for X on Y', 'X int8 vs fp16'
            sides, field, labels = [[precisions[0]], [precisions[1]]], "r.precision", precisions
        elif len(names) == 1 and ("than" in phrase.lower() or m.group("beat")):  # 'models faster than resnet50',
            # 'anything that beats resnet50': on the same targets
            _relative(st, m, phrase, names[0], models, said)
            return None
        else:
            st.reasons.append(f"'{phrase}' compares two models or two devices: name both (is A faster than B on X; "
                              f"how much faster is A on X than on Y)")
            return None
        factor = _factor(m)
        if factor is not None and factor <= 0:
            st.reasons.append(f"'{phrase}': a factor must be more than 0")
            return None
        if m.group("speedup"):  # 'the speedup of X on A over B': the second side after 'over'
            for over in list(st.finditer(r"(?<![a-z])(?:over|relative\s+to|vs\.?)(?![a-z])")):
                phrase += " " + st.take(over.start(), over.end())
                break
        slower = re.search(r"slow", m.group(0).lower()) is not None
        by = f" by {clean(factor)}x or more" if factor is not None else ""
        st.readings.append(Reading(phrase=phrase,
                                   meaning=f"compare {labels[0]} with {labels[1]} on r.latency_ms{by}"))
        yes_no = bool(st.yes_no)
        return Comparison(field=field, sides=sides, labels=labels, phrase=phrase, yes_no=yes_no, factor=factor,
                          slower=slower)
    return None


_SHAPE = r"(?P<dims>\d{1,5}(?:\s*[x×]\s*\d{1,5})+)"
_SHAPE_WORDS = (r"(?:input|image|frame|picture)s?(?:\s+(?:shapes?|sizes?|resolutions?|dimensions?))?|resolutions?|"
                r"pixels?|px")


def read_input_shapes(st: QuestionText, vocab: Vocabulary) -> None:
    """'models taking 224x224 inputs', 'with 3x640x640 input', 'at 320 x 320 resolution': the models whose input
    shape holds those dimensions in that order, side by side (``m.input_shape IN [...]``: the registry's shapes that
    do, '1x3x224x224' and '1x224x224x3' for '224x224'), negatable. A shape no registered model takes is a condition
    no row meets (``m.input_shape = '224x224'``: the answer is empty, not the question refused)."""
    for m in list(st.finditer(rf"(?:(?:with|at|of|taking|takes?|accepting|accepts?|for|on)\s+(?:an?\s+|the\s+)?)?"
                              rf"(?:(?:{_SHAPE_WORDS})\s+(?:of\s+|shape\s+|size\s+)?)?{_SHAPE}(?![\d.])"
                              rf"(?:\s*(?:{_SHAPE_WORDS}))?")):
        dims = re.findall(r"\d+", m.group("dims"))  # two or more: ``_SHAPE`` asks for an 'x'
        negated, start = st.negated_before(m.start())
        phrase = st.take(start, m.end())
        wanted = "x" + "x".join(dims) + "x"
        shapes = sorted({s for sizes in vocab.sizes.values() for s in [sizes.get("m.input_shape")]
                         if isinstance(s, str) and s and any(wanted in f"x{one.strip()}x" for one in s.split(","))})
        if len(shapes) > MAX_IN_VALUES:
            st.reasons.append(f"'{phrase}': {len(shapes):,} input shapes hold {'x'.join(dims)}, more than one question "
                              f"can name; list them with `embodied-ai model list`")
            continue
        # none registered: the shape itself, which no registered shape equals (one that did would hold it)
        st.conditions.append(one_of("m.input_shape", shapes or ["x".join(dims)], negated))
        held = ", ".join(shapes) or "none registered"
        st.readings.append(Reading(phrase=phrase,
                                   meaning=f"{'NOT ' if negated else ''}input shape holding {'x'.join(dims)}: {held}"))
        st.subject_votes.append((m.start(), "model"))
