"""Plain-language questions -> a structured query -> the Cypher that runs on the registry graph. Pure: no I/O.

``parse_question(text, vocabulary)`` reads a question a phrase at a time; each phrase it understands becomes a
condition, an ordering or a limit, recorded as a *reading* (``"under 30 ms" -> r.latency_ms < 30``). Words it does
not understand are returned in ``unparsed`` (with a "did you mean" when one is close), never guessed at silently; an
assumption it has to make (``"30 fps"`` with no comparison read as *at least*) is stated in ``notes``.

What it understands (units are converted to the graph's fields, see ``embodied_tui.ask.graph``):

- thresholds with units and a comparison: ``under/below/less than/fewer than/faster than/within/at most/up to/over/
  above/more than/at least/no more than/between .. and ..``, ``<``, ``<=``, ``or less``, ``or more`` on
  ms/s/us (``r.latency_ms``), fps/Hz (``r.fps``), W (``h.power_w``), mJ/J (``r.energy_mj``), k/M/B params
  (``m.params``), MMACs/GMACs (``m.macs``), MFLOPs/GFLOPs/TFLOPs (``m.flops``), KB/MB/GB/MiB (``m.weight_bytes``,
  1 MB = 1e6 bytes, 1 MiB = 2^20);
- devices by id, name, alias or a few words of them (``jetson``, ``orin nano``, ``pi 5``, ``hailo``, ``rtx 4090``),
  device types (``gpus``, ``cpus``, ``npus``); power modes (``at 15 W``, ``15W mode`` -> ``h.power_w = 15``; ``MAXN``,
  ``maxn super``, ``<mode name> mode`` -> ``h.power_mode``); precisions (``fp16``, ``int8``, ``half precision``);
- model names, families (``yolo``, ``resnets``, ``vision transformers``), architecture types (``cnns``,
  ``transformers``) and tasks (``detectors``, ``classifiers``, ``segmentation``, ``policies``), each negatable
  (``not on hailo``, ``except yolo``);
- ``fits in memory``, ``memory-bound``/``compute-bound``, ``measured``, ``how many``;
- stored pipeline names (``pi05``, ``pi0.5``, ``openvla`` for ``openvla-7b``): the question is then about the
  pipeline's fits (``(p:Pipeline)-[r:RUNS_ON]->(h:Hardware)``; ``ask.phrases.as_pipeline_question``);
- superlatives: fastest/slowest, smallest/largest, cheapest in energy, most headroom, fewest MACs, lowest power, with
  ``top 3``/``3 fastest``; a singular superlative (``the fastest model``) keeps one row, a plural one orders them all;
  ``by parameter count``/``by MACs``/``top 3 by fps per watt`` name the measure (``parameter count`` is never a count);
- number words and everyday units: ``a billion MACs``, ``five million weights`` (weights counted = params), ``2 megs
  of weights`` (bytes), ``1.5k``, ``less than a millisecond``; ranges ``between .. and ..``, ``from .. to ..``, ``1 to
  10 million``, ``1-10 M params``;
- derived metrics: fps per watt = frames per joule = 1000 / ``r.energy_mj`` (``best fps per watt`` orders by energy
  per inference ascending; ``over 20 fps/W`` is ``r.energy_mj < 50``);
- hardware-only questions from the catalog: peaks (``more than 50 TOPS int8`` -> ``h.peak_int8_tflops``; TOPS alone
  is int8, TFLOPS alone fp16, said in a note), memory bandwidth (``h.memory_bandwidth_gbps``), memory
  (``h.memory_bytes``), ``power modes``;
- relative thresholds: ``lighter/heavier/smaller than <model>``, ``fewer MACs than <model>`` (that model's own size,
  strict); ``faster/quicker/slower than <model> on <device>`` (that model's own predicted latency on the same device,
  power mode and precision: ``query.Relative``, resolved by ``services.ask``; refused without a device); tags (``the robot tag``, ``tagged robot``, ``at the lab site``, ``tags.site = lab``: the models carrying
  them, from the registry);
- comparisons (``is A faster than B on X``, ``A vs B``, ``how much faster is A on X than on Y``): ``compare`` holds
  the two sides and ``ask.verdict.comparison`` states the verdict and the ratio; ``is A bigger than B``, ``does A
  have fewer MACs than B`` compare two models' sizes (their own rows, the registry's counts);
- a measure asked of what is named: ``how many params does X have``, ``what family is X`` (X's row);
  ``the fps of X on Y``, ``energy per inference ... in mJ`` (that column on each fit row);
- a word not understood that is close to exactly one known name is corrected, and the notes say so (a dashed or
  underscored name whole: ``yolo-styel``); close to several, the question is refused with them (``reasons``);
  ``understood`` is false while a meaning-carrying word is unread.

``StructuredQuery.to_cypher()`` is the exact query ``services.ask`` runs on the graph.

The parts, one module each: ``ask.query`` (the StructuredQuery and its Cypher), ``ask.text`` (the question being
read), ``ask.words`` (the word tables), ``ask.quantities`` (numbers with units), ``ask.vocab`` (the vocabulary and the
names it holds: models, devices, power modes, families), ``ask.phrases`` (superlatives, flags, subject, ordering) and
``ask.tool`` (the query as an LLM tool: schema, request, validation of the call).
"""
from __future__ import annotations

