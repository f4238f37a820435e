"""Nothing slow on the UI thread (issue 16, item 4): the detail screen reads its stored details in a worker, the card is
rendered to text in a worker (switching to its tab builds nothing), and quitting never waits for a worker.

Speed itself is measured in benchmarks/tui_startup.py, not here: these tests check the structure that keeps the UI
thread free (no wall-clock thresholds)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from textual.widgets import Static, TabbedContent
from tui_fixtures import settle, static_text, sync

from embodied_tui.app import EmbodiedApp
from embodied_tui.screens.detail import DetailScreen

ROOT = Path(__file__).resolve().parent.parent
HANG_BOUND_S = 120  # a bound on a hang, not a speed claim: the stuck worker below never finishes on its own


def card_pane_widgets(screen) -> list:
    return list(screen.query_one("#card-scroll").query("*"))


@sync
async def test_card_is_one_prerendered_block_made_in_a_worker(registry):
    """The card tab holds one Static with the card rendered in the worker (before: a Markdown widget that built a
    widget per block, ~350 for a small CNN, laid out on the UI thread at every switch to and from the tab)."""
    from embodied_tui.services.card import model_card

    record = registry.get("resnet_tiny")
    card = model_card(registry, record.name, record.version).to_markdown()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_detail(record)
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailScreen) and screen.card_text == card
        await pilot.press("6")
        assert screen.query_one(TabbedContent).active == "card"
        widgets = card_pane_widgets(screen)
        assert [type(w) for w in widgets] == [Static]
        shown = static_text(widgets[0], width=80)
        # the card's own sentences are there, in words as written (no markup left, headings without '#')
        assert f"{record.name} v{record.version}" in shown and f"{record.params:,}" in shown
        assert "## " not in shown
        await pilot.press("1")
        await pilot.press("6")
        assert card_pane_widgets(screen) == widgets  # switching back builds nothing


@sync
async def test_card_is_rendered_again_for_a_new_width(registry):
    record = registry.get("resnet_tiny")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_detail(record)
        await settle(pilot)
        screen = app.screen
        await pilot.press("6")
        narrow = screen.card_width
        lines = screen.query_one("#card-text", Static).content.plain.splitlines()
        assert narrow <= 80 and max(map(len, lines)) <= narrow
        await pilot.resize_terminal(120, 40)
        await settle(pilot)
        assert screen.card_width > narrow
        wide = screen.query_one("#card-text", Static).content.plain.splitlines()
        assert max(map(len, wide)) > narrow  # the table and the sentences use the new width


@sync
async def test_detail_reads_its_stored_details_in_a_worker(registry):
    record = registry.get("resnet_tiny")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        app.open_detail(record)
        await settle(pilot)
        screen = app.screen
        details = registry.details(record)
        assert screen.details == details and details.census
        assert not any(screen.query_one(f"#{tab}").loading for tab in ("census", "types", "file"))
        await pilot.press("2")
        assert screen.query_one("#census-tree").display


QUIT_SCRIPT = """
import sys, threading
from embodied_tui.app import EmbodiedApp, run_to_exit

never = threading.Event()  # nobody sets it: the worker below waits forever


class Stuck(EmbodiedApp):
    def on_ready(self):
        self.run_worker(never.wait, thread=True, group="stuck")
        self.set_timer(0.5, lambda: self.simulate_key("ctrl+q"))


class Headless(Stuck):
    def run(self, **kwargs):
        print("quitting", flush=True)
        return super().run(headless=True, size=(80, 24))


run_to_exit(Headless(sys.argv[1]))  # as run_app runs the app
"""


def test_quitting_never_waits_for_a_worker(registry):
    """ctrl+q with a thread worker that never ends, while the best-fit cells are being computed: the app quits and
    the process exits at once, with status 0 and nothing on stderr (before: asyncio.run waited for the default
    executor's threads, for ever here; with daemon threads alone, a thread inside numpy at interpreter shutdown
    aborted the process about one time in two)."""
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", QUIT_SCRIPT, str(registry.path)], cwd=ROOT, capture_output=True,
                              text=True, timeout=HANG_BOUND_S)
        assert done.returncode == 0 and done.stderr == "", done.stderr
        assert done.stdout.strip() == "quitting"


def large_copy(registry, directory: Path, copies: int):
    """A registry of ``copies`` models: the fixture's latest records under new names (real analyses, real file)."""
    from embodied_tui.data.store import Registry

    entries = [e for e in registry.entries() if e[0].version == 1]
    big = Registry(directory / "big.json")
    big.put_many([(record.model_copy(update={"name": f"{record.name}_{i:04d}"}), identity, details)
                  for i in range(copies) for record, identity, details in [entries[i % len(entries)]]])
    return big


@sync
async def test_a_large_registry_is_read_after_the_first_frame(registry, tmp_path):
    """Over LARGE_REGISTRY_BYTES the rows are read in a worker (the first frame does not wait for the parse); the
    table then holds every model, as a small registry's does at once."""
    from embodied_tui import app as app_module

    assert not EmbodiedApp(registry=registry).reads_in_background()  # the small one: read before the first frame
    big = large_copy(registry, tmp_path, 700)
    assert big.path.stat().st_size > app_module.LARGE_REGISTRY_BYTES
    app = EmbodiedApp(registry=big)
    assert app.reads_in_background()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        screen = app.registry_screen
        assert not screen.reading and screen.table.row_count == 700
        assert "700 of 700 models" in static_text(screen.query_one("#status"))
