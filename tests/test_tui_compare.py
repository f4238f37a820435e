"""The compare screen through the real app: exact numbers where the short forms agree, the census on shared layer
kinds (resnet18 as TorchScript and as ONNX: no census differences), `n` for each format's own names, at 80x24 and
120x40. The resnet18 pair and its independent counts come from tests/test_compare.py."""
from __future__ import annotations

import pytest
from test_compare import resnet18  # noqa: F401 - the fixture
from textual.widgets import Static
from tui_fixtures import static_text, sync

from embodied_tui.app import EmbodiedApp
from embodied_tui.screens.compare import DOWN, NOT_COMPARED, UP, CompareScreen
from embodied_tui.screens.widgets.compare_table import CompareTable

SIZES = [(80, 24), (120, 40)]


def labels(table) -> list[str]:
    return [row.key.value for row in table.ordered_rows]


def cells(table, label: str) -> list[str]:
    return [str(c).removesuffix(UP).removesuffix(DOWN).strip() for c in table.get_row(label)[1:]]


@pytest.mark.parametrize("size", SIZES)
@sync
async def test_compare_torchscript_and_onnx_of_one_network(resnet18, size):  # noqa: F811
    db, ts, onnx, _ = resnet18
    app = EmbodiedApp(registry=db)
    async with app.run_test(size=size) as pilot:
        app.open_compare([ts, onnx])
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        table = screen.query_one(CompareTable)
        # both would read 11.7M: the exact counts are shown, with thousands separators, and fit their column
        assert cells(table, "params") == [f"{ts.params:,}", f"{onnx.params:,}"]
        widths = [table.columns[key].get_render_width(table) for key in list(table.columns)[1:]]
        assert all(w > len(f"{ts.params:,} {UP}") for w in widths)
        assert cells(table, "# conv") == ["20", "20"]  # Conv2d and Conv on one row
        assert str(table.get_row("# relu")[0]) == f"# relu{NOT_COMPARED}"  # 9 modules vs 17 nodes: marked
        assert not str(table.get_row("# conv")[0]).endswith(NOT_COMPARED)
        status = static_text(screen.query_one("#status", Static), width=size[0])
        assert f"{screen.comparison.not_compared}* not compared" in status
        assert screen.query_one("#status").size.height == 1  # one line, even at 80 columns
        title = static_text(screen.query_one("#compare-title", Static), width=size[0])
        assert "census by layer kind (n: raw names)" in title and screen.query_one("#compare-title").size.height == 1

        await pilot.press("d")  # differences only: real ones, no census row
        shown = labels(table)
        status = static_text(screen.query_one("#status", Static), width=size[0])
        await pilot.pause()
        assert f"differences only: {len(shown)} of " in status and screen.query_one("#status").size.height == 1
        assert "params" in shown and "format" in shown
        assert "MACs" not in shown and not [label for label in shown if label.startswith("#")]

        await pilot.press("d", "n")  # all rows, each format's own names: shown, marked not compared
        shown = labels(table)
        assert {"# Conv2d", "# Conv", "# Gemm", "# Linear"} <= set(shown)
        assert cells(table, "# Conv2d") == ["20", "0"]
        assert "census by each format's names (n: kinds)" in static_text(screen.query_one("#compare-title", Static))
        await pilot.press("n")
        assert "# conv" in labels(table) and "# Conv2d" not in labels(table)


@sync
async def test_same_format_models_compare_every_census_row(registry):
    """Two torch-format models (module counts on both sides): every census row is compared; `d` keeps the census
    rows that differ and `n` switches to the files' own names, still compared."""
    a, b = registry.get("mobilenet_tiny"), registry.get("resnet_tiny")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_compare([a, b])
        await pilot.pause()
        screen = app.screen
        table = screen.query_one(CompareTable)
        assert screen.comparison.not_compared == 0
        await pilot.press("d")
        census = [label for label in labels(table) if label.startswith("#")]
        assert census and all(not str(table.get_row(label)[0]).endswith("*") for label in census)
        await pilot.press("n")
        raw = [label for label in labels(table) if label.startswith("#")]
        assert raw and {label[2:] for label in raw} <= set(a.layers) | set(b.layers)


@sync
async def test_a_kind_only_one_model_has_counts_zero_for_the_other(registry):
    from embodied_tui.analysis.layer_kinds import kind_counts

    a, b = registry.get("mobilenet_tiny"), registry.get("small_vit")
    kinds_a, kinds_b = kind_counts(a.layers), kind_counts(b.layers)
    only_a = next(k for k in kinds_a if k not in kinds_b)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_compare([a, b])
        await pilot.pause()
        table = app.screen.query_one(CompareTable)
        assert [str(c) for c in table.get_row(f"# {only_a}")[1:]] == [f"{kinds_a[only_a]} {UP}", f"0 {DOWN}"]


@sync
async def test_text_cells_that_differ_past_the_clip_are_shown_whole(registry):
    from embodied_tui import units as fmt
    from embodied_tui.screens.compare import CELL_WIDTH

    a = registry.get("mobilenet_tiny")
    shapes = [[1, 3, 224, 224], [1, 10, 20, 30]]
    b = a.model_copy(update={"name": "other", "input_shapes": shapes, "input_symbols": []})
    c = a.model_copy(update={"name": "third", "input_shapes": [shapes[0], [1, 10, 20, 31]], "input_symbols": []})
    texts = [fmt.shapes(r.input_shapes) for r in (b, c)]
    assert texts[0] != texts[1] and fmt.clip(texts[0], CELL_WIDTH) == fmt.clip(texts[1], CELL_WIDTH)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_compare([b, c])
        await pilot.pause()
        table = app.screen.query_one(CompareTable)
        assert cells(table, "inputs") == texts
        assert cells(table, "family") == [fmt.clip(a.architecture.family, CELL_WIDTH)] * 2


@sync
async def test_ascii_console_marks_with_ascii(registry, monkeypatch):
    from embodied_tui.screens.compare import ASCII_DOWN, ASCII_UP

    monkeypatch.setenv("TERM", "linux")
    monkeypatch.delenv("EMBODIED_AI_ASCII", raising=False)
    a, b = registry.get("mobilenet_tiny"), registry.get("small_vit")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_compare([a, b])
        await pilot.pause()
        table = app.screen.query_one(CompareTable)
        params = [str(c) for c in table.get_row("params")[1:]]
        big = 0 if a.params > b.params else 1
        assert params[big].endswith(f" {ASCII_UP}") and params[1 - big].endswith(f" {ASCII_DOWN}")
        title = static_text(app.screen.query_one("#compare-title", Static))
        assert all(ord(ch) < 128 for ch in title)
        drawn = "".join(str(cell) for row in table.ordered_rows for cell in table.get_row(row.key))
        assert not {ch for ch in drawn if ord(ch) > 127}
