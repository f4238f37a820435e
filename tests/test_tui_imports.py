"""The app never imports torch, onnx or onnxruntime: checked in a fresh interpreter after driving every screen (fit
and its roofline, ask, the model card and the best-fit column included: services.fit and services.ask stay light)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("torch", "onnx", "onnxruntime")

SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from tui_fixtures import fixed_registry
    from embodied_tui.app import EmbodiedApp

    async def main():
        app = EmbodiedApp(registry=fixed_registry(Path({db!r})))
        async with app.run_test(size=(80, 24)) as pilot:
            visited, drawn = [], []
            for keys in (("space", "space", "c"), ("escape", "enter", "2", "l", "4", "5", "6"), ("question_mark",),
                         ("escape", "f", "enter"), ("escape", "escape", "a"), ("escape", "escape", "slash", "p",
                         "enter", "r")):
                if keys[-1] == "a":  # ask a question and run its Cypher again
                    await pilot.press(*keys)
                    app.screen.query_one("#question").value = "fastest models on a jetson"
                    await pilot.press("enter")
                    await app.workers.wait_for_complete()
                    await pilot.pause()
                    await pilot.press("ctrl+r")
                else:
                    await pilot.press(*keys)
                await pilot.pause(0.3)  # the fit chart waits for the cursor to rest
                await app.workers.wait_for_complete()  # fit rows, roofline layers, card, answers
                await pilot.pause()
                visited.append(type(app.screen).__name__)
                if visited[-1] == "FitScreen":
                    drawn.append(app.screen.charted is not None)
                elif visited[-1] == "AskScreen":
                    drawn.append(app.screen.result is not None and app.screen.error is None)
                elif visited[-1] == "DetailScreen":
                    drawn.append(bool(app.screen.card_text))
            dialog = app.screen
            dialog.query_one("#path").value = {model!r}
            dialog.query_one("#shape").value = "1,3,8,8"
            await pilot.press("enter")  # validates the shape and starts the analysis in a child process
            await pilot.pause(0.5)
            await pilot.press("escape", "escape")
            for _ in range(200):
                if len(app.screen_stack) == 1:
                    break
                await pilot.pause(0.05)
            screens = [type(s).__name__ for s in app.screen_stack]
        print(json.dumps({{"heavy": sorted(m for m in sys.modules if m.split(".")[0] in {heavy!r}),
                          "visited": visited, "drawn": drawn, "screens": screens}}))

    asyncio.run(main())
""")


def test_app_does_not_import_torch(tmp_path):
    model = tmp_path / "model.pt"
    model.write_bytes(b"not really a model")
    script = SCRIPT.format(tests=str(Path(__file__).parent), db=str(tmp_path / "r.json"), model=str(model),
                           heavy=HEAVY)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["visited"] == ["CompareScreen", "DetailScreen", "HelpScreen", "FitScreen", "AskScreen",
                                 "RegisterDialog"]
    assert result["drawn"] == [True, True, True]  # the card, the roofline and the answer were made
    assert result["screens"] == ["RegistryScreen"]
    assert result["heavy"] == []


def test_importing_the_app_module_is_light():
    code = ("import sys, json, embodied_tui.app; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads(out.stdout) == []


def test_the_first_frame_imports_no_catalog_yaml_nor_fit_rows():
    """Issue 16: the first frame costs little more than an empty Textual app's. Importing the app leaves out what only
    the target column needs, computed after the first frame (``services.target``: the device catalog, PyYAML, the
    roofline's fit rows). Checked in a fresh interpreter."""
    code = ("import sys, json, embodied_tui.app; print(json.dumps(sorted(m for m in sys.modules if m in "
            "('yaml', 'embodied_tui.services.target', 'embodied_tui.data.hardware', 'embodied_tui.perf.fit_row'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_the_registry_screens_target_sort_is_the_services():
    """The registry screen names the target sort without importing ``services.target``: the two names agree."""
    from embodied_tui.screens.registry import SORTS, TARGET_SORT
    from embodied_tui.services.target import SORT

    assert TARGET_SORT == SORT and SORT in SORTS