import re

from pydantic import ValidationError

from embodied_tui.ask.phrases import (
    as_hardware_question,
    as_pipeline_question,
    merge,
    ordering,
    read_aggregates,
    read_asked_measures,
    read_bounds,
    read_commands,
    read_flags,
    read_group,
    read_hardware_measures,
    read_measured_and_predicted,
    read_measures,
    read_recommendation,
    read_superlatives,
    subject_of,
)
from embodied_tui.ask.quantities import (
    AMOUNT,
    CMP_RE,
    RATES,
    STORAGE_WORDS,
    hardware_op,
    read_activation_sizes,
    read_bare_quantities,
    read_display_units,
    read_field_nouns,
    read_measure_first,
    read_orders_of_magnitude,
    read_quantization_words,
    read_restated_units,
    read_size_adjectives,
    read_storage_words,
    read_thresholds,
)
from embodied_tui.ask.query import FIELDS, MAX_CONDITIONS, Condition, Order, Reading, StructuredQuery
from embodied_tui.ask.text import QuestionText
from embodied_tui.ask.tool import query_from_spec, tool_schema
from embodied_tui.ask.vocab import (
    DeviceTerm,
    Vocabulary,
    close_names,
    leftovers,
    read_comparison,
    read_devices,
    read_families,
    read_input_shapes,
    read_mode_extremes,
    read_model_names,
    read_pipeline_names,
    read_power_modes,
    read_relative,
    read_tags,
    resolve_mode_extremes,
)
from embodied_tui.ask.words import DEVICE_TYPES, FORMAT_WORDS, KNOWN_FAMILIES, PRECISIONS, TASK_WORDS, TYPE_WORDS
from embodied_tui.errors import UserError

MAX_QUESTION_CHARS = 2_000  # a question past this is refused: reading is about linear, but nobody asks in 2 pages

__all__ = ["FIELDS", "MAX_QUESTION_CHARS", "Condition", "DeviceTerm", "Order", "Reading", "StructuredQuery",
           "Vocabulary", "parse_question", "query_from_spec", "tool_schema"]


# 'per device', 'for each board', 'on every target': a superlative asked of each device in turn
_PER_DEVICE = (r"(?<![a-z])(?:per|(?:for|on|in)\s+(?:each|every))\s+(?:single\s+)?(?:device|board|target|platform|"
               r"chip|accelerator|soc|gpu|hardware|jetson|pi)s?(?![a-z])")


