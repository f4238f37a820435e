"""Grounded model cards: every number in a card is found again in the record, its details or its fit rows (with the
conversions the card states), conclusions name their evidence, and the Hugging Face front matter is the record's."""
from __future__ import annotations

import json
import math
import re

import pytest
import yaml
from click.testing import CliRunner

from embodied_tui.cli import main
from embodied_tui.data.records import Uncounted
from embodied_tui.services.card import build_card, sig

SHAPE = re.compile(r"(?<![\w.])\d+(?:x\d+)+(?![\w])")
NUMBER = re.compile(r"(?<![\w.])\d{1,3}(?:,\d{3})+(?!\w)(?!\.\d)|(?<![\w.,])\d+(?:\.\d+)?(?!\w)(?!\.\d)")
EVIDENCE = ("fit row", "per-layer costs", "census", "evidence:", "fits_memory", "calibration column", "macs_complete",
            "bn_folded")


def names_evidence(line: str) -> bool:
    """The line has a parenthetical naming where its claim comes from."""
    return any(re.search(r"\([^()]*" + re.escape(e) + r"[^()]*\)", line) for e in EVIDENCE) or \
        "(evidence: " in line


def parts(fx, name: str):
    record = next(r for r in fx.records if r.name == name)
    return record, fx.details[name], [r for r in fx.rows if r.model == name]


def _numbers(value, out: set[float]) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        if math.isfinite(value):
            out.add(float(value))
    elif isinstance(value, dict):
        for v in value.values():
            _numbers(v, out)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _numbers(v, out)


def sources(record, details, rows) -> tuple[set[float], set[float]]:
    """(figures, shares): every number of the record, details and fit rows, converted by /1e6 and /1e9; and every
    ratio x100 of a MAC figure to the model's MACs (shares)."""
    raw: set[float] = set()
    _numbers(record.model_dump(), raw)
    _numbers([n.model_dump() for n in details.census], raw)
    _numbers([c.model_dump() for c in details.layer_costs], raw)
    _numbers([r.to_dict() for r in rows], raw)
    by_type: dict[str, int] = {}
    for c in details.layer_costs:
        by_type[c.type] = by_type.get(c.type, 0) + c.macs
    raw |= {float(v) for v in by_type.values()}
    raw.add(float(sum(n for t, n in record.layers.items() if "batchnorm" in t.lower())))
    figures = raw | {x / 1e6 for x in raw} | {x / 1e9 for x in raw}
    macs = [float(n.macs) for n in details.census if n.macs] + [float(v) for v in by_type.values()]
    macs += [float(c.macs) for c in details.layer_costs]
    shares = {100 * m / record.macs for m in macs} if record.macs else set()
    return figures, shares


def _close(shown: str, candidates: set[float]) -> bool:
    value = float(shown.replace(",", ""))
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    tol = 0.5 * 10 ** -decimals + 1e-9 * abs(value)
    if "," in shown:  # exact counts
        return value in candidates
    return any(abs(c - value) <= tol for c in candidates)


def strip_known_text(text: str, record, details, rows) -> str:
    """Remove the names that legitimately contain digits (devices, modes, module paths, layer types, the record's
    own notes and evidence) after checking that each backticked path exists."""
    paths = {n.path for n in details.census} | {c.name for c in details.layer_costs} | {"(root)"}
    paths |= {u.module for u in record.uncounted}
    for path in re.findall(r"`([^`]*)`", text):
        assert path in paths, f"`{path}` is not a module of {record.name}"
    text = re.sub(r"`[^`]*`", " ", text)
    names = {r.hardware_name or r.hardware for r in rows} | {r.hardware for r in rows}
    names |= {r.power_mode for r in rows} | set(record.notes) | set(record.architecture.evidence)
    names |= {record.name, record.dtype, record.format_detail, record.sha256[:12], *record.layers}
    names |= {u.reason for u in record.uncounted} | {"2 x MACs", "t0"}
    for name in sorted((n for n in names if n), key=len, reverse=True):
        text = re.sub(rf"(?<!\w){re.escape(name)}(?!\w)", " ", text)
    return text


