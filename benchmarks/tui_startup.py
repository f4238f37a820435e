"""TUI latency: first paint, a key's visible reaction, the Card and Fit tabs, filters and the palette, on registries of
7 and 10,000 models, beside an empty Textual app measured in the same run.

    .venv/bin/python benchmarks/tui_startup.py [--runs 5] [--skip-startup] [--only-goals]

The registries are benchmarks/ask_speed.py's ``build``: the 7 zoo models of the tests (real TorchScript files,
analysed) copied under N names. Goals (issue 16): first paint within 1.5x of the empty app at 10,000 models; any key's
visible reaction under 100 ms; the Card and Fit tabs under 150 ms. Wall-clock on whatever machine runs it: compare the
ratios, and rerun the empty app beside the app (this script does) rather than comparing numbers across machines.

Measures:
- **first paint** (median of --runs fresh processes, wall clock from spawning the process to ``App.Ready``, the first
  frame): `python -c "import textual"`, an empty Textual app, and the embodied-ai app at 7 and 10,000 models; the ratio
  app / empty app; and to the table holding every row (a registry over 1 MB is read after the first frame, in a
  worker, so at 10,000 models the first frame shows "reading the registry ..." and an empty table). Then the best-fit (target) cells of the rows on screen filled (computed after the first frame).
- **visible reaction** (in one process per registry, median and worst of --runs presses): the time from a key to the
  first frame in which its effect is painted. Frames are timed where Textual hands a finished frame to the terminal
  (``App._display``, a private method wrapped in this script only, since Pilot's idle detection sleeps between polls
  and would time itself). Keys: `j` on the registry table (the cursor moves; the same key on an empty app's one
  DataTable, `down` there, is the floor), `enter` (the detail screen painted), `6` and `1` (to and from the card tab, the card made),
  `f` (the fit screen painted with its placeholder, then its rows, reported apart), `2` (the roofline tab) and escape;
  and a write to the registry by another process (a child updating a model's tags): the time until the
  table paints it (the writer's own time and the watcher's 0.5 s poll included) and the longest UI-thread stall from
  the writer's exit to that paint (a 1 ms heartbeat on the event loop), the records being read again in a worker (a
  file over 1 MB: in a child process, ``services.live_read``).
- **filter** at 10,000 models (parse + filter + sort + rebuild + repaint), the filter typed key by key (main-thread
  CPU per key, debounce off), and the command palette per key (unchanged from earlier versions of this script).
`--skip-startup` leaves out the process-start measures; `--only-goals` leaves out the filter and palette sections.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))
SIZES = (7, 10_000)

FIRST_FRAME = """
import sys, time
from embodied_tui.app import EmbodiedApp
from embodied_tui.screens.widgets.model_table import ModelTable
class Bench(EmbodiedApp):
    def on_ready(self):
        rows = self.screen.query_one(ModelTable).row_count
        print(f"{time.time()} {rows}")
        self.exit()
Bench(sys.argv[1]).run(headless=True, size=(80, 24))
"""
BEST_FIT = """
import sys, time
from embodied_tui.app import EmbodiedApp
from embodied_tui.screens.widgets.model_table import ModelTable
class Bench(EmbodiedApp):
    def on_ready(self):
        self.set_interval(0.01, self.check)
    def check(self):
        table = self.screen.query_one(ModelTable)
        visible = table.visible_keys()
        if visible and all(table.has_best_fit(k) for k in visible):
            print(f"{time.time()} {len(visible)}")
            self.exit()
Bench(sys.argv[1]).run(headless=True, size=(80, 24))
"""
TABLE_FULL = """
import sys, time
from embodied_tui.app import EmbodiedApp
from embodied_tui.screens.widgets.model_table import ModelTable
class Bench(EmbodiedApp):
    def on_ready(self):
        self.set_interval(0.005, self.check)
    def check(self):
        rows = self.screen.query_one(ModelTable).row_count
        if rows == int(sys.argv[2]):
            print(f"{time.time()} {rows}")
            self.exit()
Bench(sys.argv[1]).run(headless=True, size=(80, 24))
"""
EMPTY_APP = """
import time
from textual.app import App
class Empty(App):
    def on_ready(self):
        print(f"{time.time()} 0")
        self.exit()
