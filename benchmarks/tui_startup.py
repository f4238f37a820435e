"""TUI startup and filter latency: process start -> first painted registry table, with 10 and 10,000 records.

    .venv/bin/python benchmarks/tui_startup.py [--runs 5]

Measures, each as the median of --runs fresh processes (wall clock from spawning the process):
- `python -c "import textual"` (the floor any Textual app pays), and an empty Textual app to its first frame;
- `embodied-ai`'s app to its first frame (App.Ready: the registry table painted) on registries of 10 and 10,000
  records (headless, 80x24), and to the "best fit" column filled for the rows on screen (computed after the first
  frame, in a thread worker);
and, in one process at 10,000 records, the latency of applying a filter (parse + filter + sort + table rebuild) for a
few expressions, median of 5 each.

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


async def filter_latency(db: Path) -> dict[str, float]:
    from embodied_tui.app import EmbodiedApp

    app = EmbodiedApp(str(db))
    out = {}
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        analyses = real_analyses(tmp)
        for n in (10, 10_000):
            build_registry(tmp / f"r{n}.json", n, analyses)
        results = {"python -c 'import textual'": median_time(args.runs, "import textual")[0],
                   "empty Textual app, first frame": median_time(args.runs, EMPTY_APP)[0]}
        for n in (10, 10_000):
            seconds, rows = median_time(args.runs, FIRST_FRAME, str(tmp / f"r{n}.json"))
            assert rows == n, (rows, n)
            results[f"embodied-ai app, first frame, {n} records"] = seconds
        for n in (10, 10_000):
            seconds, rows = median_time(args.runs, BEST_FIT, str(tmp / f"r{n}.json"))
            results[f"best fit of the {rows} rows on screen filled, {n} records"] = seconds
        latency = asyncio.run(filter_latency(tmp / "r10000.json"))
    print(f"{'measure':62} {'seconds':>8}")
    for name, seconds in results.items():
        print(f"{name:62} {seconds:8.3f}")
    print("filter latency at 10,000 records (parse + filter + sort + rebuild + repaint):")
    for name, seconds in latency.items():
        print(f"  {name:56} {seconds:8.3f}")
    print(json.dumps({"startup": results, "filter": latency}))


if __name__ == "__main__":
    main()