def check_every_number(card_text: str, record, details, rows) -> int:
    figures, shares = sources(record, details, rows)
    shapes = {"x".join(map(str, s)) for s in record.input_shapes + record.output_shapes}
    shapes |= {"x".join(map(str, c.output_shape)) for c in details.layer_costs if c.output_shape}
    text = strip_known_text(card_text, record, details, rows)
    for shape in SHAPE.findall(text):
        assert shape in shapes, f"shape {shape} is not in the record"
    text = SHAPE.sub(" ", text)
    checked = 0
    for m in NUMBER.finditer(text):
        shown = m.group(0)
        is_share = text[m.end():m.end() + 1] == "%"
        ok = _close(shown, shares if is_share else figures)
        assert ok, f"{shown}{'%' if is_share else ''} in the card of {record.name} is not a figure of its record, " \
                   f"details or fit rows: ...{text[max(0, m.start() - 60):m.end() + 20]}..."
        checked += 1
    return checked


@pytest.mark.parametrize("name", ["resnet_tiny", "mobilenet_tiny", "small_vit", "lstm_policy", "mlp_policy",
                                  "yolo_style_detector", "unet_small"])
def test_every_number_in_the_card_comes_from_the_record_or_fit_rows(fx, name):
    record, details, rows = parts(fx, name)
    card = build_card(record, details, rows)
    checked = check_every_number(card.to_text(), record, details, rows)
    assert checked > 30  # sizes, MACs, shares, latencies, energies: the check had plenty to look at
    assert check_every_number(card.to_markdown(), record, details, rows) == checked


def test_a_number_that_is_not_in_the_record_is_caught(fx):
    record, details, rows = parts(fx, "mlp_policy")
    text = build_card(record, details, rows).to_text().replace(f"{record.params:,}", f"{record.params + 1:,}")
    with pytest.raises(AssertionError, match="is not a figure"):
        check_every_number(text, record, details, rows)


def test_conclusions_name_their_evidence(fx):
    record, details, rows = parts(fx, "yolo_style_detector")
    card = build_card(record, details, rows)
    sections = {s.title: s for s in card.sections}
    assert set(sections) == {"What it is", "Size and cost", "Where the MACs go", "Where it runs", "Caveats"}
    for title in ("Where the MACs go", "Where it runs"):
        for line in sections[title].lines:
            assert names_evidence(line), f"{title}: no evidence named in: {line}"
    what = sections["What it is"].lines
    arch = record.architecture
    assert any(f"{arch.family} family" in line and "(evidence: " in line for line in what)
    assert any(line.endswith("(census).") for line in what)
    best = min((r for r in rows if r.predicted_latency_ms is not None), key=lambda r: r.predicted_latency_ms)
    assert f"it is {best.bound}-bound" in " ".join(sections["Where it runs"].lines)


def test_census_parts_and_top_layers(fx):
    record, details, rows = parts(fx, "yolo_style_detector")
    card = build_card(record, details, rows)
    top_level = {n.path for n in details.census if n.path and "." not in n.path}
    text = card.to_text()
    for path in top_level:
        assert f"`{path}`" in text
    if {"backbone", "neck", "head"} <= top_level:
        assert "The census shows a backbone" in text and "neck" in text
    section = next(s for s in card.sections if s.title == "Where the MACs go")
    columns, table = section.table
    biggest = sorted((c for c in details.layer_costs if c.macs), key=lambda c: -c.macs)[:len(table)]
    assert [row[0] for row in table] == [f"`{c.name}`" for c in biggest]
    assert [row[2] for row in table] == [f"{c.macs:,}" for c in biggest]


