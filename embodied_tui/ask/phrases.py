"""Phrases that are not names or quantities: superlatives and limits ('the 3 fastest'), 'memory-bound', 'fits in
memory', 'measured', 'how many', 'real-time', subject words; and what they add up to: the merged conditions, the
subject, the ordering and the limit.
"""
from __future__ import annotations

import re

from embodied_tui.ask.query import PIPELINE_EDGE, PIPELINE_FIELD, Condition, Order, Reading, is_text
from embodied_tui.ask.text import QuestionText
from embodied_tui.ask.words import HW_WORDS, MODEL_WORDS, NUMBER_WORDS, ORDINALS, PER_WATT, PLURAL_NOUNS, SUPERLATIVES


def _limit(st: QuestionText, word: str, phrase: str) -> None:
    st.limit = int(word) if word.isdigit() else NUMBER_WORDS[word]
    st.limit_phrase = phrase


def read_superlatives(st: QuestionText) -> None:
    """'fastest', 'smallest', 'cheapest in energy', 'most headroom' ... with 'top 3', '3 fastest', 'the 2 models'."""
    ordinal = "|".join(sorted(ORDINALS, key=len, reverse=True))
    for pattern, fld, desc in SUPERLATIVES:
        for m in list(st.finditer(pattern)):
            start, end = m.start(), m.end()
            text = st.masked()
            place = re.search(rf"(?:the\s+)?(?P<o>{ordinal})[\s-]+$", text[:start])  # 'the second fastest'
            if place and st.ordinal is None:
                st.ordinal = ORDINALS[place.group("o")]
                phrase = st.take(place.start(), end)
                _limit(st, str(st.ordinal), phrase)
                st.order.append((fld, desc, phrase))
                continue
            before = re.search(rf"(?:top|the|best)?[\s-]*(?P<n>\d+|{'|'.join(NUMBER_WORDS)})[\s-]+$", text[:start])
            after = re.match(rf"\s+(?P<n>\d+|{'|'.join(NUMBER_WORDS)})(?![a-z0-9])(?!\s*(?:ms|fps|w|mb|gb)\b)",
                             text[end:])
            n = before or after
            # 'slowest first', 'largest on top': an ordering of every row, not the first one
            first = None if n else re.match(r"\s+(?:first|on\s+top)(?![a-z])", text[end:])
            if before:
                start = before.start()
            if after:
                end = end + after.end()
            if first:
                end = end + first.end()
            phrase = st.take(start, end)
            if n:
                _limit(st, n.group("n"), phrase)
            elif first:
                st.plural_superlative = True
            else:  # 'the fastest models', 'smallest yolo detectors': plural -> every row, ordered
                nouns = re.findall(r"[a-z]+", text[end:end + 40])[:3]
                if any(w in PLURAL_NOUNS for w in nouns):
                    st.plural_superlative = True
            st.order.append((fld, desc, phrase))
    if st.order and st.limit is None:  # 'the 2 models with the fewest MACs'
        nouns = "|".join(sorted(PLURAL_NOUNS))
        # 'the 2 models with the fewest MACs', 'which three devices run X fastest'
        for m in list(st.finditer(rf"(?:the|first|which|what|show(?:\s+me)?|list|give\s+me|name)\s+(?:the\s+)?"
                                  rf"(?P<n>\d+|{'|'.join(NUMBER_WORDS)})(?=\s+(?:{nouns}))")):
            _limit(st, m.group("n"), st.take(m.start(), m.end()))
    for m in list(st.finditer(rf"(?:top|bottom)[\s-]+(?P<n>\d+|{'|'.join(NUMBER_WORDS)})")):
        _limit(st, m.group("n"), st.take(m.start(), m.end()))
    for m in list(st.finditer(r"(?:the\s+)?(?:best|optimal|ideal)(?:\s+(?:choice|option|pick|fit))?|"
                              r"recommend(?:ed|s)?|suggest(?:ed|s)?|(?:your\s+)?recommendations?")):
        if st.order:  # 'best' with a measure named ('best fps per watt') was read above
            continue
        phrase = st.take(m.start(), m.end())  # 'which device is best for X', 'the best model on the pi 5'
        st.order.append(("r.latency_ms", False, phrase))
        st.notes.append(f"'{phrase}' read as fastest (the lowest predicted latency); say 'most efficient' for the "
                        f"least energy per inference")


_COMMANDS = (r"delete|remove|drop|erase|wipe|purge|rename|register|add|update|edit|modify|insert|upload|download|"
             r"install|train|retrain|fine[\s-]?tune|quanti[sz]e|prune|convert|export|import|overwrite|replace|"
             r"reset|clear")


def read_commands(st: QuestionText) -> None:
    """A request to change something ('delete all models', 'how do I register a model?'): ask only reads the
    registry, so it is refused with the command that does it, before anything else is read."""
    lead = r"(?:please\s+|(?:can|could|would)\s+you\s+|(?:how\s+(?:do|can|should)\s+(?:i|we)|how\s+to|i\s+want\s+to|" \
           r"i'd\s+like\s+to|help\s+me|let's|lets)\s+)*"
    who = re.match(r"\s*(?P<w>who|whom|whose|when|why)(?![a-z'])", st.low)
    if who is not None:  # 'who registered X', 'when was X added': a registration's lineage, not a fit
        st.take(who.start("w"), who.end("w"))
        st.reasons.append(f"'{who.group('w')}': ask answers what runs where and how fast, not who or when; a "
                          f"model's registration (who, host, when) is in `embodied-ai model show NAME`")
    m = re.match(rf"\s*{lead}(?P<verb>{_COMMANDS})(?![a-z])", st.low)
    if m is not None:
        verb = m.group("verb")
        st.take(m.start("verb"), m.end("verb"))
        st.reasons.append(f"'{verb}' asks for a change or a command; ask only answers questions about the registry: "
                          f"see `embodied-ai --help` (model register/remove/update, hw, measurement ...)")


_MEASURE_WORD = (r"latenc(?:y|ies)|param(?:eter)?s?|macs?|flops?|weights?|energy|fps|frame\s*rates?|power|memory|"
                 r"sizes?|bytes|run\s*times?|times?")