Empty().run(headless=True, size=(80, 24))
"""
FILTERS = ("family = resnet", "params < 100k AND type = cnn", "policy", "tags.site = lab OR gmacs > 0.005")
TYPED_FILTERS = ("family = resnet", "policy")
PALETTE_QUERIES = ("resnet_tiny_4217", "rt 4217")
WRITE_ELSEWHERE = """
import sys
from embodied_tui.data.store import Registry
Registry(sys.argv[1]).update(sys.argv[2], tags={"bench": sys.argv[3]})
"""


def build_registry(path: Path, n: int) -> Path:
    """A registry of ``n`` models in ``path`` (a folder): ask_speed's build (the 7 zoo models copied under N names)."""
    from ask_speed import build

    path.mkdir(parents=True, exist_ok=True)
    reg, _ = build(path, n)
    return reg.path


def timed(code: str, *args: str) -> tuple[float, int]:
    start = time.time()
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, check=True)
    if not out.stdout.strip():
        return time.time() - start, 0
    stamp, rows = out.stdout.split()[-2:]
    return float(stamp) - start, int(rows)


def median_time(runs: int, code: str, *args: str) -> tuple[float, int]:
    results = [timed(code, *args) for _ in range(runs)]
    return statistics.median(t for t, _ in results), results[0][1]


async def first_screen_settled(app, pilot) -> None:
    """Wait until the best fits of the rows on screen are computed (their thread worker holds the GIL meanwhile)."""
    from embodied_tui.screens.widgets.model_table import ModelTable

    table = app.screen.query_one(ModelTable)
    while not all(table.has_best_fit(k) for k in table.visible_keys()):
        await pilot.pause(0.05)
    await app.workers.wait_for_complete()
    await pilot.pause()


def key_of(char: str) -> str:
    from textual.keys import _character_to_key

    return _character_to_key(char)


def spread(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:6.1f} ms, worst {max(times) * 1000:6.1f} ms"


async def typed_filter_cpu(db: Path) -> dict[str, str]:
    """Main-thread CPU per key of TYPED_FILTERS typed into the `/` box, every key filtering at once."""
    from embodied_tui.app import EmbodiedApp
    from embodied_tui.screens import registry as registry_screen

    app = EmbodiedApp(str(db))
    typed = {}
    saved = registry_screen.DEBOUNCE_FROM
    registry_screen.DEBOUNCE_FROM = 10 ** 9  # what the debounce would have to hide
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            screen = app.screen
            await first_screen_settled(app, pilot)
            for expr in TYPED_FILTERS:
                await pilot.press("slash")
                cpus = []
                for char in expr:
                    cpu = time.thread_time()
                    await pilot.press(key_of(char))
                    await pilot.pause()  # the repaint
                    cpus.append(time.thread_time() - cpu)
                typed[f"{expr!r}, {len(expr)} keys ({len(screen.shown)} of {len(screen.all_records)} rows)"] = \
                    spread(cpus)
                await pilot.press("escape")
    finally:
        registry_screen.DEBOUNCE_FROM = saved
    return typed


async def filter_latency(db: Path) -> dict[str, float]:
    from embodied_tui.app import EmbodiedApp

    app = EmbodiedApp(str(db))
    out = {}
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        await first_screen_settled(app, pilot)
        for expr in FILTERS:
            times = []
            for _ in range(5):
                screen.filter_text = ""
                screen.refresh_rows()
                start = time.perf_counter()
                screen.filter_text = expr
                screen.refresh_rows()
                await pilot.pause()  # the repaint
                times.append(time.perf_counter() - start)
            out[f"{expr} ({len(screen.shown)} rows)"] = statistics.median(times)
    return out


