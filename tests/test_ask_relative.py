"""'faster than <model>' / 'slower than <model>' with no number: the models whose predicted latency on a target is
below (above) that model's own on the same device, power mode and precision; refused when no device is named.

Checked against the fit rows of the fixture registry (tests/ask_fixture.py), compared by hand here: for each target
the reference model's row and every other model's row on it."""
from __future__ import annotations

import pytest

from embodied_tui.errors import UserError


def expected_rows(fx, reference: str, device_ids: set[str], op: str, power_w=None, precision=None) -> set[tuple]:
    """(model, device, mode, precision, latency) of every fit row on the devices asked whose latency is below (op
    '<') or above ('>') the reference model's own row on the same device, mode and precision."""
    rows = [r for r in fx.rows if r.hardware in device_ids and r.predicted_latency_ms is not None
            and (power_w is None or r.power_w == power_w) and (precision is None or r.precision == precision)]
    own = {(r.hardware, r.power_mode, r.precision): r.predicted_latency_ms for r in rows if r.model == reference}
    out = set()
    for r in rows:
        limit = own.get((r.hardware, r.power_mode, r.precision))
        if limit is None:
            continue
        if (r.predicted_latency_ms < limit) if op == "<" else (r.predicted_latency_ms > limit):
            out.add((r.model, r.hardware, r.power_mode, r.precision, r.predicted_latency_ms))
    return out


def answered(answer: dict) -> set[tuple]:
    at = {c: i for i, c in enumerate(answer["columns"])}
    return {(row[at["m.name"]], row[at["h.device"]], row[at["h.power_mode"]], row[at["r.precision"]],
             row[at["r.latency_ms"]]) for row in answer["rows"]}


@pytest.mark.parametrize("question, reference, devices, op, power_w, precision", [
    ("which models are faster than resnet_tiny on the orin nano 8gb at 15W?", "resnet_tiny",
     {"jetson-orin-nano-8gb", "jetson-orin-nano-8gb-super"}, "<", 15, None),
    ("anything quicker than small_vit on the raspberry pi 5", "small_vit", {"raspberry-pi-5"}, "<", None, None),
    ("models slower than mobilenet_tiny on the pi 5?", "mobilenet_tiny", {"raspberry-pi-5"}, ">", None, None),
    ("what runs faster than lstm_policy on the orin nano at 15 W in fp16", "lstm_policy",
     {"jetson-orin-nano-4gb", "jetson-orin-nano-8gb", "jetson-orin-nano-8gb-super", "jetson-orin-nano-cpu"}, "<", 15,
     "fp16"),
])
def test_faster_than_a_model_compares_on_each_target(fx, graph, question, reference, devices, op, power_w, precision):
    from embodied_tui.services.ask import ask

    answer = ask(fx.db, question)
    assert answer["understood"] and not answer["refused"], answer["reasons"]
    want = expected_rows(fx, reference, devices, op, power_w, precision)
    assert answered(answer) == want
    assert len(answer["rows"]) == len(want)  # one row per model x target, none twice
    assert reference not in {row[0] for row in answer["rows"]}  # strict: the model itself is not in its own answer
    assert any(reference in n and "own predicted latency" in n for n in answer["notes"])  # the numbers it used
    whole = ask(fx.db, question, graph=graph)  # the same query on every model x target
    assert (whole["cypher"], whole["columns"], whole["rows"]) == (answer["cypher"], answer["columns"], answer["rows"])


def test_a_count_of_models_faster_than_a_model(fx):
    from embodied_tui.services.ask import ask

    answer = ask(fx.db, "how many models are faster than resnet_tiny on the raspberry pi 5?")
    want = {m for m, *_ in expected_rows(fx, "resnet_tiny", {"raspberry-pi-5"}, "<")}
    assert answer["count"] == len(want) and {row[0] for row in answer["rows"]} == want


@pytest.mark.parametrize("question, said", [
    ("which models are faster than resnet_tiny?", "name it"),  # no device: one number per device x mode x precision
    ("models slower than small_vit", "name it"),
    ("anything quicker than small_vit on a jetson?", "too many"),  # every Jetson x mode x precision: more than a query
])
def test_faster_than_a_model_without_one_target_is_refused_with_the_reason(fx, question, said):
    from embodied_tui.services.ask import ask

    answer = ask(fx.db, question)
    assert answer["refused"] and not answer["rows"] and answer["understood"] is False
    assert len(answer["reasons"]) == 1 and said in answer["reasons"][0]
    assert answer["answer"][0].startswith("not understood")


def test_faster_than_a_model_through_the_cli(fx):
    from click.testing import CliRunner

    from embodied_tui.cli import main

    result = CliRunner().invoke(main, ["--db", str(fx.db), "ask", "models faster than resnet_tiny on the pi 5"])
    assert result.exit_code == 0, result.output
    assert "resnet_tiny's own predicted latency" in result.output and "r.latency_ms <" in result.output
    refused = CliRunner().invoke(main, ["--db", str(fx.db), "ask", "models faster than resnet_tiny"])
    assert refused.exit_code == 0 and refused.output.startswith("not understood")
    assert "Traceback" not in refused.output and not isinstance(refused.exception, UserError)


def test_beat_and_outperform_a_model_are_faster_than_it(fx):
    """'does anything beat resnet_tiny on the pi 5', 'models that outperform small_vit on the pi 4': the same rows as
    'faster than' (below that model's own predicted latency on each target); 'does A beat B on X' compares them."""
    from embodied_tui.services.ask import ask

    for said, plain in (("does anything beat resnet_tiny on the pi 5", "which models are faster than resnet_tiny on the pi 5"),
                        ("models that outperform small_vit on the pi 4", "models faster than small_vit on the pi 4")):
        a, b = ask(fx.db, said), ask(fx.db, plain)
        assert a["understood"] and not a["refused"], (said, a["answer"])
        assert a["rows"] == b["rows"] and a["rows"], said
    a = ask(fx.db, "does resnet_tiny beat mobilenet_tiny on the orin nx")
    b = ask(fx.db, "is resnet_tiny faster than mobilenet_tiny on the orin nx")
    assert a["understood"] and a["answer"] == b["answer"] and a["answer"][0].split(":")[0] in ("yes", "no", "partly")