def read_aggregates(st: QuestionText) -> None:
    """'the mean latency on the pi 5', 'the total number of parameters', 'the sum of MACs': an average or a sum over
    rows, which ask does not compute: refused in words, the phrase taken (its measure word is not 'not understood').
    A pipeline's total ('the total latency of pi05': its r.total_ms) is no sum over rows: left to the pipeline
    readers. 'I mean' restates a word: not an average."""
    if any(c.field == "p.name" for c in st.conditions):
        return
    for m in list(st.finditer(rf"(?<!i )(?:mean|average|avg|median|total|combined|cumulative|sum\s+of|sum)\s+"
                              rf"(?:(?:number|count|amount)\s+of\s+)?(?:the\s+|all\s+(?:the\s+)?)?"
                              rf"(?:{_MEASURE_WORD})(?![a-z])")):
        phrase = st.take(m.start(), m.end())
        st.reasons.append(f"'{phrase}': ask lists rows and counts them; it does not compute averages, medians or sums "
                          f"(the rows it lists hold each value)")


_RECOMMEND = r"(?:should|shall|could)\s+(?:i|we)\s+(?:use|pick|choose|deploy|run|go\s+with|get|buy)|recommend(?:ed)?"


def read_recommendation(st: QuestionText) -> bool:
    """'which model should I use?', 'what do you recommend?': True when asked (``parse._read`` refuses it when nothing
    says what for; with a device, a latency or a task it is a question like any other)."""
    found = False
    for m in list(st.finditer(_RECOMMEND)):
        st.take(m.start(), m.end())
        found = True
    return found


def read_measured_and_predicted(st: QuestionText) -> None:
    """'measured vs predicted latency for X', 'predicted and measured': the rows with a measurement, both columns
    shown (not a comparison of two models or devices). Read before comparisons take 'vs'."""
    sides = r"(?:vs\.?|versus|and|against|compared\s+(?:to|with)|next\s+to)"
    for m in list(st.finditer(rf"(?:the\s+)?(?:measured|benchmarked)\s+{sides}\s+predicted(?:\s+latenc(?:y|ies))?|"
                              rf"(?:the\s+)?predicted\s+{sides}\s+(?:measured|benchmarked)(?:\s+latenc(?:y|ies))?")):
        st.add(Condition(field="r.measured_latency_ms", op="IS NOT NULL"), st.take(m.start(), m.end()))


def read_bounds(st: QuestionText) -> None:
    """'memory-bound', 'compute bound': read before the words 'memory' and 'compute' mean anything else."""
    kinds = r"memory|compute|overhead|host[- ]link"
    # 'memory or compute bound': both kinds, one 'bound'
    for m in list(st.finditer(rf"(?P<b>{kinds})(?:-?\s*(?:or|and|/)\s*(?P<b2>{kinds}))?[- ]bound")):
        negated, start = st.negated_before(m.start())  # 'not memory bound'
        phrase = st.take(start, m.end())
        for kind in filter(None, (m.group("b"), m.group("b2"))):
            value = "host-link" if kind.startswith("host") else kind
            st.add(Condition(field="r.bound", op="=", value=value, negate=negated), phrase)
    # 'limited by memory bandwidth', 'bottlenecked by compute', 'bandwidth-bound': the same kinds in other words
    said = {r"memory(?:\s+bandwidth)?|(?:dram\s+)?bandwidth|memory\s+traffic": "memory",
            r"compute|(?:the\s+)?flops|math|arithmetic": "compute",
            r"(?:launch\s+|kernel\s+|per[\s-]op\s+)?overheads?|launches": "overhead",
            r"(?:the\s+)?(?:host\s+)?(?:link|pcie|usb)": "host-link"}
    alone = {"memory": r"|(?:memory[\s-])?bandwidth[\s-]bound"}  # 'bandwidth-bound'
    for words, value in said.items():
        for m in list(st.finditer(rf"(?:limited|bottlenecked|bound|constrained|held\s+back|capped)\s+by\s+(?:{words})"
                                  + alone.get(value, ""))):
            negated, start = st.negated_before(m.start())
            st.add(Condition(field="r.bound", op="=", value=value, negate=negated), st.take(start, m.end()))


# 'how many models per family', 'count devices by type': a count split by one field of the subject
GROUPS: list[tuple[str, str]] = [
    (r"(?:architecture\s+)?famil(?:y|ies)", "m.family"),
    (r"tasks?", "m.task"),
    (r"(?:architecture\s+|model\s+)?types?|architectures?", "m.type"),
    (r"(?:file\s+)?formats?", "m.format"),
    (r"device\s+types?|kinds?\s+of\s+devices?", "h.type"),
    (r"vendors?|makers?|manufacturers?", "h.vendor"),
]


# the plural names of GROUPS a listing of values reads ('what formats do we have')
_LISTED = [(r"famil(?:ies)", "m.family"), (r"tasks", "m.task"), (r"types|architectures", "m.type"),
           (r"formats", "m.format"), (r"device\s+types|kinds\s+of\s+devices", "h.type"),
           (r"vendors|makers|manufacturers", "h.vendor")]


def read_group(st: QuestionText) -> None:
    """In a count: 'per family', 'by task', 'for each type', 'grouped by format' (``StructuredQuery.group_by``);
    'type' is the device's type in a question counting devices ('how many devices per type')."""
    # 'what formats do we have', 'list the families', 'which tasks are covered': each value with its count
    lister = (r"(?:what|which|list|show(?:\s+me)?|name|give\s+me)(?:\s+(?:are|is))?\s+"
              r"(?:(?:all|the|every|our|of|different|distinct|unique|model|architecture|file)\s+)*")
    there = (r"(?:\s+(?:are\s+(?:there|covered|registered|present|in\s+(?:the\s+)?registry)|do\s+we\s+have|"
             r"we\s+have|exist|there\s+are|are\s+in\s+use|of\s+models|do\s+(?:the\s+)?models\s+(?:have|use)))?")
    for plural, fld in _LISTED:
        for m in list(st.finditer(rf"{lister}(?:{plural}){there}")):
            if st.group_by is None:
                st.group_by, st.count = fld, True
                st.subject_votes.append((m.start(), "hardware" if fld.startswith("h.") else "model"))
                st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning=f"count per {fld}"))
    if not re.search(r"how\s+many|number\s+of|count", st.low):  # read before read_flags takes the count words
        return
    lead = r"(?:per|by|for\s+each|in\s+each|of\s+each|each|grouped\s+by|broken\s+down\s+by|split\s+by)"
    for pattern, fld in GROUPS:
        for m in list(st.finditer(rf"{lead}\s+(?:the\s+)?(?:{pattern})")):
            if st.group_by is None:
                st.group_by = fld
                st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning=f"counted per {fld}"))
    other = r"devices?|hardware|boards?|targets?|precisions?|(?:power\s+)?modes?|models?|sizes?|names?"
    for m in list(st.finditer(rf"{lead}\s+(?:the\s+)?(?:{other})")):
        st.reasons.append(f"'{st.take(m.start(), m.end())}': a count is split only by family, task, type or format "
                          f"(models), or by type or vendor (devices)")