async def palette_latency(db: Path) -> dict[str, str]:
    from textual.command import CommandList, CommandPalette

    from embodied_tui.app import EmbodiedApp
    from embodied_tui.screens.palette import CompareWithProvider, FitModelProvider, OpenModelProvider

    app = EmbodiedApp(str(db))
    out = {}
    async with app.run_test(size=(80, 24)) as pilot:
        await first_screen_settled(app, pilot)
        providers = [cls(app.screen) for cls in (OpenModelProvider, FitModelProvider, CompareWithProvider)]
        start = time.perf_counter()
        for provider in providers:
            await provider.startup()
        out["model providers' startup (read + index the names)"] = f"{(time.perf_counter() - start) * 1000:6.1f} ms"
        for query in PALETTE_QUERIES:
            times = []
            for end in range(1, len(query) + 1):
                start = time.perf_counter()
                for provider in providers:
                    async for _ in provider.search(query[:end]):
                        pass
                times.append(time.perf_counter() - start)
            out[f"providers' search, {query!r} key by key"] = spread(times)

        group = CommandPalette._GATHER_COMMANDS_GROUP
        await pilot.press("ctrl+p")
        palette = app.screen
        while not palette.has_class("-ready"):
            await pilot.pause(0.001)
        commands = palette.query_one(CommandList)
        for query in PALETTE_QUERIES:
            times = []
            for char in query:
                start = time.perf_counter()
                await pilot.press(key_of(char))
                while any(w.group == group and not w.is_finished for w in app.workers):
                    await asyncio.sleep(0.001)
                times.append(time.perf_counter() - start)
            first = commands.get_option_at_index(0).hit.text if commands.option_count else None
            out[f"palette hits listed, {query!r} key by key ({commands.option_count} hits, first {first!r})"] = \
                spread(times)
            await pilot.press(*["backspace"] * len(query))
            while any(w.group == group and not w.is_finished for w in app.workers):
                await asyncio.sleep(0.001)
    return out


EMPTY_KEYS = """
from textual.app import App
from textual.widgets import DataTable


class EmptyTable(App):
    \"\"\"The floor of a key's reaction: one DataTable of 20 rows, nothing else.\"\"\"

    def compose(self):
        yield DataTable(cursor_type="row")

    def on_mount(self):
        table = self.query_one(DataTable)
        table.add_columns("a", "b")
        table.add_rows([(str(i), str(i * i)) for i in range(20)])
        table.focus()
"""


def frame_timed(app_class):
    """``app_class`` with its frames timed: ``app.probe`` (a callable) is checked at each frame handed to the terminal
    and ``app.seen_at`` set to the time of the first frame where it holds. Wraps ``App._display`` (private)."""

    class Timed(app_class):
        probe = None
        seen_at = None

        def _display(self, screen, renderable) -> None:
            super()._display(screen, renderable)
            if self.probe is not None and renderable is not None and self.seen_at is None:
                try:
                    held = self.probe()
                except Exception:  # noqa: BLE001 - a screen half built: not painted yet
                    held = False
                if held:
                    self.seen_at = time.perf_counter()

    return Timed


async def reaction(app, pilot, key: str, painted, limit_s: float = 30.0) -> float:
    """Seconds from pressing ``key`` to the first frame where ``painted()`` holds."""
    app.probe, app.seen_at = painted, None
    start = time.perf_counter()
    await pilot.press(key)
    while app.seen_at is None and time.perf_counter() - start < limit_s:
        await asyncio.sleep(0.001)
    app.probe = None
    if app.seen_at is None:
        raise RuntimeError(f"{key!r}: its effect was never painted")
    return app.seen_at - start


async def quiet(app, pilot) -> None:
    """Let the workers finish and the app settle before the next press (a press is timed alone)."""
    for _ in range(3):
        await app.workers.wait_for_complete()
        await pilot.pause(0.05)


async def empty_key_reaction(runs: int) -> list[float]:
    namespace: dict = {}
    exec(EMPTY_KEYS, namespace)  # noqa: S102 - the fixed source above
    app = frame_timed(namespace["EmptyTable"])()
    times = []
    async with app.run_test(size=(80, 24)) as pilot:
        await quiet(app, pilot)
        from textual.widgets import DataTable

        table = app.query_one(DataTable)
        for _ in range(runs):
            row = table.cursor_row
            times.append(await reaction(app, pilot, "down", lambda r=row: table.cursor_row == r + 1))
    return times


