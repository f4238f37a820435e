"""The filter language: each expression's result is checked against the same condition written in Python."""
from __future__ import annotations

import re

import pytest

from embodied_tui.data.filters import (
    FilterError,
    RecordIndex,
    compile_filter,
    filter_records,
    letters_in_order,
    sort_records,
)
from embodied_tui.data.records import Architecture, ModelRecord


def record(name, family, arch_type, params, macs, *, tags=None, weight_bytes=0, activation=None, shape=(1, 3, 224, 224),
           fmt="onnx", version=1, task=None) -> ModelRecord:
    return ModelRecord(
        name=name, version=version, path=f"/m/{name}", format=fmt, sha256="0" * 64, size_bytes=weight_bytes + 100,
        registered_at="2025-01-01T00:00:00+00:00", params=params, macs=macs,
        flops=None if macs is None else 2 * macs, other_flops=0, weight_bytes=weight_bytes,
        activation_bytes=activation, input_shapes=[list(shape)], tags=tags or {},
        architecture=Architecture(type=arch_type, family=family, task=task))


RECORDS = [
    record("resnet18", "resnet", "cnn", 11_689_512, 1_814_083_944, tags={"site": "lab"}, weight_bytes=46_758_048,
           activation=3_211_264, task="classification"),
    record("yolov8n", "yolo", "cnn", 3_157_200, 4_400_000_000, tags={"robot": "", "site": "field"},
           weight_bytes=12_628_800, shape=(1, 3, 640, 640), task="detection"),
    record("yolov8x", "yolo", "cnn", 68_200_000, 129_000_000_000, weight_bytes=272_800_000, shape=(1, 3, 640, 640),
           fmt="torchscript"),
    record("vit-b16", "vit", "transformer", 86_567_656, 17_560_000_000, tags={"site": "lab"}, weight_bytes=346_270_624,
           fmt="exported_program", version=3),
    record("policy", "lstm", "rnn", 100_488, None, tags={"robot": ""}, weight_bytes=401_952, shape=(1, 16, 32),
           fmt="safetensors"),
]


def names(expr):
    return [r.name for r in filter_records(RECORDS, expr)]


def expect(pred):
    return [r.name for r in RECORDS if pred(r)]


CASES = [
    ("family = yolo AND params < 10M AND gmacs <= 5",
     lambda r: r.architecture.family == "yolo" and r.params < 10e6 and r.macs is not None and r.macs / 1e9 <= 5),
    ("tags.site = lab", lambda r: r.tags.get("site") == "lab"),
    ("tags.site != lab", lambda r: r.tags.get("site") != "lab"),
    ("family = yolo OR type = transformer", lambda r: r.architecture.family == "yolo" or r.architecture.type == "transformer"),
    ("(family = yolo OR family = vit) AND NOT params > 80M",
     lambda r: r.architecture.family in ("yolo", "vit") and not r.params > 80e6),
    ("NOT tags.site = lab", lambda r: not r.tags.get("site") == "lab"),
    ("params >= 3157200", lambda r: r.params >= 3_157_200),
    ("params > 3.1572M", lambda r: r.params > 3_157_200),
    ("macs < 2G", lambda r: r.macs is not None and r.macs < 2e9),
    ("macs != 0", lambda r: r.macs != 0),  # unknown MACs match != (they are not 0)
    ("gflops > 30", lambda r: r.flops is not None and r.flops / 1e9 > 30),
    ("weight_mb < 50", lambda r: r.weight_bytes / 1e6 < 50),
    ("weight_bytes < 50MB", lambda r: r.weight_bytes < 50e6),
    ("weight_mb >= 0.25GB", lambda r: r.weight_bytes >= 250e6),
    ("weight_bytes < 1MiB", lambda r: r.weight_bytes < 2**20),
    ("activation_mb > 1", lambda r: r.activation_bytes is not None and r.activation_bytes / 1e6 > 1),
    ("input = 1x3x640x640", lambda r: [1, 3, 640, 640] in r.input_shapes),
    ("input = 1,3,224,224", lambda r: [1, 3, 224, 224] in r.input_shapes),
    ("input ~ 640", lambda r: any("640" in "x".join(map(str, s)) for s in r.input_shapes)),
    ("format = ONNX", lambda r: r.format == "onnx"),
    ("name ~ yolo", lambda r: "yolo" in r.name),
    ("name !~ yolo", lambda r: "yolo" not in r.name),
    ("version > 1", lambda r: r.version > 1),
    ("task = detection", lambda r: r.architecture.task == "detection"),
    ("tags = robot", lambda r: "robot" in r.tags),
    ("tags ~ 'site='", lambda r: "site" in r.tags),
    ("family == yolo params<10M", lambda r: r.architecture.family == "yolo" and r.params < 10e6),  # implicit AND
    ("description ~ 'nothing here'", lambda r: False),
    ("", lambda r: True),
    # plain words: fuzzy text over name, family, type, task, format and tags (every word must match)
    ("yolo", lambda r: "yolo" in r.name),
    ("robot", lambda r: "robot" in r.tags),
    ("transformer", lambda r: r.architecture.type == "transformer"),
    ("rsnt", lambda r: r.name == "resnet18"),  # letters in order in the name
    ("lab vit", lambda r: r.tags.get("site") == "lab" and r.architecture.family == "vit"),
    ("yolo OR lstm", lambda r: r.architecture.family in ("yolo", "lstm")),
]


@pytest.mark.parametrize("expr,pred", CASES, ids=[c[0] or "empty" for c in CASES])
def test_expression_matches_python(expr, pred):
    assert names(expr) == expect(pred)