def parse_question(text: str, vocabulary: Vocabulary) -> StructuredQuery:
    """Read ``text`` into a StructuredQuery (see the module docstring). Pure; raises UserError for an empty text.

    The readers run in a fixed order, each taking the phrases it understands out of the text: names and units first,
    so that 'memory' in 'memory-bound' or '15' in 'at 15 W' cannot be read as something else later."""
    if not isinstance(text, str) or not text.strip():
        raise UserError('empty question; try: embodied-ai ask "which models run under 30 ms on a jetson at 15 W?"')
    if len(text) > MAX_QUESTION_CHARS:
        raise UserError(f"question too long ({len(text):,} characters; the limit is {MAX_QUESTION_CHARS:,}): ask "
                        f"something shorter, or write the Cypher for `embodied-ai query`")
    try:
        return _corrected(text, vocabulary)
    except ValidationError as exc:  # a number or list past a bound of the query (query.MAX_*): one line
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise UserError(f"the question cannot be asked as one query ({where or 'value'}: "
                        f"{err['msg'].removeprefix('Value error, ')})") from None


_SPACES = re.compile(r"\s+")
MAX_CORRECTIONS = 3


def _corrected(text: str, vocabulary: Vocabulary) -> StructuredQuery:
    """Read the question; a word not understood that is close to exactly one known name (a model, device word,
    family, pipeline: ``vocab.close_names``) is corrected and the question read again, saying so in the notes. A word
    close to several names is refused with them (never widened to every model)."""
    said: list[str] = []
    variants: dict[str, str] = {}  # 'resnet50' -> resnet: a model asked for, never widened to its close name
    for _ in range(MAX_CORRECTIONS + 1):
        parsed = _read(text, vocabulary)
        fixes = [_fix(w, text, vocabulary) for w in dict.fromkeys(parsed.unparsed)]  # each word once
        variants.update((w, c[0]) for w, c in fixes if len(c) == 1 and w not in variants
                        and _a_variant_of(w, c[0], vocabulary))
        one = next(((w, c[0]) for w, c in fixes if len(c) == 1 and w not in variants), None)
        if one is None or len(said) >= MAX_CORRECTIONS:
            break
        wrong, right = one
        text = re.sub(rf"(?<![\w]){re.escape(wrong)}(?![\w])", right.replace("\\", ""), text, count=1)
        said.append(f"'{wrong}' read as '{right}' (the one close name)")
    said_twice = tuple(f"'{word}' was not understood" for word in variants)  # said once, below, with why
    reasons = [r for r in parsed.reasons if not r.startswith(said_twice)] if variants else list(parsed.reasons)
    notes = [n for n in parsed.notes if not n.startswith(said_twice)] if variants else list(parsed.notes)
    for word, close in variants.items():
        hint = f"say '{close} models' for the family" if close not in vocabulary.models else f"close: {close}"
        reasons.insert(0, f"'{word}': no model of that name is registered ({hint}; `embodied-ai model list`)")
    for word in dict.fromkeys(parsed.unparsed):
        close = close_names(word, vocabulary)
        if len(close) > 1:
            reasons.append(f"'{word}' is close to several names ({', '.join(close)}): say which")
    return parsed.model_copy(update={"notes": said + notes, "reasons": reasons})


def _a_variant_of(word: str, name: str, vocabulary: Vocabulary) -> bool:
    """Whether ``word`` names a model of its own rather than misspelling ``name``: a family name with a variant after
    it ('resnet50', 'mobilenet_v3': not every model of the family), or a sibling of a model name, with other numbers or
    another size after them ('yolov8s' for yolov8n, 'efficientnet_b1' for efficientnet_b0, 'mobilenet_v3_large' for
    mobilenet_v3_small: another model, not a typo)."""
    low = word.lower()
    if name in set(vocabulary.families) | set(KNOWN_FAMILIES):
        return low.startswith(name) and re.search(r"\d", low[len(name):]) is not None
    if name not in vocabulary.models or not re.search(r"\d", low) or not re.search(r"\d", name):
        return False

    def variant(text: str) -> tuple:  # its numbers, and what follows the last one (separators aside)
        runs = re.findall(r"\d+", text.lower())
        return runs, re.sub(r"[\W_]+", "", re.split(r"\d+", text.lower())[-1])

    return variant(low) != variant(name)