async def app_reactions(db: Path, runs: int, only_watch: bool = False) -> dict[str, list[float]]:
    """Each key's visible reaction on the app over ``db``, ``runs`` times (median and worst reported); ``only_watch``:
    only the write made by another process."""
    from textual.widgets import TabbedContent

    from embodied_tui.app import EmbodiedApp
    from embodied_tui.screens.detail import DetailScreen
    from embodied_tui.screens.fit import FitScreen

    app = frame_timed(EmbodiedApp)(str(db))
    out: dict[str, list[float]] = {}

    def add(name: str, seconds: float) -> None:
        out.setdefault(name, []).append(seconds)

    async with app.run_test(size=(80, 24)) as pilot:
        await first_screen_settled(app, pilot)
        table = app.registry_screen.table
        for _ in range(0 if only_watch else runs):
            row = table.cursor_row
            add("j: registry cursor down", await reaction(app, pilot, "j", lambda r=row: table.cursor_row == r + 1))
            await quiet(app, pilot)
        for _ in range(0 if only_watch else runs):
            add("enter: detail screen painted", await reaction(
                app, pilot, "enter", lambda: isinstance(app.screen, DetailScreen) and app.screen.is_current))
            await quiet(app, pilot)  # the card and the details are made
            screen = app.screen
            tabs = screen.query_one(TabbedContent)
            add("6: card tab painted (card made)", await reaction(
                app, pilot, "6", lambda t=tabs: t.active == "card" and screen.query_one("#card-text").region.height))
            await quiet(app, pilot)
            add("1: back from the card tab", await reaction(app, pilot, "1", lambda t=tabs: t.active == "summary"))
            await quiet(app, pilot)
            add("escape: back to the table", await reaction(app, pilot, "escape", lambda: app.screen is
                                                              app.registry_screen))
            await quiet(app, pilot)
        for _ in range(0 if only_watch else runs):
            start = time.perf_counter()
            add("f: fit screen painted (placeholder)", await reaction(
                app, pilot, "f", lambda: isinstance(app.screen, FitScreen) and app.screen.is_current))
            fit = app.screen
            while not fit.rows and not fit.error:
                await asyncio.sleep(0.005)
            add("f: fit rows listed (from the key)", time.perf_counter() - start)
            await quiet(app, pilot)
            add("2: roofline tab painted", await reaction(app, pilot, "2", lambda s=fit: s.chart_visible))
            await quiet(app, pilot)
            add("escape: leaves the roofline tab", await reaction(
                app, pilot, "escape", lambda s=fit: app.screen is not s or not s.chart_visible))
            while app.screen is not app.registry_screen:
                await pilot.press("escape")
            await quiet(app, pilot)
        for i in range(runs):
            add_watch = await written_elsewhere(app, pilot, db, i)
            add("registry written elsewhere: change painted (0.5 s poll included)", add_watch[0])
            add("registry written elsewhere: longest UI-thread stall meanwhile", add_watch[1])
            await quiet(app, pilot)
    return out


async def written_elsewhere(app, pilot, db: Path, i: int) -> tuple[float, float]:
    """A write by another process (a child updating a tag): seconds from its start until the table paints it, and
    the longest gap between two ticks of a 1 ms heartbeat on the event loop from the writer's exit to that paint (the
    UI thread's stall while the app sees the change, reads and repaints; while the writer runs, a gap is the OS
    giving the CPU to it, not the app's doing, so the heartbeat starts when it has exited)."""
    table = app.registry_screen.table
    key = table.current_key()
    name = key.rsplit("@", 1)[0]
    gaps = [0.0]
    beating = True

    async def heartbeat() -> None:
        last = time.perf_counter()
        while beating:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tag = f"w{i}"
    app.probe, app.seen_at = (lambda: f"bench={tag}" in table.cell(key, "tags")), None
    start = time.perf_counter()
    writer = await asyncio.create_subprocess_exec(sys.executable, "-c", WRITE_ELSEWHERE, str(db), name, tag, cwd=ROOT)
    await writer.wait()
    beat = asyncio.get_running_loop().create_task(heartbeat())
    while app.seen_at is None and time.perf_counter() - start < 60:
        await asyncio.sleep(0.005)
    beating = False
    await beat
    app.probe = None
    return (app.seen_at or float("nan")) - start, max(gaps)


def ms_spread(times: list[float]) -> str:
    return f"median {statistics.median(times) * 1000:7.1f} ms, worst {max(times) * 1000:7.1f} ms"


