"""The app keeps up with the registry (issue 16, item 2): a change made by another process shows within about a second,
with the cursor, marks and filter kept; ctrl+r reads it again by hand; a detail or fit screen whose model was removed
says so in one line. The other process is the real CLI (``python -m embodied_tui``) run as a subprocess."""
from __future__ import annotations

import subprocess
import sys

from textual.widgets import Input
from tui_fixtures import model_file, settle, static_text, sync

from embodied_tui import app as app_module
from embodied_tui.app import EmbodiedApp
from embodied_tui.data.store import Registry
from embodied_tui.screens.detail import DetailScreen
from embodied_tui.screens.fit import FitScreen
from embodied_tui.screens.widgets.model_table import MARK

SIZE = (80, 24)
CLI_STEPS = 1200  # x 0.05 s: the CLI imports torch and analyses a file; a bound on the wait, not a timing assertion


def cli(registry: Registry, *args: str) -> subprocess.Popen:
    """The real CLI on ``registry``, in another process (started, not waited for)."""
    return subprocess.Popen([sys.executable, "-m", "embodied_tui", "--db", str(registry.path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def wait_for(pilot, proc: subprocess.Popen, condition) -> None:
    """Pause until the CLI process has finished and ``condition()`` holds (a bounded wait, not a timing assertion)."""
    for _ in range(CLI_STEPS):
        await pilot.pause(0.05)
        if proc.poll() is not None and (proc.returncode != 0 or condition()):
            break
    out, err = proc.communicate(timeout=5) if proc.poll() is not None else ("", "still running")
    if proc.returncode == 0 and condition():
        return
    raise AssertionError(f"condition never held (CLI exit {proc.returncode}: {out} {err})")


def table_keys(app) -> list[str]:
    return list(app.registry_screen.table.keys)


def test_change_marker_moves_on_every_write_and_only_then(registry):
    """Reading leaves the marker alone; each write (in this process or through another Registry object, as another
    process would) gives a new one; two stats, so equal markers mean the same file."""
    first = registry.change_marker()
    registry.list_models()
    registry.get("mlp_policy")
    assert registry.change_marker() == first
    other = Registry(registry.path)
    other.update("mlp_policy", tags={"moved": "1"})
    second = registry.change_marker()
    assert second != first
    assert Registry(registry.path).change_marker() == second  # the same for any object on the same file
    other.update("mlp_policy", tags={"moved": "2"})
    assert registry.change_marker() not in (first, second)


def test_change_marker_of_a_missing_registry_is_stable(tmp_path):
    missing = Registry(tmp_path / "none" / "registry.json")
    assert missing.change_marker() == missing.change_marker() == (None, None)


@sync
async def test_registration_by_another_process_shows_up_keeping_cursor_marks_and_filter(registry, tmp_path):
    path = model_file(tmp_path / "files")  # a real model file the other process analyses and registers
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.registry_screen
        await pilot.press("slash")
        screen.query_one("#filter", Input).value = "policy"
        await pilot.press("enter")
        await pilot.pause()
        before = table_keys(app)
        assert before == ["lstm_policy@1", "mlp_policy@1"]
        await pilot.press("space")  # marks lstm_policy, the cursor moves on to mlp_policy
        assert list(screen.marked) == ["lstm_policy@1"] and screen.table.current_key() == "mlp_policy@1"

        proc = cli(registry, "model", "register", str(path), "--name", "aa_fresh_policy")
        await wait_for(pilot, proc, lambda: "aa_fresh_policy@1" in table_keys(app))

        assert table_keys(app) == ["aa_fresh_policy@1", "lstm_policy@1", "mlp_policy@1"]  # still filtered
        assert screen.filter_text == "policy"
        assert screen.table.current_key() == "mlp_policy@1"  # the cursor stayed on its model, one row down now
        assert list(screen.marked) == ["lstm_policy@1"]
        assert screen.table.cell("lstm_policy@1", "mark") == MARK
        assert "3 of" in static_text(screen.query_one("#status"))

        proc = cli(registry, "model", "remove", "lstm_policy", "--yes")
        await wait_for(pilot, proc, lambda: "lstm_policy@1" not in table_keys(app))
        assert screen.marked == {}  # a removed model's mark goes with it
        assert screen.table.current_key() == "mlp_policy@1"


@sync
async def test_ctrl_r_reads_the_registry_again_by_hand(registry, monkeypatch):
    monkeypatch.setattr(app_module, "WATCH_S", 3600.0)  # the watcher would see the change too: keep it out
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        table = app.registry_screen.table
        Registry(registry.path).update("detector", tags={"checked": "yes"})
        await pilot.pause(0.2)
        await settle(pilot)
        assert "checked" not in table.cell("detector@1", "tags")  # not watched in this test: not seen yet
        await pilot.press("ctrl+r")
        await settle(pilot)
        assert "checked=yes" in table.cell("detector@1", "tags")


@sync
async def test_detail_and_fit_of_a_model_removed_elsewhere_say_so(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.registry_screen.table.move_to("small_vit@1")
        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, FitScreen)

        proc = cli(registry, "model", "remove", "small_vit", "--yes")
        await wait_for(pilot, proc, lambda: "small_vit@1" not in table_keys(app))
        await settle(pilot)
        for screen in (app.screen_stack[-1], app.screen_stack[-2]):
            line = screen.removed_line()
            assert "small_vit v1" in line and "removed" in line and "--" not in line
        await pilot.press("escape")
        await pilot.press("escape")
        assert app.screen is app.registry_screen  # nothing failed on the way back
        assert "small_vit@1" not in table_keys(app)


@sync
async def test_fit_opened_on_a_model_removed_before_the_watcher_saw_it(registry, monkeypatch):
    monkeypatch.setattr(app_module, "WATCH_S", 3600.0)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.registry_screen.table.move_to("small_vit@1")
        Registry(registry.path).remove("small_vit")  # the table still lists it
        await pilot.press("f")
        await settle(pilot)
        assert isinstance(app.screen, FitScreen)
        line = app.screen.removed_line()
        assert "small_vit v1" in line and "removed" in line
        assert "embodied-ai" not in static_text(app.screen.query_one("#status"))


# ------------------------------------------------------------------------------------ a large registry, read again
def test_live_read_sends_only_the_records_that_changed(registry):
    """``services.live_read`` (the child process the app reads a large registry with): the records it returns are
    ``list_models``'s, unchanged ones are the objects the caller already held, only the changed record's JSON came
    over, and a removed version's probe is reported gone."""
    from embodied_tui.services import live_read

    before = registry.list_models()
    known = {live_read.digest(r): r for r in before}
    other = Registry(registry.path)
    other.update("detector", tags={"checked": "yes"})
    resnet_v1 = other.get("resnet_tiny", 1)
    other.remove("resnet_tiny", 1)
    probes = [("resnet_tiny", 1, resnet_v1.sha256), ("mlp_policy", 1, other.get("mlp_policy").sha256)]

    result = live_read.read(str(registry.path), True, known, probes)
    assert result.error is None
    assert result.records == Registry(registry.path).list_models()
    assert result.sent == 1  # the detector's new tags: the only record whose content changed
    by_name = {r.name: r for r in result.records}
    assert by_name["detector"].tags == {**before[[r.name for r in before].index("detector")].tags, "checked": "yes"}
    unchanged = [r for r in before if r.name != "detector"]  # resnet_tiny's latest is v2, untouched
    assert all(any(r is s for s in result.records) for r in unchanged)
    assert result.gone == [0]

    every = live_read.read(str(registry.path), False, {}, [])
    assert every.records == Registry(registry.path).list_models(latest_only=False)
    assert every.sent == len(every.records)


def test_live_read_of_a_broken_registry_says_so_without_cli_flags(registry):
    from embodied_tui.services import live_read

    registry.path.write_text("{not json")
    result = live_read.read(str(registry.path), True, {}, [])
    assert result.records == [] and "unreadable" in result.error
    assert "--db" not in result.error and "\n" not in result.error


@sync
async def test_a_large_registry_is_read_again_off_the_ui_thread_keeping_unchanged_rows(registry, monkeypatch):
    """A registry file over ``LARGE_REGISTRY_BYTES`` (here every file: the threshold is set to 0) is read again in a
    child process: the table follows a write made elsewhere, the records that did not change keep their objects (the
    table re-measures nothing for them), and the target cells of the rows on screen come with the read."""
    from embodied_tui.screens import registry as registry_screen

    monkeypatch.setattr(app_module, "LARGE_REGISTRY_BYTES", 0)
    monkeypatch.setattr(registry_screen, "BEST_FIT_DELAY", 3600.0)  # cells on screen come with the read, or not at all
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        screen = app.registry_screen
        assert app.reads_in_background() and len(screen.all_records) == 6
        before = {r.name: r for r in screen.all_records}
        Registry(registry.path).update("detector", tags={"checked": "yes"})
        for _ in range(CLI_STEPS):
            await pilot.pause(0.05)
            if "checked=yes" in screen.table.cell("detector@1", "tags"):
                break
        assert "checked=yes" in screen.table.cell("detector@1", "tags")
        after = {r.name: r for r in screen.all_records}
        assert set(after) == set(before)
        assert all(after[name] is before[name] for name in before if name != "detector")
        assert after["detector"] is not before["detector"]
        table = screen.table
        assert table.visible_keys() and all(table.has_best_fit(k) for k in table.visible_keys())


def test_live_read_computes_the_target_cells_of_the_rows_asked_as_the_screen_does(registry):
    """The cells a read brings (so the app need not parse the registry again to fill the rows on screen) are those
    ``services.target.cells`` computes in this process, under the same headers."""
    from embodied_tui.services import live_read
    from embodied_tui.services import target as targets

    records = registry.list_models()
    keys = [f"{r.name}@{r.version}" for r in records[:3]]
    result = live_read.read(str(registry.path), True, {}, [], keys)
    pinned = targets.pinned(registry)
    assert result.headers == targets.headers(pinned, targets.device_short_names(registry))
    expected = {f"{r.name}@{r.version}": cell for r, cell in targets.cells(registry, records[:3], pinned)}
    assert result.cells == expected and len(expected) == 3
    assert live_read.read(str(registry.path), True, {}, []).cells == {}  # none asked: none computed