def _fix(word: str, text: str, vocabulary: Vocabulary) -> tuple[str, list[str]]:
    """(the word to correct, the names close to it): the whole dashed or underscored token the word was left of
    ('yolo-styel', where 'yolo' was read as a family and '-styel' left) when that token is close to exactly one name,
    else the word itself."""
    whole = re.search(rf"(?<![\w.-])[\w.-]*{re.escape(word)}[\w.-]*", text)
    token = whole.group(0).strip(".-_") if whole else word
    if token != word and len(close := close_names(token, vocabulary)) == 1:
        return token, close
    return word, close_names(word, vocabulary)


def _per_device_values(st: QuestionText) -> None:
    """'memory bound on the pi 5 but compute bound on the orin nano': two values of one fit-row field, each meant for
    its own device. One query's rows cannot say that (merged, it would read as either value on either device), so it
    is a reason to refuse, said in words."""
    if not re.search(r"\b(?:but|while|whereas|yet)\b", st.low):
        return
    devices = [c for c in st.conditions if c.field == "h.device" and not c.negate]
    values: dict[str, set] = {}
    for c in st.conditions:
        if c.field.startswith("r.") and c.op == "=" and not c.negate and isinstance(c.value, (str, bool)):
            values.setdefault(c.field, set()).add(c.value)  # 'doesn't fit on A but fits on B': false and true
    # 'fits on the coral but not on the hailo-8': a device left out that no named device holds reads as nothing left
    # out (the rows are the coral's), while it was meant as the fit row's condition NOT met there
    named = {v for c in devices for v in (c.value if isinstance(c.value, list) else [c.value])}
    for c in st.conditions:
        if c.field == "h.device" and c.negate and named and values:
            apart = set(c.value if isinstance(c.value, list) else [c.value]) - named
            if apart:
                st.reasons.append(f"{c.cypher()} beside another device: one question's rows cannot say a model meets "
                                  f"a condition on one device and not on another; ask about each device apart")
                return
    for fld, said in values.items():
        if len(said) > 1 and len(devices) > 1:
            said = {str(v).lower() if isinstance(v, bool) else v for v in said}
            st.reasons.append(f"{' and '.join(sorted(said))} ({fld}) each on its own device: one question's rows "
                              f"cannot pair a value with a device; ask about each device apart")