def read_flags(st: QuestionText) -> None:
    """fits in memory (or not), measured, how many, real-time, and the subject words (models, devices ...)."""
    neg_fit = (r"(?:does\s+not|doesn'?t|do\s+not|don'?t|won'?t|will\s+not|cannot|can'?t|not)\s+fit(?:s|ting)?"
               r"(?:\s+(?:in(?:to)?|within)\s+(?:the\s+)?(?:device(?:'s)?\s+)?memory)?|"
               # 'is X too big for the pi 5': does not fit its memory
               r"too\s+(?:big|large|heavy|much\s+memory)(?:\s+to\s+(?:fit|run)(?:\s+(?:on|in(?:to)?))?)?")
    for m in list(st.finditer(neg_fit)):
        st.add(Condition(field="r.fits_memory", op="=", value=False), st.take(m.start(), m.end()))
    for m in list(st.finditer(r"fit(?:s|ting)?(?:\s+(?:in(?:to)?|within)\s+(?:the\s+)?(?:device(?:'s)?\s+)?"
                              r"(?:memory|ram))?|(?:in|within)\s+memory")):
        st.add(Condition(field="r.fits_memory", op="=", value=True), st.take(m.start(), m.end()))
    for m in list(st.finditer(r"(?:with\s+(?:a\s+)?)?(?:measured|benchmarked|measurements?|benchmarks?|"
                              r"benchmark\s+results?)(?:\s+latency)?")):
        negated, start = st.negated_before(m.start())  # 'no measured latency', 'without measurements'
        st.add(Condition(field="r.measured_latency_ms", op="IS NOT NULL", negate=negated), st.take(start, m.end()))
    for m in list(st.finditer(r"how\s+many(?!\s+(?:fps|frames|milliseconds|ms|watts|mj|millijoules|joules|"
                              r"inferences|times\s+(?:faster|slower|quicker|bigger|larger|smaller|heavier|lighter)|"
                              r"param(?:eter)?s|weights|g?macs|[gt]?flops|multiply|layers))|(?:the\s+)?number\s+of|"
                              r"count(?:\s+(?:of|the|all))*")):
        st.count = True
        st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning="count the distinct answers"))
    for m in list(st.finditer(r"(?:in\s+)?real[- ]?time")):
        negated, start = st.negated_before(m.start())  # "can't run in real time"
        phrase = st.take(start, m.end())
        st.add(Condition(field="r.fps", op=">=", value=30, negate=negated), phrase)
        st.notes.append(f"'{phrase}' read as {'below' if negated else 'at least'} 30 fps (say '60 fps' for another "
                        f"rate)")
    for pattern, kind, meaning in ((HW_WORDS, "hardware", "list devices x power modes"),
                                   (MODEL_WORDS, "model", "list models")):
        for m in list(st.finditer(pattern)):
            st.subject_votes.append((m.start(), kind))
            st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning=meaning))


def merge(conditions: list[Condition]) -> list[Condition]:
    """Equalities on the same field, not negated, become one IN; negated ones one NOT IN; duplicates drop."""
    out: list[Condition] = []
    groups: dict[tuple[str, bool], list] = {}
    for c in conditions:
        if c.op in ("=", "IN") and is_text(c.field):
            values = c.value if isinstance(c.value, list) else [c.value]
            key = (c.field, c.negate)
            if key not in groups:
                groups[key] = []
                out.append(c)
            groups[key].extend(v for v in values if v not in groups[key])
        elif c not in out:
            out.append(c)
    merged = []
    for c in out:
        key = (c.field, c.negate)
        if key in groups and c.op in ("=", "IN") and is_text(c.field):
            values = sorted(groups[key])
            merged.append(Condition(field=c.field, op="IN" if len(values) > 1 else "=",
                                    value=values if len(values) > 1 else values[0], negate=c.negate))
        else:
            merged.append(c)
    return merged


def subject_of(st: QuestionText, conditions: list[Condition]) -> str:
    """What the answer lists: the first subject word decides ("which devices run models under 5 ms" lists devices);
    with none, a question naming a model but no device asks where it runs."""
    if st.subject_votes:
        return min(st.subject_votes)[1]
    if st.count and conditions and all(c.field.startswith("h.") for c in conditions) and not st.order:
        return "hardware"  # 'how many jetsons do we have': devices counted, not the models on them
    if st.yes_no and conditions and all(c.field.startswith("m.") for c in conditions) and not st.order:
        return "model"  # 'does X have more than 1M params?': X's own numbers, not where it runs
    has_model_name = any(c.field == "m.name" and not c.negate for c in conditions)
    has_device = any(c.field.startswith("h.") for c in conditions)
    return "hardware" if has_model_name and not has_device else "model"


def ordering(st: QuestionText, conditions: list[Condition]) -> tuple[list[Order], int | None]:
    """The superlatives as ORDER BY items and the LIMIT: 'most headroom' under a latency budget is the lowest latency,
    else the most memory left; a singular superlative keeps one row."""
    order: list[Order] = []
    for fld, desc, phrase in st.order:
        if fld == "headroom":
            budget = any(c.field == "r.latency_ms" and c.op in ("<", "<=") for c in conditions)
            if budget:
                fld, desc = "r.latency_ms", False
                st.notes.append(f"'{phrase}' with a latency budget: read as the most time left under it (lowest "
                                f"latency)")
            else:
                fld = "r.memory_headroom_bytes"
        item = Order(field=fld, descending=desc)
        if fld == "h.peak_fp16_tflops" and not any(o.field == fld for o in order):
            st.notes.append(f"'{phrase}' read as the {'highest' if desc else 'lowest'} fp16 peak (TFLOPS); a device "
                            f"without one is left out")
        if item not in order:
            order.append(item)
            st.readings.append(Reading(phrase=phrase, meaning=f"ORDER BY {item.cypher()}"))
    limit = st.limit
    if limit is None and order and not st.plural_superlative and not st.count:
        limit = 1
        st.notes.append("a singular superlative keeps the first row (ask for 'the 3 fastest' or 'fastest models' "
                        "for more)")
    if st.limit is not None:
        st.readings.append(Reading(phrase=st.limit_phrase, meaning=f"LIMIT {st.limit}"))
    return order, limit