GOALS = {  # (measure, limit in seconds)
    "j: registry cursor down": 0.100,
    "6: card tab painted (card made)": 0.150,
    "1: back from the card tab": 0.150,
    "f: fit screen painted (placeholder)": 0.150,
    "2: roofline tab painted": 0.150,
    "registry written elsewhere: longest UI-thread stall meanwhile": 0.100,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-startup", action="store_true", help="only the in-process latencies")
    parser.add_argument("--only-goals", action="store_true", help="leave out the filter and palette sections")
    parser.add_argument("--only-watch", action="store_true",
                        help="only the registry written by another process (implies --skip-startup, --only-goals)")
    args = parser.parse_args()
    if args.only_watch:
        args.skip_startup = args.only_goals = True
    results: dict[str, float] = {}
    reactions: dict[str, str] = {}
    verdicts: list[str] = []
    latency, typed, palette = {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        dbs = {n: build_registry(tmp / f"r{n}", n) for n in SIZES}
        if not args.skip_startup:
            results["python -c 'import textual'"] = median_time(args.runs, "import textual")[0]
            empty = results["empty Textual app, first frame"] = median_time(args.runs, EMPTY_APP)[0]
            for n in SIZES:
                seconds, rows = median_time(args.runs, FIRST_FRAME, str(dbs[n]))
                results[f"embodied-ai app, first frame, {n} models ({rows} rows in it)"] = seconds
                results[f"  ratio to the empty app, {n} models"] = seconds / empty
                seconds, rows = median_time(args.runs, TABLE_FULL, str(dbs[n]), str(n))
                assert rows == n, (rows, n)
                results[f"embodied-ai app, every row in the table, {n} models"] = seconds
            ratio = results[f"  ratio to the empty app, {SIZES[-1]} models"]
            verdicts.append(f"first paint at {SIZES[-1]:,} models: {ratio:.2f}x the empty app (goal <= 1.5x): "
                            f"{'met' if ratio <= 1.5 else 'NOT met'}")
            for n in SIZES:
                seconds, rows = median_time(args.runs, BEST_FIT, str(dbs[n]))
                results[f"target cells of the {rows} rows on screen filled, {n} models"] = seconds
        if not args.only_watch:
            floor = asyncio.run(empty_key_reaction(args.runs))
            reactions["empty Textual app (one DataTable): down"] = ms_spread(floor)
        for n in SIZES:
            for name, times in asyncio.run(app_reactions(dbs[n], args.runs, args.only_watch)).items():
                reactions[f"{n} models: {name}"] = ms_spread(times)
                if name in GOALS:
                    worst = max(times)
                    verdicts.append(f"{n} models, {name}: worst {worst * 1000:.0f} ms (goal < "
                                    f"{GOALS[name] * 1000:.0f} ms): {'met' if worst < GOALS[name] else 'NOT met'}")
        if not args.only_goals:
            big = dbs[SIZES[-1]]
            latency = asyncio.run(filter_latency(big))
            typed = {f"{n} models: {name}": text for n in reversed(SIZES)
                     for name, text in asyncio.run(typed_filter_cpu(dbs[n])).items()}
            palette = {f"{n} models: {name}": text for n in reversed(SIZES)
                       for name, text in asyncio.run(palette_latency(dbs[n])).items()}
    if results:
        print(f"{'first paint (process start to first frame)':66} {'seconds':>8}")
        for name, seconds in results.items():
            unit = "x" if "ratio" in name else ""
            print(f"{name:66} {seconds:8.3f}{unit}")
    print("visible reaction: key to the first frame showing its effect")
    for name, text in reactions.items():
        print(f"  {name:58} {text}")
    if latency:
        print(f"filter latency at {SIZES[-1]:,} models (parse + filter + sort + rebuild + repaint):")
        for name, seconds in latency.items():
            print(f"  {name:56} {seconds:8.3f}")
        print("filter typed key by key, debounce off: main-thread CPU from the key to the repainted table:")
        for name, text in typed.items():
            print(f"  {name:62} {text}")
        print("command palette per key (7 models: the palette's own cost and its 0.1 s poll):")
        for name, text in palette.items():
            print(f"  {name}: {text}")
    print("goals:")
    for line in verdicts:
        print(f"  {line}")
    print(json.dumps({"startup": results, "reactions": reactions, "filter": latency, "typed": typed,
                      "palette": palette, "goals": verdicts}))


if __name__ == "__main__":
    main()
