"""TUI startup, filter and palette latency: process start -> first painted registry table, with 10 and 10,000 records.

    .venv/bin/python benchmarks/tui_startup.py [--runs 5] [--skip-startup]

Measures, each as the median of --runs fresh processes (wall clock from spawning the process):
- `python -c "import textual"` (the floor any Textual app pays), and an empty Textual app to its first frame;
- `embodied-ai`'s app to its first frame (App.Ready: the registry table painted) on registries of 10 and 10,000
  records (headless, 80x24), and to the "best fit" column filled for the rows on screen (computed after the first
  frame, in a thread worker);
and, in one process at 10,000 records (after the best fits of the first screen are done, so that their thread does
not compete for the GIL):
- applying a filter (parse + filter + sort + table rebuild + repaint) for a few expressions, median of 5 each;
- typing a filter key by key into the `/` box with the debounce off (each key filters at once): the main thread's CPU
  time from the key to the repainted table (the event loop is busy that long; Pilot's idle detection sleeps between
  polls, so wall time through Pilot measures Pilot), median and worst over the keys, beside the same keys typed into a
  10-record registry (the cost of the input box and a repaint alone);
- the command palette: the three model providers' own search over 10,000 names per key of a typed query, and the
  wall time from each key to the hits listed (Textual's palette polls its providers' queue every 0.1 s, a floor of
  that wait is in this number; the same at 10 records shows it).
`--skip-startup` leaves out the process-start measures (most of the run time).

The registries hold real analyses (three small zoo models analysed here) replicated under distinct names.
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
PALETTE_QUERIES = ("model-04217", "mdl 4217")


def build_registry(path: Path, n: int, analyses) -> None:
    from embodied_tui.data.records import ModelRecord
    from embodied_tui.data.store import Registry

    items = []
    for i in range(n):
        analysis = analyses[i % len(analyses)]
        record, details = ModelRecord.from_analysis(analysis, name=f"model-{i:05d}", version=1,
                                                    registered_at="2025-01-01T00:00:00+00:00",
                                                    tags={"site": "lab"} if i % 3 == 0 else {})
        items.append((record, f"{analysis.sha256}-{i}", details))
    Registry(path).put_many(items)


def real_analyses(directory: Path):
    import torch

    from embodied_tui.analysis import zoo
    from embodied_tui.analysis.api import analyze_file

    out = []
    for name in ("resnet_tiny", "mobilenet_tiny", "mlp_policy"):
        torch.manual_seed(0)
        path = directory / f"{name}.pt"
        torch.save(zoo.BUILDERS[name].build().state_dict(), path)
        out.append(analyze_file(path))
    return out


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-startup", action="store_true", help="only the in-process latencies")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        analyses = real_analyses(tmp)
        for n in (10, 10_000):
            build_registry(tmp / f"r{n}.json", n, analyses)
        if not args.skip_startup:
            results["python -c 'import textual'"] = median_time(args.runs, "import textual")[0]
            results["empty Textual app, first frame"] = median_time(args.runs, EMPTY_APP)[0]
            for n in (10, 10_000):
                seconds, rows = median_time(args.runs, FIRST_FRAME, str(tmp / f"r{n}.json"))
                assert rows == n, (rows, n)
                results[f"embodied-ai app, first frame, {n} records"] = seconds
            for n in (10, 10_000):
                seconds, rows = median_time(args.runs, BEST_FIT, str(tmp / f"r{n}.json"))
                results[f"best fit of the {rows} rows on screen filled, {n} records"] = seconds
        latency = asyncio.run(filter_latency(tmp / "r10000.json"))
        typed = {f"{n} records: {name}": text for n in (10_000, 10)
                 for name, text in asyncio.run(typed_filter_cpu(tmp / f"r{n}.json")).items()}
        palette = {f"{n} records: {name}": text for n in (10_000, 10)
                   for name, text in asyncio.run(palette_latency(tmp / f"r{n}.json")).items()}
    if results:
        print(f"{'measure':62} {'seconds':>8}")
        for name, seconds in results.items():
            print(f"{name:62} {seconds:8.3f}")
    print("filter latency at 10,000 records (parse + filter + sort + rebuild + repaint):")
    for name, seconds in latency.items():
        print(f"  {name:56} {seconds:8.3f}")
    print("filter typed key by key, debounce off: main-thread CPU from the key to the repainted table:")
    for name, text in typed.items():
        print(f"  {name:62} {text}")
    print("command palette per key (10 records: the palette's own cost and its 0.1 s poll):")
    for name, text in palette.items():
        print(f"  {name}: {text}")
    print(json.dumps({"startup": results, "filter": latency, "typed": typed, "palette": palette}))


if __name__ == "__main__":
    main()