def as_pipeline_question(st: QuestionText, conditions: list[Condition], order: list[Order]) \
        -> tuple[list[Condition], list[Order], float | None]:
    """A question naming a stored pipeline, on the (p:Pipeline)-[r:RUNS_ON]->(h:Hardware) edges: latency reads as
    the time per control period (``r.total_ms``) and fps/Hz as the rate held (``r.rate_hz``). In a yes/no question
    ("can pi05 run at 20 Hz on an Orin NX?") the rate is not a filter but what the verdict checks (returned third);
    a question listing devices keeps those that hold the rate asked (or the pipeline's own, when none is) and do
    not run out of memory (unknown memory kept). Model fields and model-only edge fields do not apply: dropped, with
    a note."""
    out, asked = [], None
    yes_no = st.yes_no
    for c in conditions:
        fld = PIPELINE_FIELD.get(c.field, c.field)
        if fld.startswith("m.") or (fld.startswith("r.") and fld not in PIPELINE_EDGE):
            st.notes.append(f"{c.cypher()} does not apply to a pipeline: left out")
            continue
        new = c.model_copy(update={"field": fld})
        meaning = new.cypher()
        if yes_no and fld == "r.rate_hz" and c.op in (">=", ">", "=") and not c.negate:
            asked = float(c.value)  # type: ignore[arg-type]
            meaning = f"the verdict: does r.rate_hz reach {c.value}?"
        else:
            out.append(new)
        st.reread(c.cypher(), meaning)
    for o in order:
        if o.field in PIPELINE_FIELD:
            said = f"ORDER BY {o.cypher()}"
            st.reread(said, said.replace(o.field, PIPELINE_FIELD[o.field]))
    order = [o.model_copy(update={"field": PIPELINE_FIELD.get(o.field, o.field)}) for o in order]
    # the threshold reader's note on a bare rate speaks of fps: a pipeline's rate is its control rate
    st.notes[:] = [n for n in st.notes if not (asked is not None and "has no comparison" in n and " fps" in n)]
    st.notes[:] = [n.replace(" fps", " Hz (the control rate held, r.rate_hz)") if "has no comparison" in n else n
                   for n in st.notes]
    order = [o for o in order if o.field in PIPELINE_EDGE or o.field.split(".")[0] in ("h", "p")]
    listing = st.subject_votes and min(st.subject_votes)[1] == "hardware"
    if listing and not yes_no and not order and not any(c.field in ("r.rate_hz", "r.total_ms") for c in out):
        out.append(Condition(field="r.meets_rate", op="=", value=True))
        st.notes.append("no rate asked: devices that hold the pipeline's own rate (p.rate_hz)")
    if listing and not yes_no and not order and not any(c.field == "r.fits_memory" for c in out):
        out.append(Condition(field="r.fits_memory", op="=", value=False, negate=True))
        st.notes.append("'can run' also asks that the pipeline fits the device's memory (unknown memory kept)")
    return out, order, asked


# ------------------------------------------------------------------------------------------------ measures named

# 'by parameter count', 'MAC count', 'by size': the measure a superlative orders by (never a count of answers)
_MEASURE_WORDS = [
    (r"param(?:eter)?s?(?:[\s-]+count)?|weights?[\s-]+count|size|number[\s-]+of[\s-]+(?:param(?:eter)?s|weights)",
     "m.params"),
    (r"g?macs?(?:[\s-]+count)?|compute|g?flops?(?:[\s-]+count)?|number[\s-]+of[\s-]+macs", "m.macs"),
    (r"weight[\s-]+bytes|(?:file|disk|weight)[\s-]+size|bytes|megabytes|mb", "m.weight_bytes"),
    (r"latency|speed|time", "r.latency_ms"),
    (rf"energy(?:[\s-]+per[\s-]+inference)?|{PER_WATT}|"
     r"(?:energy[\s-]+)?efficiency", "r.energy_mj"),
    (r"fps|frame[\s-]*rate|throughput", "r.latency_ms"),
    (r"(?:memory[\s-]+)?bandwidth", "h.memory_bandwidth_gbps"),
    (r"power(?:[\s-]+(?:draw|budget|consumption))?|watts?", "h.power_w"),
    (r"(?:device[\s-]+)?(?:memory|ram)", "h.memory_bytes"),
    (r"(?:number[\s-]+of[\s-]+)?layers|layer[\s-]+count", "m.layers"),
]
# 'top 3 by X' / 'sorted by X' with no superlative: the better end first (least energy, latency; most params, MACs)
_TOP_FIRST = {"m.params": True, "m.macs": True, "m.weight_bytes": True, "r.latency_ms": False, "r.energy_mj": False,
              "h.memory_bandwidth_gbps": True, "h.power_w": False, "h.memory_bytes": True, "m.layers": True}


