"""Issue 16 item 3, the pinned target: DEVICE[/MODE[/PRECISION]] kept in the registry's settings (``services.target``,
``services.settings``), set from the palette or `embodied-ai --target`; the registry table's column then shows each
model's ms and fps there (from the model's fit rows on that device), "—" with the reason where there is none, and
sorts by it. Without a target the column is labelled as the fastest of any device."""
from __future__ import annotations

from click.testing import CliRunner
from textual.widgets import Static
from tui_fixtures import run_command, settle, static_text, sync, until, watcher_caught_up

from embodied_tui import units as fmt
from embodied_tui.app import EmbodiedApp
from embodied_tui.cli import main
from embodied_tui.data.hardware import find_device
from embodied_tui.data.store import Registry
from embodied_tui.errors import UserError
from embodied_tui.screens.palette import SetTargetProvider
from embodied_tui.screens.widgets.model_table import ModelTable
from embodied_tui.services import settings
from embodied_tui.services import target as targets
from embodied_tui.services.fit import fit_rows
from embodied_tui.services.hardware import add_user_device

SIZE = (120, 40)
ORIN = "jetson-orin-nano-8gb/15W/int8"


class TargetApp(EmbodiedApp):
    """The app with the "Set target" palette provider (as app.py registers it)."""

    COMMANDS = EmbodiedApp.COMMANDS | {SetTargetProvider}


def painted(table) -> list[str]:
    return [table.render_line(y).text for y in range(table.scrollable_content_region.height)]


def predicted(registry, name: str, spec: str) -> float | None:
    """The model's predicted ms on DEVICE/MODE/PRECISION, read from its fit rows there (services.fit)."""
    hw, mode, precision = spec.split("/")
    rows = fit_rows(registry, name, hw=hw, mode=mode, precision=precision)
    assert len(rows) == 1
    return rows[0].predicted_latency_ms


def test_target_is_checked_and_kept_beside_other_settings(registry):
    settings.put(registry, "content", {"kept": True})  # another part's key in the same table
    pinned = targets.pin(registry, "orin nano 8gb/15w/INT8")  # any name hw show accepts; mode case-insensitive
    assert pinned == targets.Pinned("jetson-orin-nano-8gb", "15W", "int8")
    assert targets.pinned(Registry(registry.path)) == pinned  # read back from the file
    assert settings.get(registry, "content") == {"kept": True}
    assert targets.pin(registry, "h200").spec() == "nvidia-h200-sxm"  # mode and precision left open
    for bad, says in (("no-such-board", "no device 'no-such-board'"), ("h200/99W", "no power mode '99W'"),
                      ("hailo-8/typical/fp32", "no 'fp32' peak"), ("a/b/c/d", "is not DEVICE[/MODE[/PRECISION]]")):
        try:
            targets.pin(registry, bad)
        except UserError as exc:
            assert says in str(exc) and "\n" not in str(exc)
        else:
            raise AssertionError(f"{bad!r} was accepted")
    assert targets.pinned(registry).spec() == "nvidia-h200-sxm"  # a refused target changes nothing
    assert targets.unpin(registry) and targets.pinned(registry) is None
    assert settings.get(registry, "content") == {"kept": True}


def test_cli_target_is_refused_in_one_line(registry):
    result = CliRunner().invoke(main, ["--db", str(registry.path), "--target", "no-such-board"])
    assert result.exit_code != 0
    assert result.output.strip().startswith("error: target 'no-such-board': no device")
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    with_command = CliRunner().invoke(main, ["--db", str(registry.path), "--target", ORIN, "model", "list"])
    assert with_command.exit_code != 0 and "--target pins the app's target" in with_command.output
    assert targets.pinned(registry) is None  # nothing stored by a refused call


def test_cli_settings_target_pins_shows_and_clears(registry):
    def cli(*args):
        return CliRunner().invoke(main, ["--db", str(registry.path), "settings", "target", *args])

    assert cli().output.strip() == "target: none (the app shows the fastest of any device)"
    pinned = cli("orin nano 8gb/15w/int8")
    assert pinned.exit_code == 0 and pinned.output.strip() == f"target: {ORIN}"
    assert targets.pinned(registry).spec() == ORIN
    assert cli("h200").output.strip() == "target: nvidia-h200-sxm (fastest mode and precision)"
    bad = cli("pi9")
    assert bad.exit_code != 0 and bad.output.startswith("error: target 'pi9': no device") and "Traceback" not in bad.output
    assert targets.pinned(registry).spec() == "nvidia-h200-sxm"
    assert cli("--clear").exit_code == 0 and targets.pinned(registry) is None


