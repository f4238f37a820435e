"""Issue 16 item 1, nothing clipped silently: the registry table, the fit table, the card's fit table and the answer
table size their columns to the terminal (``services.columns``). A number is shown whole or its column is hidden,
the status line names the hidden columns, text that is cut ends in an ellipsis ('~' on TERM=linux), and a fit row's
device, mode and precision always show (the device by its catalog short name when narrow)."""
from __future__ import annotations

import pytest
from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.widgets import Static
from tui_fixtures import settle, static_text, sync, until

from embodied_tui import units as fmt
from embodied_tui.app import EmbodiedApp
from embodied_tui.data.hardware import load_catalog
from embodied_tui.data.store import Registry
from embodied_tui.screens.fit import FitScreen
from embodied_tui.screens.widgets.answer_table import AnswerTable, show_answer
from embodied_tui.screens.widgets.model_table import ModelTable
from embodied_tui.services.fit import fit_rows

NARROW, WIDE = (80, 24), (120, 40)
# what a user reads as a number in the registry table: never cut
REGISTRY_NUMBERS = ("version", "params", "gmacs", "input", "fit", "fps")


def painted(table) -> list[str]:
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


def status(app) -> str:
    return static_text(app.screen.query_one("#status", Static), width=400)


def long_named(registry: Registry, tmp_path, name: str) -> Registry:
    """A copy of ``registry`` with one more model, ``name``, a copy of the detector (input 1x3x320x320)."""
    source = registry.get("detector")
    big = Registry(tmp_path / "long.json")
    items = [(r, f"id-{r.name}-{r.version}", registry.details(r)) for r in registry.list_models(latest_only=False)]
    items.append((source.model_copy(update={"name": name}), "id-long", registry.details(source)))
    big.put_many(items)
    return big


async def open_registry(pilot):
    table = pilot.app.screen.query_one(ModelTable)
    await until(pilot, lambda: all(table.has_best_fit(k) for k in table.visible_keys()))
    await settle(pilot)
    return table


@pytest.mark.parametrize("size", [NARROW, WIDE])
@sync
async def test_registry_numbers_are_whole_or_hidden_and_the_status_says_which(registry, tmp_path, size):
    name = "warehouse-depth-policy-v12"  # 26 characters: at 80 columns it used to cut `input` to '1x3x2'
    reg = long_named(registry, tmp_path, name)
    app = EmbodiedApp(registry=reg)
    async with app.run_test(size=size) as pilot:
        table = await open_registry(pilot)
        layout = table.column_layout
        lines = painted(table)
        assert max(cell_len(line.rstrip()) for line in lines) <= size[0]  # nothing runs off the right edge
        for key in table.keys:
            line = next(line for line in lines[1:] if table.cell(key, "version") and key.split("@")[0][:8] in line)
            for column in REGISTRY_NUMBERS:
                if layout.shows(column):
                    assert f" {table.cell(key, column)} " in f" {line} ", (key, column, line)
        record = reg.get(name)
        shape = fmt.shapes(record.input_shapes, record.input_symbols)
        assert shape == "1x3x320x320"
        if layout.shows("input"):
            assert any(shape in line for line in lines)
        hidden = layout.hidden
        if hidden:
            assert f"hidden: {', '.join(hidden)} — widen the terminal" in status(app)
        else:
            assert "hidden:" not in status(app)
        if size == NARROW:
            assert hidden and {"name", "params", "gmacs", "fit"} <= set(layout.widths)  # the essentials stay
        # the target's ms column says its unit, and where its numbers come from
        assert lines[0].split()[0] == "name" and " ms" in lines[0]


@sync
async def test_registry_relays_out_on_resize(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=NARROW) as pilot:
        table = await open_registry(pilot)
        assert table.column_layout.hidden and "hidden:" in status(app)
        await pilot.resize_terminal(240, 40)
        await settle(pilot)
        await until(pilot, lambda: not table.column_layout.hidden)
        assert "hidden:" not in status(app)
        assert "tags" in painted(table)[0]
        await pilot.resize_terminal(*NARROW)
        await until(pilot, lambda: bool(table.column_layout.hidden))
        assert "hidden:" in status(app)


@sync
async def test_cut_names_end_in_an_ellipsis_and_ascii_on_term_linux(registry, tmp_path, monkeypatch):
    name = "a-very-long-model-name-for-the-yard-robot-v3"  # over the name column's cap of 28
    reg = long_named(registry, tmp_path, name)
    for term, mark in (("xterm-256color", "…"), ("linux", "~")):
        monkeypatch.setenv("TERM", term)
        monkeypatch.delenv("EMBODIED_AI_ASCII", raising=False)
        app = EmbodiedApp(registry=reg)
        async with app.run_test(size=WIDE) as pilot:
            table = await open_registry(pilot)
            line = next(line for line in painted(table) if "a-very-long" in line)
            width = table.column_layout.widths["name"]
            assert 16 <= width <= 28  # the name column's least and cap
            shown = line[4:4 + width]  # after the mark column and the paddings
            assert shown == name[:width - 1] + mark
            assert ("…" in line) == (mark == "…")