def read_measures(st: QuestionText) -> None:
    """'smallest model by parameter count', 'largest by MACs', 'what is the parameter count of ...': a measure, read
    before 'count' can mean 'how many'. After 'by', it names what a superlative orders by (the superlative's
    direction kept); 'parameter count' alone is just the measure."""
    for pattern, fld in _MEASURE_WORDS:
        prefix = r"in\s+terms\s+of|by" if fld.startswith("h.") else r"in\s+terms\s+of|by|on|in"  # not 'in memory'
        for m in list(st.finditer(rf"(?:{prefix})\s+(?:the\s+)?(?:{pattern})(?![a-z])")):
            phrase = st.take(m.start(), m.end())
            size_fields = ("m.params", "m.macs", "m.weight_bytes")
            if not st.order:  # 'top 3 by fps per watt', 'sorted by latency'
                desc = _TOP_FIRST[fld] if st.limit is not None else False
                if st.limit_phrase.lower().startswith("bottom"):  # 'bottom 3 by params': the other end
                    desc = not desc
                st.order.append((fld, desc, phrase))
                st.plural_superlative = st.limit is None
            for i, (old, desc, said) in enumerate(st.order):
                if old != fld and (old in size_fields or fld not in size_fields):
                    st.order[i] = (fld, desc, f"{said} {phrase}")
                    break
            st.readings.append(Reading(phrase=phrase, meaning=f"the measure is {fld}"))
    for m in list(st.finditer(r"layers?[\s-]+counts?|(?:number|count)\s+of\s+layers")):  # no default column
        st.add(Condition(field="m.layers", op="IS NOT NULL"), st.take(m.start(), m.end()))
        st.subject_votes.append((m.start(), "model"))  # a model's count, not where it runs
    for m in list(st.finditer(r"param(?:eter)?s?[\s-]+counts?|weights?[\s-]+counts?|g?macs?[\s-]+counts?")):
        st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning="a measure (not a count of answers)"))
        if not st.order:  # 'the parameter count of X': X's own row
            st.subject_votes.append((m.start(), "model"))
    for m in list(st.finditer(r"(?:in\s+)?(?P<d>descending|decreasing|desc|largest\s+first|biggest\s+first|"
                              r"highest\s+first)|(?:in\s+)?(?P<a>ascending|increasing|asc|smallest\s+first|"
                              r"lowest\s+first)(?:\s+order)?")):
        if not st.order:
            continue
        fld, _desc, said = st.order[-1]  # 'sort the models by size descending': that order, that way
        phrase = st.take(m.start(), m.end())
        st.order[-1] = (fld, m.group("d") is not None, f"{said} {phrase}")


# ------------------------------------------------------------------------------------------------ hardware measures

_PREC = r"fp32|tf32|fp16|bf16|fp8|fp4|int8|int4|float32|float16|bfloat16|8[- ]bit|4[- ]bit"
_PREC_NAMES = {"float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "8-bit": "int8", "8 bit": "int8",
               "4-bit": "int4", "4 bit": "int4"}
_MORE = r"highest|most|max(?:imum)?|best|largest|biggest|greatest|top|fastest"
_LESS = r"lowest|least|min(?:imum)?|smallest|slowest|worst"


def _prec(text: str | None, unit: str) -> tuple[str, bool]:
    """The precision a peak is asked at, and whether it was assumed (TOPS: int8; TFLOPS: fp16)."""
    if text:
        return _PREC_NAMES.get(text, text), False
    return ("int8" if unit.startswith("top") else "fp16"), True


def assumed_peak_note(phrase: str, unit: str, precision: str) -> str:
    """The note of a peak read at an assumed precision (``assumed_peak`` reads it back)."""
    return f"'{phrase}': {'TOPS' if unit.startswith('top') else 'TFLOPS'} with no precision read as the {precision} peak"


_ASSUMED = re.compile(r"'(?P<phrase>.*)': (?:TOPS|TFLOPS) with no precision read as the (?P<prec>\w+) peak")


def assumed_peak(note: str) -> tuple[str, str] | None:
    """(the phrase, the precision) ``assumed_peak_note`` says a peak was read at; None for another note."""
    m = _ASSUMED.fullmatch(note)
    return (m.group("phrase"), m.group("prec")) if m else None


_BYTES = {"kb": 1e3, "kib": 2.0 ** 10, "mb": 1e6, "mib": 2.0 ** 20, "gb": 1e9, "gib": 2.0 ** 30, "tb": 1e12}