@sync
async def test_pinned_target_column_shows_ms_and_fps_there(registry):
    result = CliRunner().invoke(main, ["--db", str(registry.path), "settings", "target", ORIN])
    assert result.exit_code == 0  # pinned from the command line, read by the app
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(200, 30)) as pilot:
        table = app.screen.query_one(ModelTable)
        await until(pilot, lambda: all(table.has_best_fit(k) for k in table.keys))
        await settle(pilot)
        header = painted(table)[0]
        assert "ms @ orin-nano-8gb/15W/int8" in header and "fps" in header
        for key in table.keys:
            record = table.records[key]
            ms = predicted(registry, record.name, ORIN)
            assert table.cell(key, "fit") == fmt.ms(ms)
            assert table.cell(key, "fps") == fmt.significant(1000.0 / ms)  # fps = 1000 / ms
            line = next(line for line in painted(table) if line.strip().startswith(record.name + " "))
            assert f" {fmt.ms(ms)} " in line
        # at 80 columns the header shortens to "ms" and the status line names the target
        await pilot.resize_terminal(80, 24)
        await until(pilot, lambda: "fit" in table.column_layout.abbreviated)
        await settle(pilot)
        assert painted(table)[0].split()[-2:] == ["ms", "fps"] or " ms " in painted(table)[0]
        assert "ms @ orin-nano-8gb/15W/int8" in static_text(app.screen.query_one("#status", Static), width=300)


@sync
async def test_no_target_is_labelled_fastest_and_names_where(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(200, 24)) as pilot:
        table = app.screen.query_one(ModelTable)
        await until(pilot, lambda: all(table.has_best_fit(k) for k in table.keys))
        await settle(pilot)
        assert "ms fastest" in painted(table)[0]
        short = targets.device_short_names(registry)
        for key in table.keys:
            rows = [r for r in fit_rows(registry, table.records[key].name) if r.predicted_latency_ms is not None
                    and r.fits_memory is not False]
            best = min(r.predicted_latency_ms for r in rows)
            assert table.cell(key, "fit") == fmt.ms(best)
            where = {f"{short[r.hardware]}/{r.power_mode}/{r.precision}" for r in rows
                     if r.predicted_latency_ms == best}
            assert table.cell(key, "note") in where


@sync
async def test_a_model_that_does_not_fit_reads_dash_with_the_reason(registry):
    tiny = find_device("jetson-orin-nano-8gb").model_copy(update={
        "id": "tiny-board", "name": "Tiny board", "aliases": [], "memory_bytes": 1_000_000})
    add_user_device(registry, tiny)
    targets.pin(registry, "tiny-board/15W/fp32")
    detector = registry.get("detector")
    assert detector.weight_bytes > 1_000_000  # 3.03M fp32 weights do not fit 1 MB
    rows = fit_rows(registry, "detector", hw="tiny-board", mode="15W", precision="fp32")
    assert rows[0].fits_memory is False
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(200, 30)) as pilot:
        table = app.screen.query_one(ModelTable)
        await until(pilot, lambda: all(table.has_best_fit(k) for k in table.keys))
        await settle(pilot)
        key = f"detector@{detector.version}"
        assert table.cell(key, "fit") == fmt.NA and table.cell(key, "fps") == fmt.NA
        assert table.cell(key, "note").startswith("does not fit in memory")
        line = next(line for line in painted(table) if line.strip().startswith("detector"))
        assert "does not fit in memory" in line


@sync
async def test_palette_sets_the_target_and_the_column_follows(registry):
    app = TargetApp(registry=registry)
    async with app.run_test(size=(200, 30)) as pilot:
        table = app.screen.query_one(ModelTable)
        await until(pilot, lambda: all(table.has_best_fit(k) for k in table.keys))
        await settle(pilot)
        assert "ms fastest" in painted(table)[0]
        await run_command(pilot, "Set target: orin-nano-8gb/15W/int8")
        await until(pilot, lambda: targets.pinned(registry) is not None)
        assert targets.pinned(registry).spec() == ORIN
        await until(pilot, lambda: "ms @ orin-nano-8gb/15W/int8" in painted(table)[0])
        # pinning wrote the registry: once the app's watcher has read it again (which shows the records afresh and
        # asks for their cells again), every row's cell is computed
        await until(pilot, lambda: watcher_caught_up(app))
        await settle(pilot)  # its read has been shown: the cells asked for again are then awaited below
        await until(pilot, lambda: all(table.has_best_fit(k) for k in table.keys))
        await settle(pilot)
        for key in table.keys:
            assert table.cell(key, "fit") == fmt.ms(predicted(registry, table.records[key].name, ORIN)), \
                table.cell(key, "note")
        await run_command(pilot, "Set target: none (fastest of any device)")
        await until(pilot, lambda: targets.pinned(registry) is None)
        await until(pilot, lambda: "ms fastest" in painted(table)[0])


@sync
async def test_s_sorts_by_the_target(registry):
    targets.pin(registry, ORIN)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ModelTable)
        for _ in range(20):
            if app.screen.sort_key == targets.SORT:
                break
            await pilot.press("s")
        assert app.screen.sort_key == targets.SORT
        by_ms = sorted(table.records.values(), key=lambda r: predicted(registry, r.name, ORIN))
        expected = [f"{r.name}@{r.version}" for r in by_ms]
        await until(pilot, lambda: list(table.keys) == expected)
        assert "sort: target" in static_text(app.screen.query_one("#status", Static), width=300)
        await pilot.press("S")
        await until(pilot, lambda: list(table.keys) == expected[::-1])