@pytest.mark.parametrize("size", [NARROW, WIDE])
@sync
async def test_fit_table_keeps_device_mode_precision_and_whole_numbers(registry, size):
    record = registry.get("detector")
    expected = {f"{r.hardware}|{r.power_mode}|{r.precision}": r for r in fit_rows(registry, "detector")}
    catalog = {e.id: e for e in load_catalog()}
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=size) as pilot:
        app.open_fit(record)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, FitScreen)
        table = screen.table
        layout = table.column_layout
        assert {"device", "mode", "prec"} <= set(layout.widths)
        assert sum(w + 2 for w in layout.widths.values()) <= size[0]
        abbreviated = "device" in layout.abbreviated
        for row_key in [r.key.value for r in table.ordered_rows]:
            row = expected[row_key]
            cells = {str(c.key.value): str(table.get_cell(row_key, c.key)) for c in table.ordered_columns}
            device = catalog[row.hardware]
            # the device is its id, or (narrow) a catalog alias of it: never cut, never a guess
            assert cells["device"] == row.hardware or (abbreviated and cells["device"] in device.aliases)
            assert (cells["mode"], cells["prec"]) == (row.power_mode, row.precision)
            # numbers whole: as the fit row formats them, not cut
            if "pred ms" in cells:
                assert cells["pred ms"] == fmt.ms(row.predicted_latency_ms)
            if "fps" in cells:
                assert cells["fps"] == fmt.significant(row.fps)
            for text in cells.values():
                assert "…" not in text
        headers = [str(c.label) for c in table.ordered_columns]
        assert "pred ms" in headers and "fps" in headers  # units in the headers
        if layout.hidden:
            assert f"hidden: {', '.join(layout.hidden)} — widen the terminal" in status(app)
        if size == NARROW:
            assert layout.hidden and abbreviated


@sync
async def test_card_fit_table_fits_80_columns_and_names_what_it_hides(registry):
    record = registry.get("detector")
    fastest = {}
    for r in fit_rows(registry, "detector"):
        if r.predicted_latency_ms is not None:
            fastest.setdefault(r.hardware, r)  # fit_rows is fastest first
    aliases = {e.id: e.aliases for e in load_catalog()}
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=NARROW) as pilot:
        app.open_detail(record)
        await settle(pilot)
        await pilot.press("6")
        await settle(pilot)
        await until(pilot, lambda: app.screen.card_model is not None)
        await settle(pilot)
        text = static_text(app.screen.query_one("#card-text", Static), width=200)
        lines = text.splitlines()
        assert max(cell_len(line.rstrip()) for line in lines) <= NARROW[0]
        header = next(i for i, line in enumerate(lines) if line.split()[:3] == ["device", "mode", "precision"])
        rows = []
        for line in lines[header + 2:]:
            if not line.strip():
                break
            rows.append(line.split())
        assert len(rows) >= 3
        for cells in rows:
            hw = next(h for h in fastest if cells[0] == h or cells[0] in aliases.get(h, []))
            row = fastest[hw]
            # one line per device (no wrapping), with its mode, precision and whole predicted ms
            assert cells[1:4] == [row.power_mode, row.precision, fmt.significant(row.predicted_latency_ms,
                                                                                  plain=True)]
        assert any(line.startswith("hidden: ") and "widen the terminal" in " ".join(lines[i:i + 2])
                   for i, line in enumerate(lines))


class AnswerApp(App):
    def compose(self) -> ComposeResult:
        yield AnswerTable(id="answer")


@sync
async def test_answer_table_hides_number_columns_whole_and_cuts_text():
    names = ["model", "description", "params", "latency_ms"]
    rows = [["resnet18", "a residual network trained on the ImageNet-1k images", "11,689,512", "1.234"],
            ["yolo11n", "a detector", "2,616,248", "0.812"]]
    app = AnswerApp()
    async with app.run_test(size=(44, 10)) as pilot:
        table = app.query_one(AnswerTable)
        show_answer(table, names, rows)
        await pilot.pause()
        layout = table.column_layout
        shown = {str(c.label): [str(table.get_cell_at((i, j))) for i in range(len(rows))]
                 for j, c in enumerate(table.ordered_columns)}
        assert "model" in shown and shown["model"] == ["resnet18", "yolo11n"]
        for name, values in (("params", [r[2] for r in rows]), ("latency_ms", [r[3] for r in rows])):
            assert name not in shown or shown[name] == values  # whole, or hidden
        assert layout.hidden and table.hidden_text() == f"hidden: {', '.join(layout.hidden)} — widen the terminal"
        if "description" in shown:
            assert shown["description"][0].endswith("…")
        await pilot.resize_terminal(160, 10)
        await pilot.pause()
        assert not table.column_layout.hidden
        assert [str(table.get_cell_at((0, j))) for j in range(4)] == rows[0]