def read_hardware_measures(st: QuestionText, cmp_re: str, to_op, num_re: str) -> None:
    """What the catalog states of a device mode, as conditions or orderings on Hardware: peaks ('more than 50 TOPS
    int8', 'highest fp16 TFLOPS' -> ``h.peak_<precision>_tflops``; TOPS alone is int8, TFLOPS alone fp16, said in a
    note), memory bandwidth ('highest memory bandwidth', 'over 100 GB/s' -> ``h.memory_bandwidth_gbps``) and memory
    ('most memory', 'at least 16 GB of RAM' -> ``h.memory_bytes``). A subject vote for devices at each.
    'TFLOPs' with no precision next to it stays a model's FLOPs ('models over 1 TFLOPs')."""
    def peak(prec_text, unit, phrase):
        prec, assumed = _prec(prec_text, unit)
        if assumed:
            st.notes.append(assumed_peak_note(phrase, unit, prec))
        return f"h.peak_{prec}_tflops"

    unit = r"(?P<u>tops|teraops|tflops|tera[\s-]?flops)"
    thr = (rf"(?:(?:with|has|have|having|of)\s+)?(?P<cmp>{cmp_re})\s*(?P<num>{num_re})\s*(?:(?P<p0>{_PREC})\s+)?"
           rf"{unit}(?:\s+(?:of\s+|at\s+|in\s+)?(?P<p1>{_PREC}))?(?:\s+(?:peak|compute))?")
    for m in list(st.finditer(thr)):
        prec_text = m.group("p0") or m.group("p1")
        about_devices = re.search(rf"(?<![a-z])(?:{HW_WORDS}|gpus?|npus?|tpus?)(?![a-z])", st.low)
        if m.group("u").startswith("tf") and not (m.group("p0") or (prec_text and about_devices)):
            continue  # a model's FLOPs ('models under 1 TFLOPs in int8': int8 is the precision it runs at)
        phrase = st.take(m.start(), m.end())
        st.add(Condition(field=peak(prec_text, m.group("u"), phrase), op=to_op(m),
                         value=float(m.group("num").replace(",", ""))), phrase)
        st.subject_votes.append((m.start(), "hardware"))
    sup = (rf"(?P<dir>{_MORE}|{_LESS})\s+(?:(?P<p0>{_PREC})\s+)?(?:peak\s+)?{unit}(?:\s+(?:at\s+|in\s+)?(?P<p1>{_PREC}))?"
           rf"|(?P<dir2>{_MORE}|{_LESS})\s+(?:(?P<p2>{_PREC})\s+)?peak(?:\s+(?:compute|performance|throughput))?"
           rf"(?:\s+(?:at\s+|in\s+)?(?P<p3>{_PREC}))?")
    for m in list(st.finditer(sup)):
        word = m.group("dir") or m.group("dir2")
        prec_text = m.group("p0") or m.group("p1") or m.group("p2") or m.group("p3")
        phrase = st.take(m.start(), m.end())
        st.order.append((peak(prec_text, m.group("u") or "tflops", phrase), bool(re.fullmatch(_MORE, word)), phrase))
        st.subject_votes.append((m.start(), "hardware"))
    what = r"(?:\s+(?:compute|performance|throughput))?"  # 'the peak fp16 throughput of ...': the peak itself
    for m in list(st.finditer(rf"(?:the\s+|its\s+)?(?:peak(?![\s-]+(?:activation|memory|live))(?:\s+(?P<p0>{_PREC}))?"
                              rf"(?:\s+{unit})?{what}(?:\s+(?:at\s+|in\s+)?"
                              rf"(?P<p1>{_PREC}))?|(?P<p2>{_PREC})\s+(?:peak|{unit.replace('<u>', '<u2>')})"
                              rf"(?:\s+peak)?{what})")):
        phrase = st.take(m.start(), m.end())  # 'the peak int8 of the orin nano': the measure, as a column
        fld = peak(m.group("p0") or m.group("p1") or m.group("p2"), m.group("u") or m.group("u2") or "tflops", phrase)
        st.add(Condition(field=fld, op="IS NOT NULL"), phrase)
        st.subject_votes.append((m.start(), "hardware"))
    if not any(c.field == "m.name" and not c.negate for c in st.conditions):  # 'the tflops of X': X's own FLOPs
        for m in list(st.finditer(rf"(?:how\s+many\s+|the\s+|its\s+)?{unit}")):  # 'how many TOPS does X have'
            if re.search(r"\d\s*$", st.low[:m.start()]):  # a number's unit ('models over 1 TFLOPs'): read later
                continue
            phrase = st.take(m.start(), m.end())
            st.add(Condition(field=peak(None, m.group("u"), phrase), op="IS NOT NULL"), phrase)
            st.subject_votes.append((m.start(), "hardware"))
    for m in list(st.finditer(rf"(?P<dir>{_MORE}|{_LESS}|widest)\s+(?:memory\s+|dram\s+)?bandwidth")):
        phrase = st.take(m.start(), m.end())
        st.order.append(("h.memory_bandwidth_gbps", not re.fullmatch(_LESS, m.group("dir")), phrase))
        st.subject_votes.append((m.start(), "hardware"))
    gbps = rf"(?P<num>{num_re})\s*(?P<bu>gb/s|gbps|gb\s+per\s+second|tb/s|tbps)"
    for m in list(st.finditer(rf"(?:(?:memory\s+)?bandwidth\s+(?:of\s+)?)?(?P<cmp>{cmp_re})\s*{gbps}"
                              rf"(?:\s+(?:of\s+)?(?:memory\s+)?bandwidth)?")):
        scale = 1000.0 if m.group("bu").startswith("tb") else 1.0
        phrase = st.take(m.start(), m.end())
        st.add(Condition(field="h.memory_bandwidth_gbps", op=to_op(m),
                         value=float(m.group("num").replace(",", "")) * scale), phrase)
        st.subject_votes.append((m.start(), "hardware"))
    about_models = re.search(rf"(?<![a-z])(?:{MODEL_WORDS}|detectors?|classifiers?|policies|segmenters?)(?![a-z])",
                             st.low)
    models_only = about_models and not re.search(rf"(?<![a-z])(?:{HW_WORDS}|gpus?|npus?|tpus?|socs?)(?![a-z])", st.low)
    if models_only:
        for m in list(st.finditer(rf"(?:uses?|using|needs?|needing|takes?|with)?\s*(?:the\s+)?(?P<dir>{_MORE}|{_LESS})"
                                  rf"\s+(?:memory|ram)(?:\s+(?:footprint|use|usage)|[\s-]+(?:hungry|intensive|heavy))?"
                                  rf"(?![\s-]+(?:headroom|bound))")):
            phrase = st.take(m.start(), m.end())  # 'which model uses the least memory': a model's, not a device's
            st.order.append(("m.weight_bytes", not re.fullmatch(_LESS, m.group("dir")), phrase))
            st.notes.append(f"'{phrase.strip()}' read as the weights' size (m.weight_bytes); a device's memory is "
                            f"h.memory_bytes, what is left on one r.memory_headroom_bytes")
    for m in list(st.finditer(rf"(?P<dir>{_MORE}|{_LESS})\s+(?:device\s+|onboard\s+|on-board\s+)?"
                              rf"(?:memory|ram|vram|dram)(?!\s*(?:[\s-]+(?:headroom|room|left|free|slack|bound)))")):
        phrase = st.take(m.start(), m.end())
        st.order.append(("h.memory_bytes", not re.fullmatch(_LESS, m.group("dir")), phrase))
        st.subject_votes.append((m.start(), "hardware"))
    head = (rf"(?:(?:with|has|have|having|leaves?|leaving)\s+)?(?P<cmp>{cmp_re})\s*(?P<num>{num_re})\s*"
            rf"(?P<mu>gb|gib|mb|mib|kb|kib)(?:\s+of)?\s+(?:(?:free\s+)?(?:memory|ram)\s+)?"
            rf"(?:headroom|left(?:\s+over)?|free|spare|to\s+spare|slack)")
    for m in list(st.finditer(head)):  # 'at least 1 GB of memory headroom': what the model leaves (a fit row's)
        st.add(Condition(field="r.memory_headroom_bytes", op=to_op(m),
                         value=float(m.group("num").replace(",", "")) * _BYTES[m.group("mu")]),
               st.take(m.start(), m.end()))
    mem = (rf"(?:(?:with|has|have|having)\s+)?(?P<cmp>{cmp_re})\s*(?P<num>{num_re})\s*(?P<mu>gb|gib|mb|mib|tb)"
           rf"(?:\s+of)?\s+(?:device\s+|onboard\s+)?(?:memory|ram|vram|dram)")
    # 'which models need more than 100 MB of memory': a model's need, its weights (as 'how much memory does X need')
    needs = models_only and re.search(r"(?<![a-z])(?:needs?|needing|uses?|using|requires?|requiring|takes?|"
                                      r"consumes?|occup(?:y|ies))(?![a-z])", st.low)
    for m in list(st.finditer(mem)):
        phrase = st.take(m.start(), m.end())
        if needs:
            st.add(Condition(field="m.weight_bytes", op=to_op(m),
                             value=float(m.group("num").replace(",", "")) * _BYTES[m.group("mu")]), phrase)
            st.notes.append(f"'{phrase}' read as the model's weights (m.weight_bytes); a device's memory is "
                            f"h.memory_bytes")
            continue
        st.add(Condition(field="h.memory_bytes", op=to_op(m),
                         value=float(m.group("num").replace(",", "")) * _BYTES[m.group("mu")]), phrase)
        st.subject_votes.append((m.start(), "hardware"))
    for m in list(st.finditer(rf"(?:with|has|have|having)\s+(?P<num>{num_re})\s*(?P<mu>gb|gib|tb)(?:\s+of)?\s+"
                              rf"(?:device\s+|onboard\s+)?(?:memory|ram|vram|dram)")):
        phrase = st.take(m.start(), m.end())  # 'which socs have 64 GB of memory'
        st.add(Condition(field="h.memory_bytes", op=">=",
                         value=float(m.group("num").replace(",", "")) * _BYTES[m.group("mu")]), phrase)
        st.notes.append(f"'{phrase}' read as at least that much (a '64 GB' module reports a little less)")
        st.subject_votes.append((m.start(), "hardware"))