def _as_gib(st: QuestionText, c: Condition) -> Condition:
    """A device's memory in whole GB is the GiB it is sold as ('8 GB' Orin Nano: 8 GiB = 8,589,934,592 bytes), so that
    'exactly 8 GB' finds it and 'more than 16 GB' leaves the 16 GB ones out; said in a note."""
    if c.field != "h.memory_bytes" or isinstance(c.value, bool) or not isinstance(c.value, (int, float)) \
            or c.value <= 0 or c.value % 1e9:
        return c
    gib = int(c.value // 1e9) * 2 ** 30
    st.notes.append(f"{c.value / 1e9:g} GB of device memory read as {c.value / 1e9:g} GiB ({gib:,} bytes), as devices "
                    f"are sold")
    new = c.model_copy(update={"value": gib})
    st.reread(c.cypher(), new.cypher())
    return new


_AT_PRECISION = {"m.weight_bytes": "r.weight_bytes", "m.activation_bytes": "r.activation_bytes"}


def _at_precision(st: QuestionText, conditions: list[Condition]) -> list[Condition]:
    """'more than 1 MB of weights in fp16': a size in bytes asked with a precision is the size at that precision
    (the fit row's ``r.weight_bytes``), not as stored (fp32 for most files)."""
    if not any(c.field == "r.precision" and not c.negate for c in conditions):
        return conditions
    out = []
    for c in conditions:
        if c.field in _AT_PRECISION and c.op != "IS NOT NULL":
            moved = c.model_copy(update={"field": _AT_PRECISION[c.field]})
            st.reread(c.cypher(), moved.cypher())
            st.notes.append(f"{c.field} read at the precision asked: {moved.cypher()} (the bytes at that precision, "
                            f"not as stored)")
            c = moved
        out.append(c)
    return out


# the stored dtypes (``data.records.ModelRecord.dtype``: ONNX's names, lower case) of weights at each precision a
# question may name beside 'quantized'
STORED_DTYPES = {"int8": ["int8", "uint8"], "int4": ["int4", "uint4"],
                 "fp8": ["float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz"], "fp4": ["float4e2m1"],
                 "fp16": ["float16"], "bf16": ["bfloat16"], "fp32": ["float32"]}
# ... and of quantized weights, whatever the precision: the integer and 8-bit float ones
QUANTIZED_DTYPES = [*STORED_DTYPES["int8"], *STORED_DTYPES["int4"], "int16", "uint16", *STORED_DTYPES["fp8"]]
_QUANTIZED_WORD = re.compile(r"quanti[sz]ed$")


def _quantized_restates(st: QuestionText) -> None:
    """'quantized to int4', 'int8-quantized', 'not quantized to int8': beside a precision it names, 'quantized' (read
    alone as int8) restates that precision, and its negation is the precision's: one condition, not int8 and int4 at
    once (which no row meets)."""
    from_word = [r for r in st.readings if r.meaning.removeprefix("NOT ").startswith("r.precision = ")
                 and _QUANTIZED_WORD.search(r.phrase.lower())]
    words = {r.meaning for r in from_word}
    named = [c for c in st.conditions if c.field == "r.precision" and c.op == "=" and c.cypher() not in words]
    if not from_word or not named:
        return
    negated = any(r.meaning.startswith("NOT ") for r in from_word)
    st.conditions[:] = [c for c in st.conditions if c.cypher() not in words or any(c is n for n in named)]
    if negated:
        for c in named:
            st.reread(c.cypher(), c.model_copy(update={"negate": True}).cypher())
            c.negate = True
    restated = "restates " + " and ".join(c.cypher() for c in named)
    st.readings[:] = [r.model_copy(update={"meaning": restated}) if any(r is w for w in from_word) else r
                      for r in st.readings]


def _stored_quantized(st: QuestionText, conditions: list[Condition]) -> list[Condition]:
    """'which models are quantized?', 'models quantized to int4': with no device, mode or other fit condition, the
    models whose weights are stored quantized (``m.dtype``: any integer or 8-bit float type, or those of the precision
    named), not every model's fit rows at that precision (what 'quantized' means beside a device: 'run quantized on
    the orin nano')."""
    quantized = [r for r in st.readings if _QUANTIZED_WORD.search(r.phrase.lower())]
    kept = [r for r in st.readings if re.fullmatch(STORAGE_WORDS, r.phrase.lower())]  # 'stored in', 'weights'
    said = quantized + kept
    on_fits = any(c.field.startswith(("h.", "r.")) and c.field != "r.precision" for c in conditions) or any(
        f.startswith(("h.", "r.")) for f, _, _ in st.order)
    precisions = [c for c in conditions if c.field == "r.precision"]
    if not said or on_fits or len(precisions) != 1 or precisions[0].op != "=" \
            or precisions[0].value not in STORED_DTYPES:
        return conditions
    named = precisions[0]
    only_the_word = all(_QUANTIZED_WORD.search(r.phrase.lower()) for r in st.readings
                        if r.meaning.removeprefix("NOT ").startswith("r.precision"))
    stored = Condition(field="m.dtype", op="IN", value=QUANTIZED_DTYPES if only_the_word else STORED_DTYPES[named.value],
                       negate=named.negate)
    st.reread(named.cypher(), stored.cypher())
    st.reread("restates " + named.cypher(), stored.cypher())  # the word 'quantized' beside the precision
    how = "quantized (m.dtype an integer or 8-bit float type)" if only_the_word else f"at {named.value} (m.dtype)"
    word = "quantized" if quantized else kept[0].phrase
    st.notes.append(f"'{word}' read as weights stored {how}; name a device for the fit rows at {named.value}")
    return [stored if c is named else c for c in conditions]


_CANNOT = re.compile(r"(?<![a-z])(?:can't|cannot|can\s+not|won't|will\s+not|doesn't|does\s+not|don't|do\s+not)\s+"
                     r"(?:run|do|hit|reach|manage|achieve|get|handle)\s")


def _cannot_meet(st: QuestionText, conditions: list[Condition]) -> None:
    """'which devices can't run X in under 10 ms': the negation read on the model would list every other model's fast
    rows, and on the latency each slow mode of a device that has fast ones too; the devices where no mode and precision
    meets it are not one query's rows. Refused in words, with the question that lists those that do."""
    model = [c for c in conditions if c.field == "m.name" and c.negate and c.op == "="]
    measured = [c for c in conditions if c.field in ("r.latency_ms", "r.fps", "r.energy_mj") and not c.negate]
    if len(model) == 1 and measured and _CANNOT.search(st.low):
        st.reasons.append(f"'can't run {model[0].value}' with {measured[0].cypher()}: the devices where no power mode "
                          f"and precision meets it are not rows one question lists; ask which devices run "
                          f"{model[0].value} so (those not listed cannot)")


_ANYWHERE = re.compile(r"(?<![a-z])(?:anywhere|on\s+any\s+(?:device|hardware|board|chip|target)s?|on\s+anything)"
                       r"(?![a-z])")


def _nowhere(st: QuestionText, conditions: list[Condition]) -> None:
    """'models that don't run under 1 ms anywhere': the models with no row meeting it on any device are not rows one
    question lists (a negated row condition keeps each slow row, of models fast elsewhere too). Refused in words,
    with the question that lists those that do."""
    negated = [c for c in conditions if c.negate and c.field.startswith("r.")]
    if negated and _ANYWHERE.search(st.low):
        positive = negated[0].model_copy(update={"negate": False}).cypher()
        st.reasons.append(f"'{negated[0].cypher()}' anywhere: the models with no row meeting {positive} on any device "
                          f"are not rows one question lists; ask which models meet it (those not listed do not)")


_COMPARED = re.compile(r"(?:NOT\s+)?(?P<field>[mhr]\.\w+)\s*(?P<op><=|>=|<|>|=|IN\b)")


def _either(st: QuestionText) -> None:
    """'models over 2 GMACs or over 1M params': two conditions joined by 'or' are not ANDed silently; refused in
    words unless they are values of one field ('fp16 or int8', 'the pi 4 or the pi 5': one IN, as merged)."""
    spans = []
    for r in st.readings:
        m = _COMPARED.match(r.meaning)
        at = st.low.find(r.phrase.lower())
        if m and at >= 0:
            spans.append((at, at + len(r.phrase), m.group("field"), m.group("op"), r.phrase))
    spans.sort()
    for (_, end, field, op, phrase), (start, _, field2, op2, phrase2) in zip(spans, spans[1:]):
        if not re.fullmatch(r"\s*,?\s*(?:or|either)\s+(?:the\s+|a\s+|an\s+)?", st.low[end:start]):
            continue
        if field != field2 or op not in ("=", "IN") or op2 not in ("=", "IN"):
            st.reasons.append(f"'{phrase} or {phrase2}': a question's conditions all hold together, so 'or' between "
                              f"two of them is not answered as 'and'; ask each on its own, or write the Cypher with "
                              f"OR for `embodied-ai query`")


def _read(text: str, vocabulary: Vocabulary) -> StructuredQuery:
    # one space for any run of whitespace: the readers' patterns allow \s* in several places in a row, and a long run
    # between a number and a word made them backtrack (2,000 spaces after a '1': 45 s)
    raw = _SPACES.sub(" ", text.strip()).replace("\u2019", "'").replace("\u2264", "<=").replace("\u2265", ">=")
    low = raw.lower()
    if len(low) != len(raw):  # a character whose lower case is longer: keep positions aligned
        low = "".join(c.lower() if len(c.lower()) == 1 else c for c in raw)
    st = QuestionText(raw=raw, low=low, free=[True] * len(raw))

    read_commands(st)
    read_pipeline_names(st, vocabulary)
    read_aggregates(st)
    recommend = read_recommendation(st)
    read_tags(st, vocabulary)
    read_input_shapes(st, vocabulary)
    read_relative(st, vocabulary)
    read_model_names(st, vocabulary)
    read_hardware_measures(st, CMP_RE, hardware_op, AMOUNT)
    st.read_entities(PRECISIONS, "r.precision")
    read_bounds(st)
    read_activation_sizes(st)
    read_thresholds(st)
    read_orders_of_magnitude(st)
    read_measure_first(st)
    read_mode_extremes(st)
    read_power_modes(st, vocabulary)
    read_bare_quantities(st, RATES)
    read_devices(st, vocabulary)
    resolve_mode_extremes(st, vocabulary)
    read_measured_and_predicted(st)
    compare = read_comparison(st, vocabulary)
    read_superlatives(st)
    read_measures(st)
    st.read_entities(DEVICE_TYPES, "h.type", "hardware")
    st.read_entities(TASK_WORDS, "m.task", "model")
    read_families(st, vocabulary)
    st.read_entities(TYPE_WORDS, "m.type", "model")
    st.read_entities(FORMAT_WORDS, "m.format", "model")
    read_group(st)
    read_flags(st)
    read_asked_measures(st)
    read_bare_quantities(st, tuple(f for f in FIELDS if f not in RATES))
    read_restated_units(st)
    read_size_adjectives(st)
    read_field_nouns(st)
    read_quantization_words(st)
    read_storage_words(st)
    read_display_units(st)
    unparsed = st.ignored + leftovers(st, vocabulary)

    _per_device_values(st)
    _quantized_restates(st)
    _either(st)
    conditions = merge(st.conditions)
    if len(conditions) > MAX_CONDITIONS:
        raise UserError(f"the question asks for {len(conditions)} conditions (the limit is {MAX_CONDITIONS}): ask "
                        f"something simpler, or write the Cypher for `embodied-ai query`")
    subject = subject_of(st, conditions)
    conditions, subject = as_hardware_question(st, conditions, subject)
    conditions = [_as_gib(st, c) for c in conditions]
    conditions = _at_precision(st, conditions)
    conditions = _stored_quantized(st, conditions)
    _cannot_meet(st, conditions)
    _nowhere(st, conditions)
    order, limit = ordering(st, conditions)
    if recommend and not conditions and not order and compare is None:
        st.reasons.append("'should I use' asks for a recommendation: say what for (a device, a latency or rate, a "
                          "task, a size), e.g. 'the fastest detector on the orin nano under 20 ms'")
    asked = None
    if any(c.field == "p.name" for c in conditions):
        conditions, order, asked = as_pipeline_question(st, conditions, order)
        subject = "hardware" if st.subject_votes and min(st.subject_votes)[1] == "hardware" else "pipeline"
    group_by = st.group_by if st.count else None
    if st.group_by is not None and not st.count:
        st.reasons.append(f"'{st.group_by}': only a count ('how many ...') is split into groups")
    if group_by is not None and subject == "hardware" and group_by == "m.type":
        group_by = "h.type"  # 'how many devices per type'
        st.reread("counted per m.type", "counted per h.type")
    if group_by is not None and group_by[0] != {"model": "m", "hardware": "h"}.get(subject):
        st.reasons.append(f"a count of {subject}s cannot be split by {group_by}")
        group_by = None
    claim = None
    names = [c for c in conditions if c.field == "m.name" and c.op == "=" and not c.negate]
    if st.yes_no and order and limit == 1 and compare is None and st.relative is None and len(names) == 1:
        claim = str(names[0].value)  # 'is X the fastest model on Y?': the fastest is found, then compared with X
        conditions = [c for c in conditions if c is not names[0]]
        subject = subject_of(st, conditions)
        st.reread(names[0].cypher(), f"the verdict: is {claim} the first row?")
    if st.ordinal is not None:  # 'the second fastest': the row at that place of the ordering
        st.reread(f"LIMIT {st.ordinal}", f"the row at place {st.ordinal} of the ordering")
    lowered = raw.lower()
    readings = sorted(st.readings, key=lambda r: lowered.find(r.phrase.lower()))  # in the question's order
    query = StructuredQuery(subject=subject, conditions=conditions, order_by=order, limit=limit, count=st.count,
                           asked_rate_hz=asked, readings=readings, unparsed=unparsed, notes=st.notes,
                           compare=compare, reasons=st.reasons, relative=st.relative,
                           yes_no=st.yes_no and compare is None and asked is None, claim=claim, group_by=group_by,
                           ordinal=st.ordinal)
    per_device = (limit is not None and order and not st.count and compare is None and query.joins()
                  and subject == "model" and not query.yes_no and st.ordinal is None
                  and (st.every_device or re.search(_PER_DEVICE, st.low) is not None))
    if per_device:  # 'the fastest model on each jetson', 'the 3 fastest models per device': on each device
        what = "the first model" if limit == 1 else f"the first {limit} models"
        notes = [n for n in query.notes if not n.startswith("a singular superlative keeps the first row")]
        notes.append(f"on each device: {what} by {order[0].cypher()} (each at its first row there); the Cypher below "
                     f"lists every row")
        query = query.model_copy(update={"per_device": True, "notes": notes})
        st.every_device = False
    elif limit is not None and limit > 1 and order and not st.count and compare is None and query.joins() \
            and subject in ("model", "hardware"):  # 'the 3 fastest models on Y': three models, each at its best
        what = "model" if subject == "model" else "device"
        first = f"the {what} at place {limit}" if st.ordinal else f"the first {limit} {what}s"
        query.notes.append(f"one row per {what} (its first by {order[0].cypher()}): {first}; the Cypher below lists "
                           f"every row")
        query = query.model_copy(update={"per_subject": True})
    if query.yes_no and query.claim is None and not st.count and re.match(
            r"(?:are|do|does|can|could|will|would|is)\s+(?:(?:really|truly)\s+)?(?:all|every|each)(?![a-z])", st.low):
        # 'are all models under 100k params': yes only when every one is (each subject the question names)
        query = query.model_copy(update={"universal": True})
    if st.count and query.subject == "hardware" and not query.group_by and not query.about_pipelines() and any(
            r.meaning == "list devices x power modes" and re.search(r"modes$", r.phrase.lower()) for r in st.readings):
        # 'how many power modes does the orin nano super have': each device x mode, not the devices
        query.notes.append("counted per device x power mode (h.device_mode)")
        query = query.model_copy(update={"count_key": "h.device_mode"})
    if st.every_device and query.joins() and any(c.field == "h.device" for c in conditions) \
            and not (st.count and query.group_by) and (not st.count or query.subject == "model"):
        query.notes.append("'every'/'both': only models with a row on each device named; the Cypher below "
                           f"{'counts models with one' if st.count else 'lists rows'} on any of them")
        query = query.model_copy(update={"every_device": True})
    return query