def test_keywords_are_case_insensitive():
    assert names("family = yolo and not params > 10m") == names("family = yolo AND NOT params > 10M") == ["yolov8n"]


ERRORS = [
    ("family = yolo AND parms < 10M", "parms", "unknown field 'parms' (did you mean params?)"),
    ("famly = yolo", "famly", "did you mean family?"),
    ("params < 10X", "10X", "unknown unit 'X'"),
    ("params < 10MB", "10MB", "byte fields"),
    ("params < lots", "lots", "needs a number"),
    ("params ~ 5", "5", "compares text"),
    ("input < 1x3", "1x3", "does not apply to input"),
    ("(family = yolo", "(", "never closed"),
    ("family = yolo)", ")", "no '(' to close"),
    ("= yolo", "=", "needs a field before it"),
    ("name = 'open", "'open", "unclosed quote"),
    ("a ! b", "!", "'!' must be part of"),
    ("family = yolo AND", None, "ends too early"),
    ("params <", None, "expected a value"),
]


@pytest.mark.parametrize("expr,token,message", ERRORS, ids=[e[0] for e in ERRORS])
def test_bad_expressions_point_at_the_token(expr, token, message):
    with pytest.raises(FilterError) as exc:
        compile_filter(expr)
    err = exc.value
    column = (expr.rindex(token) if token not in ("(", "=") else expr.index(token)) + 1 if token else len(expr) + 1
    assert err.column == column, (err.column, column)
    assert str(err).startswith(f"bad filter at column {column}: ") and message in str(err)
    assert "\n" not in str(err)
    line, caret = err.caret().splitlines()
    assert line == expr and caret == " " * (column - 1) + "^"


def test_sorting():
    by_params = sort_records(RECORDS, "params")
    assert [r.params for r in by_params] == sorted(r.params for r in RECORDS)
    desc = sort_records(RECORDS, "-gmacs")
    known = sorted((r for r in RECORDS if r.macs is not None), key=lambda r: -r.macs)
    assert desc == known + [r for r in RECORDS if r.macs is None]  # unknown last, also descending
    assert sort_records(RECORDS, "gmacs")[-1].name == "policy"
    assert [r.name for r in sort_records(RECORDS, "name")] == sorted(r.name for r in RECORDS)
    assert [r.name for r in sort_records(RECORDS, "-family")][0] == "yolov8n"  # ties keep the given order
    assert sort_records(RECORDS, None) == RECORDS
    with pytest.raises(FilterError, match="unknown sort field 'parms' \\(did you mean params\\?\\)"):
        sort_records(RECORDS, "-parms")


# ------------------------------------------------------------------------------------------------ RecordIndex
SORT_KEYS = (None, "name", "-name", "params", "-gmacs", "family", "-family", "registered_at", "tags", "-input")
# more records than RECORDS, with ties, unknown values and name order != given order, for the index to keep apart
MANY = [r.model_copy(update={"name": f"{r.name}-{i}", "params": (i * 7919) % 13,
                             "macs": None if i % 5 == 0 else r.macs})
        for i, r in enumerate(RECORDS * 8)][::-1]


@pytest.mark.parametrize("expr", [c[0] for c in CASES] + ["NOT (yolo OR lab)", "params < 6 OR NOT params > 2"],
                         ids=[c[0] or "empty" for c in CASES] + ["not-or", "or-not"])
def test_index_filters_and_sorts_as_filter_records_and_sort_records(expr):
    index = RecordIndex(MANY)
    for key in SORT_KEYS:
        want = sort_records(filter_records(MANY, expr), key)
        assert index.filter(expr, key) == want, key
        assert index.filter(expr, key) == want, key  # again, from the kept values and orders
    matched = index.matches(expr)
    assert (matched is None) == (not expr.strip())
    if matched is not None:
        assert sorted(matched) == [i for i, r in enumerate(MANY) if compile_filter(expr)(r)]


def test_index_one_instance_answers_many_expressions_in_a_row():
    """The TUI keeps one index and asks it once per key press: each answer must stand on its own."""
    index = RecordIndex(MANY)
    for expr in ("y", "yo", "yol", "yolo", "yolo OR", "yolo OR lstm", "family = yolo", "", "params < 5"):
        try:
            want = sort_records(filter_records(MANY, expr), "-params")
        except FilterError as exc:
            with pytest.raises(FilterError) as got:
                index.filter(expr, "-params")
            assert (got.value.column, got.value.why) == (exc.column, exc.why)
            continue
        assert index.filter(expr, "-params") == want, expr


def test_index_reports_bad_expressions_and_sort_keys_like_the_functions():
    index = RecordIndex(RECORDS)
    for expr, _, message in ERRORS:
        with pytest.raises(FilterError, match=re.escape(message)):
            index.matches(expr)
    with pytest.raises(FilterError, match="unknown sort field 'parms'"):
        index.order("-parms")
    assert RecordIndex([]).filter("yolo", "params") == []


def _in_order(needle: str, text: str) -> bool:
    it = iter(text)
    return all(ch in it for ch in needle)


def test_letters_in_order_is_a_subsequence_test_even_for_regex_characters():
    import random

    rng = random.Random(0)
    alphabet = "ab]^-\\.*[$ x"
    for _ in range(3000):
        needle = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4)))
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert bool(letters_in_order(needle)(text)) == _in_order(needle, text), (needle, text)
    assert letters_in_order("rsnt")("resnet18") and not letters_in_order("tsnr")("resnet18")