def test_caveats_follow_the_record(fx):
    inferred = [r for r in fx.records if r.input_shape_source == "inferred"]
    user = [r for r in fx.records if r.input_shape_source == "user"]
    assert inferred and user
    caveats = lambda rec: " ".join(next(s for s in build_card(*parts(fx, rec.name)).sections  # noqa: E731
                                        if s.title == "Caveats").lines)
    assert "was inferred, not read from the file" in caveats(inferred[0])
    assert "inferred, not read" not in caveats(user[0])
    with_bn = next(r for r in fx.records if any("BatchNorm" in t for t in r.layers))
    assert "Batch norms are separate layers here" in caveats(with_bn)
    record, details, rows = parts(fx, "unet_small")
    partial = record.model_copy(update={"macs_complete": False, "bn_folded": True, "uncounted": [
        Uncounted(module="head", op="nonzero", reason="data-dependent output size")]})
    text = " ".join(next(s for s in build_card(partial, details, rows).sections if s.title == "Caveats").lines)
    assert "MACs are incomplete" in text and "Not counted: `head` (nonzero): data-dependent output size" in text
    assert "folded into the convolutions" in text
    unknown = record.model_copy(update={"macs": None, "flops": None, "macs_null_reason": "no input shape"})
    card = build_card(unknown, details, [])
    text = card.to_text()
    assert "MACs: unknown (no input shape)" in text and "MACs are missing: no input shape" in text
    assert "No fit rows" in text


def test_hugging_face_card_front_matter_is_the_record(fx):
    record, details, rows = parts(fx, "yolo_style_detector")
    text = build_card(record, details, rows).to_huggingface()
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---\n")[1])
    meta = front["embodied_ai"]
    for key in ("name", "version", "format", "sha256", "params", "macs", "flops", "weight_bytes", "activation_bytes",
                "input_shapes", "input_shape_source"):
        assert meta[key] == getattr(record, key), key
    assert meta["architecture"]["family"] == record.architecture.family
    assert "embodied-ai" in front["tags"] and record.architecture.family in front["tags"]
    if record.architecture.task == "detection":
        assert front["pipeline_tag"] == "object-detection"
    body = text.split("---\n", 2)[2]
    assert body.lstrip().startswith(f"# {record.name} v{record.version}")
    assert "## Where it runs" in body and "| device | mode | precision |" in body


def test_cli_card_text_markdown_hf_json(fx):
    runner = CliRunner()
    plain = runner.invoke(main, ["--db", str(fx.db), "card", "mlp_policy"])
    assert plain.exit_code == 0 and plain.output.startswith("mlp_policy v1: model card\n")
    md = runner.invoke(main, ["--db", str(fx.db), "card", "mlp_policy", "--markdown"])
    assert md.exit_code == 0 and md.output.startswith("# mlp_policy v1\n")
    hf = runner.invoke(main, ["--db", str(fx.db), "card", "mlp_policy", "--hf"])
    assert hf.exit_code == 0 and hf.output.startswith("---\ntags:")
    js = runner.invoke(main, ["--db", str(fx.db), "card", "mlp_policy", "--json"])
    data = json.loads(js.output)
    assert data["name"] == "mlp_policy" and data["front_matter"]["embodied_ai"]["params"] == \
        next(r.params for r in fx.records if r.name == "mlp_policy")
    missing = runner.invoke(main, ["--db", str(fx.db), "card", "no_such_model"])
    assert missing.exit_code == 2 and missing.output.count("\n") == 1 and missing.output.startswith("error: ")


def test_an_overhead_bound_fit_names_t0_and_the_operator_launches(fx):
    """A host calibration with a per-operator cost (what `calibrate` fits from six models) on a tiny policy net: the
    card says the fixed costs dominate and gives both parts, each number found in the fit row."""
    from embodied_tui.perf.roofline import Efficiency, Target, fit_model

    record, details, _ = parts(fx, "mlp_policy")
    target = Target("host-test", "default", "fp32", "cpu", peak_flops=2e11, bandwidth=3e10, cache_bytes=2 ** 25,
                    cache_bandwidth=1.8e11)  # the 2-core EPYC this was calibrated on
    eff = Efficiency(0.9, 0.9, 0.003, "host", "test", runtime="onnxruntime-cpu", op_overhead_ms=0.0014,
                     macs_per_output_half=12)
    row = fit_model(record, details.layer_costs, target, eff)
    assert row.bound == "overhead" and row.n_ops >= 3
    text = " ".join(build_card(record, details, [row]).to_text().split())
    assert "t = t0 + a cost per operator launch + sum over layers" in text
    assert (f"t0 = {sig(0.003)} ms per call plus {row.n_ops} operator launches at {sig(0.0014)} ms each "
            f"({sig(row.time_overhead_ms)} ms in all)") in text
    check_every_number(build_card(record, details, [row]).to_text(), record, details, [row])