def read_asked_measures(st: QuestionText) -> None:
    """A device measure asked for, with no threshold or superlative ('the memory bandwidth of the orin nano', 'how
    much memory does the AGX have'): the devices' rows with that column (``IS NOT NULL``). Read after 'fits in
    memory' and 'memory-bound' have been taken."""
    named = any(c.field == "m.name" and not c.negate for c in st.conditions)
    for m in list(st.finditer(r"(?:the\s+|its\s+)?(?:peak\s+)?activations?\s+(?:memory|footprint)") if named else ()):
        st.add(Condition(field="m.activation_bytes", op="IS NOT NULL"), st.take(m.start(), m.end()))  # not a device's
        st.subject_votes.append((m.start(), "model"))
    for m in list(st.finditer(_INTENSITY)):
        st.add(Condition(field="r.arithmetic_intensity", op="IS NOT NULL"), st.take(m.start(), m.end()))
    # 'how much memory does X need', 'the memory footprint of X': the model's weights, not a device's memory
    uses = r"(?=.*\b(?:need|needs|use|uses|require|requires|take|takes|consume|consumes|occupy|occupies)\b)"
    for m in list(st.finditer(rf"how\s+much\s+(?:memory|ram|vram){uses}|(?:the\s+|its\s+)?(?:memory|ram)\s+"
                              rf"(?:footprint|usage|use|requirements?)") if named else ()):
        phrase = st.take(m.start(), m.end())
        st.add(Condition(field="m.weight_bytes", op="IS NOT NULL"), phrase)
        st.subject_votes.append((m.start(), "model"))
        st.notes.append(f"'{phrase}' read as the model's weights (m.weight_bytes; activations are on its fit rows' "
                        f"memory headroom); a device's memory is h.memory_bytes")
    for pattern, fld in ((r"how\s+many\s+watts|how\s+much\s+power|(?:the\s+|its\s+)?(?:power\s+(?:draw|consumption|"
                          r"budget|rating)|tdp|wattage)", "h.power_w"),
                         (r"(?:the\s+|its\s+)?(?:memory\s+|dram\s+)?bandwidth", "h.memory_bandwidth_gbps"),
                         (r"(?:how\s+much\s+|the\s+|its\s+)?(?:device\s+)?(?:memory|ram|vram|dram)"
                          r"(?![\s-]+(?:(?:is|are|would\s+be|will\s+be)\s+)?(?:headroom|left|free|remaining|to\s+spare|"
                          r"slack|over))", "h.memory_bytes")):
        for m in list(st.finditer(pattern)):
            negated, start = st.negated_before(m.start())  # 'which devices have no dram': on-chip memory only
            st.add(Condition(field=fld, op="IS NOT NULL", negate=negated), st.take(start, m.end()))
            st.subject_votes.append((m.start(), "hardware"))
    # 'list every model and its params', 'the largest model's MACs', 'models with their layer count': a column shown
    for m in list(st.finditer(r"(?:(?:and|with)\s+(?:its|their)|'s|s')\s+(?P<w>param(?:eter)?s|param(?:eter)?\s+counts?|"
                              r"g?macs|g?flops|famil(?:y|ies)|tasks?|types?|formats?|weights?|weight\s+bytes|"
                              r"sizes?|layers|layer\s+counts?)")):
        word = m.group("w")
        fld = next((f for p, f in _SHOWN if re.fullmatch(p, word)), "m.params")
        phrase = st.take(m.start(), m.end())
        if fld in ("m.weight_bytes", "m.layers", "m.flops"):  # not among a model's default columns: asked for
            st.add(Condition(field=fld, op="IS NOT NULL"), phrase)
        else:
            st.readings.append(Reading(phrase=phrase, meaning=f"the measure is {fld} (a column shown)"))
    # a model's own measure or property asked for, of a model named ('how many params does X have', 'what family
    # is X', 'the MACs of X') or picked ('how many params does the biggest model have'): the model's row (those are
    # its columns), not where it runs
    for pattern, fld in _ASKED_MODEL_MEASURES if named or st.order else ():
        for m in list(st.finditer(pattern)):
            phrase = st.take(m.start(), m.end())
            if fld in ("m.weight_bytes", "m.activation_bytes", "m.layers", "m.input_shape"):  # not a default column
                st.add(Condition(field=fld, op="IS NOT NULL"), phrase)
            else:
                st.readings.append(Reading(phrase=phrase, meaning=f"the measure is {fld}"))
            st.subject_votes.append((m.start(), "model"))
    # a fit row's measure asked for ('the fps of X on Y', 'how many fps does X get', 'energy per inference ... in
    # mJ'): that column on each row (``IS NOT NULL``); thresholds and superlatives on them were read before
    for m in list(st.finditer(r"how\s+(?:long|fast|quick(?:ly)?|slow)")):  # 'how long does X take on Y'
        st.readings.append(Reading(phrase=st.take(m.start(), m.end()), meaning="the measure is r.latency_ms"))
    for pattern, fld in _ASKED_EDGE_MEASURES:
        for m in list(st.finditer(pattern)):
            phrase = st.take(m.start(), m.end())
            if any(c.field == fld for c in st.conditions) or any(o[0] == fld for o in st.order):
                st.readings.append(Reading(phrase=phrase, meaning=f"the measure is {fld}"))  # 'energy under 5 mJ'
            else:
                st.add(Condition(field=fld, op="IS NOT NULL"), phrase)


_SHOWN = [(r"param.*|sizes?", "m.params"), (r"g?macs", "m.macs"), (r"g?flops", "m.flops"),
          (r"famil.*", "m.family"), (r"tasks?", "m.task"), (r"types?", "m.type"), (r"formats?", "m.format"),
          (r"weights?|weight\s+bytes", "m.weight_bytes"), (r"layer.*", "m.layers")]
_ASKED_MODEL_MEASURES = [
    (r"how\s+(?:big|large|heavy|small|light)", "m.params"),
    (r"(?:how\s+many\s+|the\s+|its\s+)?(?:param(?:eter)?s|weights)(?:[\s-]+counts?)?", "m.params"),
    (r"(?:how\s+many\s+|the\s+|its\s+)?(?:g?macs|[gt]?flops|multiply[\s-]+accumulates)(?:[\s-]+counts?)?", "m.macs"),
    (r"(?:what|which)\s+(?:model\s+)?(?:family|architecture)|(?:the\s+|its\s+)?(?:model\s+)?family", "m.family"),
    (r"(?:what|which)\s+task|(?:the\s+|its\s+)task", "m.task"),
    (r"(?:how\s+many\s+|the\s+|its\s+)?layers", "m.layers"),  # 'how many layers does X have'
    # 'what input shape does X take', 'the input resolution of X': the shape it was analysed at
    (r"(?:what\s+|which\s+|the\s+|its\s+)?input\s+(?:shapes?|sizes?|resolutions?|dimensions?)", "m.input_shape"),
    # 'the peak activation memory of X', 'X's weights size', 'the size of X in MB': bytes, shown as a column
    (r"(?:the\s+|its\s+)?(?:peak\s+)?activations?(?:\s+(?:memory|bytes|sizes?|footprint))?", "m.activation_bytes"),
    (r"(?:the\s+|its\s+)?(?:(?:weights?|file|model|disk|storage)\s+)?sizes?(?:\s+on\s+disk)?", "m.weight_bytes"),
    (r"weigh(?:s|ing)?", "m.weight_bytes"),  # 'how much does X weigh (in MB)': its weights' bytes
]
_ASKED_EDGE_MEASURES = [
    (rf"(?:the\s+)?{PER_WATT}|(?:the\s+|its\s+)?(?:energy\s+)?efficiency", "r.energy_mj"),  # the energy column
    (r"(?:how\s+much\s+|the\s+|its\s+)?(?:memory\s+)?(?:headroom|room\s+to\s+spare|memory\s+(?:(?:is|are|would\s+be|"
     r"will\s+be)\s+)?(?:left(?:\s+over)?|free|remaining|to\s+spare))", "r.memory_headroom_bytes"),
    (r"(?:how\s+many\s+|the\s+|its\s+)?(?:fps|(?:frames?|inferences?|images?|predictions?)\s+(?:per|a)\s+second|"
     r"frame[\s-]*rates?|throughput)", "r.fps"),
    (r"(?:how\s+much\s+|the\s+|its\s+)?energy(?:[\s-]+(?:per|each|for\s+(?:one|each|an?))[\s-]+"
     r"(?:inference|frame|run|image|forward\s+pass))?(?:\s+(?:in|as)\s+(?:mj|millijoules?|joules?))?|"
     r"(?:in|as)\s+(?:mj|millijoules?)", "r.energy_mj"),
    # 'what bottlenecks X on Y', 'what is X limited by': the bound column (compute, memory, overhead, host-link)
    (r"bottleneck(?:s|ed)?|(?:limited|bound|held\s+back)\s+by|limiting\s+factor|what\s+limits", "r.bound"),
]
# FLOPs per byte moved: where the model sits on the device's roofline (read before 'the FLOPs of X')
_INTENSITY = r"(?:the\s+|its\s+)?(?:arithmetic|operational|compute)\s+intensity|flops?\s+(?:per|/)\s+byte"


# ------------------------------------------------------------------------------------------------ devices alone

_RUN_VERBS = re.compile(r"\b(?:runs?|running|ran|execute[sd]?|fits?|fitting|deploy(?:s|ed)?|inference|latency|fps|"
                        r"fastest|slowest|quickest)\b")
_HAS = re.compile(r"(?:have|has|having|with|offer|offers|support|supports|supporting|handle|handles|do|does)\s+$")


def as_hardware_question(st: QuestionText, conditions: list[Condition], subject: str) -> tuple[list[Condition], str]:
    """A question about devices alone, read on Hardware nodes rather than every model's fit rows:

    - 'tell me about the orin nano super', 'what is the pi 5': only device conditions, no model and no run word: the
      devices' rows;
    - 'which devices support int4', 'which socs have fp8': a precision a listed device has: its peak at that precision
      is stated (``NOT h.peak_<p>_tflops IS NULL``), not a fit row's precision;
    - 'which boards have at least 8 GB': a size in bytes a listed device has is its memory (``h.memory_bytes``),
      not a model's weights."""
    if any(c.field.startswith(("m.", "p.")) and c.field != "m.weight_bytes" for c in conditions) or st.relative:
        return conditions, subject
    if subject == "model" and not st.subject_votes and not st.count and conditions \
            and all(c.field.startswith("h.") for c in conditions) and all(f.startswith("h.") for f, _, _ in st.order) \
            and not _RUN_VERBS.search(st.low):
        if not st.order:
            st.notes.append("devices alone named: their catalog rows (ask 'which models run on ...' for fit rows)")
        return conditions, "hardware"
    if subject != "hardware" or any(c.field.startswith("r.") and c.field != "r.precision" for c in conditions) \
            or any(f.startswith(("r.", "m.")) for f, _, _ in st.order):
        return conditions, subject
    out = []
    for c in conditions:
        said = next((r.phrase for r in st.readings if r.meaning == c.cypher()), "")
        at = st.low.find(said.lower()) if said else -1
        owned = at >= 0 and _HAS.search(st.low[:at]) is not None
        if c.field == "r.precision" and c.op == "=" and not c.negate and (owned or not _RUN_VERBS.search(st.low)):
            c2 = Condition(field=f"h.peak_{c.value}_tflops", op="IS NOT NULL")
            st.notes.append(f"'{said}' read as a device that states a {c.value} peak ({c2.cypher()})")
        elif c.field == "m.weight_bytes" and owned:
            c2 = c.model_copy(update={"field": "h.memory_bytes"})
            st.notes.append(f"'{said}' read as the device's memory (h.memory_bytes), not a model's weights")
        else:
            out.append(c)
            continue
        st.reread(c.cypher(), c2.cypher())
        out.append(c2)
    return out, subject
