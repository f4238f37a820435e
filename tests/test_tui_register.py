"""The register dialog: a real model file analysed in a child process, cancel, and bad input, all through the app."""
from __future__ import annotations

import signal

import pytest
from textual.widgets import Input, Static
from tui_fixtures import model_file, static_text, sync, until

from embodied_tui.app import EmbodiedApp
from embodied_tui.data.store import Registry, sha256_file
from embodied_tui.screens.register import RegisterDialog
from embodied_tui.screens.registry import RegistryScreen
from embodied_tui.screens.widgets.model_table import ModelTable

SIZE = (80, 24)


def fill(dialog: RegisterDialog, **values: str) -> None:
    for field, value in values.items():
        dialog.query_one(f"#{field}", Input).value = value


def error_text(dialog: RegisterDialog) -> str:
    widget = dialog.query_one("#register-error", Static)
    return static_text(widget) if widget.display else ""


async def burst(pilot, *keys: str) -> None:
    """Send ``keys`` as a fast typist's terminal does: every key is queued before the app handles the first (Pilot's
    ``press`` waits for the app to be idle after each key, which hides ordering bugs)."""
    from textual import events

    for key in keys:
        event = events.Key(key, "\t" if key == "tab" else " " if key == "space" else key if len(key) == 1 else None)
        event.set_sender(pilot.app)
        pilot.app._driver.send_message(event)
    await pilot.pause()
    await pilot.pause()


def value(dialog, field: str) -> str:
    return dialog.query_one(f"#{field}", Input).value


@sync
async def test_register_a_real_model_file(registry, tmp_path):
    from embodied_tui.analysis.api import analyze_file

    path = model_file(tmp_path / "files", "mlp_policy", "state_dict", seed=42)
    before = registry.list_models(latest_only=False)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        dialog = app.screen
        assert isinstance(dialog, RegisterDialog) and app.focused is dialog.query_one("#path", Input)
        fill(dialog, path=str(path), name="new_policy", tags="robot site=lab")
        await pilot.press("enter")
        assert dialog.query_one("#register-progress").display  # progress bar while the child works
        await until(pilot, lambda: not isinstance(app.screen, RegisterDialog))
        assert isinstance(app.screen, RegistryScreen)

        record = registry.get("new_policy")
        expected = analyze_file(path)  # the same analysis, made here independently
        assert (record.params, record.macs, record.layers) == (expected.params, expected.macs, expected.layers)
        assert record.sha256 == sha256_file(path) and record.tags == {"robot": "", "site": "lab"}
        assert len(registry.list_models(latest_only=False)) == len(before) + 1
        # the table was refreshed and its cursor is on the new model
        table = app.screen.query_one(ModelTable)
        assert table.current_key() == "new_policy@1"


@sync
async def test_keys_typed_right_after_tab_land_in_the_next_field(tmp_path):
    app = EmbodiedApp(registry=Registry(tmp_path / "r.json"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        dialog = app.screen
        await burst(pilot, *"a.pt", "tab", *"policy2", "tab", "tab", *"robot", "space", *"site=lab", "tab",
                    *"arm", "shift+tab")
        assert (value(dialog, "path"), value(dialog, "name"), value(dialog, "shape")) == ("a.pt", "policy2", "")
        assert (value(dialog, "tags"), value(dialog, "description")) == ("robot site=lab", "arm")
        assert app.focused is dialog.query_one("#tags", Input)  # shift+tab went back one field


@sync
async def test_escape_cancels_the_analysis_and_leaves_the_registry_untouched(registry, tmp_path):
    path = model_file(tmp_path / "files", "yolo_style_detector", "state_dict", seed=7)
    db_bytes = registry.path.read_bytes()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        dialog = app.screen
        fill(dialog, path=str(path))
        await pilot.press("enter")
        await until(pilot, lambda: dialog.job is not None and dialog.job.started.is_set())
        job = dialog.job
        await pilot.press("escape")
        await until(pilot, lambda: dialog.job is None)
        assert job.cancelled and not job.is_alive() and job.exitcode == -signal.SIGTERM
        assert "cancelled" in error_text(dialog)
        assert isinstance(app.screen, RegisterDialog)  # the first escape only stops the analysis
        await pilot.press("escape")
        assert isinstance(app.screen, RegistryScreen)
    assert registry.path.read_bytes() == db_bytes


@sync
async def test_bad_input_is_shown_in_the_dialog(registry, tmp_path):
    not_a_model = tmp_path / "notes.txt"
    not_a_model.write_text("not a model")
    db_bytes = registry.path.read_bytes()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        dialog = app.screen
        await pilot.press("enter")
        assert "type the path" in error_text(dialog)
        fill(dialog, path=str(tmp_path / "missing.pt"))
        await pilot.press("enter")
        assert "no such file" in error_text(dialog) and dialog.job is None
        empty = tmp_path / "empty"
        empty.mkdir()
        fill(dialog, path=str(empty))  # a directory, but no Hugging Face model in it
        await pilot.press("enter")
        assert "a folder without config.json" in error_text(dialog) and dialog.job is None
        fill(dialog, path=str(not_a_model), shape="1,a,3")
        await pilot.press("enter")
        assert "shape '1,a,3'" in error_text(dialog) and "--" not in error_text(dialog) and dialog.job is None
        # a file that is no model: the analysis in the child fails and says so, in the dialog
        fill(dialog, shape="")
        await pilot.press("enter")
        await until(pilot, lambda: dialog.job is None and error_text(dialog))
        assert str(not_a_model) in error_text(dialog)
        assert isinstance(app.screen, RegisterDialog)
    assert registry.path.read_bytes() == db_bytes


@sync
async def test_register_a_hugging_face_folder(registry, tmp_path):
    """A directory holding a Hugging Face model (here its config.json alone) is accepted and registered; the
    parameters are those of the config's architecture, worked out by hand."""
    import json

    folder = tmp_path / "tiny-llama"
    folder.mkdir()
    # Llama: hidden 64, 2 layers, 4 query heads and 2 KV heads of 16, gated MLP 96, vocab 128, untied head
    (folder / "config.json").write_text(json.dumps(
        {"model_type": "llama", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
         "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 128, "max_position_embeddings": 64}))
    attention = 64 * 64 + 2 * 64 * 32 + 64 * 64  # q, k, v (2 KV heads x 16), o
    per_layer = attention + 3 * 64 * 96 + 2 * 64  # + gate, up, down + 2 RMSNorm weights
    params = 128 * 64 + 2 * per_layer + 64 + 128 * 64  # embedding + layers + final norm + LM head
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        dialog = app.screen
        fill(dialog, path=str(folder))
        await pilot.press("enter")  # accepted: the dialog closes on success (an error would keep it open)
        await until(pilot, lambda: not isinstance(app.screen, RegisterDialog) or dialog.job is None)
        assert not isinstance(app.screen, RegisterDialog), error_text(dialog)
        record = registry.get("tiny-llama")  # the default name is the folder's
        assert record.params == params and record.format == "hf_config"
        assert record.architecture.family == "llama"


@sync
async def test_path_completion(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "policy.pt2").write_bytes(b"x")
    (tmp_path / "models" / "readme.txt").write_text("x")
    app = EmbodiedApp(registry=Registry(tmp_path / "r.json"))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        path_input = app.screen.query_one("#path", Input)
        path_input.value = str(tmp_path / "mo")
        path_input.cursor_position = len(path_input.value)
        await pilot.pause(0.2)
        await pilot.press("right")  # accepts the suggestion
        assert path_input.value == str(tmp_path / "models") + "/"
        await pilot.pause(0.2)
        await pilot.press("right")
        assert path_input.value == str(tmp_path / "models" / "policy.pt2")  # model files before other files


def test_add_analysis_stores_what_the_dialog_analysed(tmp_path):
    """``register``'s last step (the dialog runs ``register`` itself, in its child process): an analysis stored under
    a name; a blank name is one clear error."""
    import json

    from tui_fixtures import FIXTURE_JSON

    from embodied_tui.data.records import Analysis
    from embodied_tui.errors import UserError
    from embodied_tui.services.models import add_analysis

    entry = json.loads(FIXTURE_JSON.read_text())[0]
    analysis = Analysis.model_validate(entry["analysis"])
    registry = Registry(tmp_path / "r.json")
    with pytest.raises(UserError, match="needs a name"):
        add_analysis(analysis, name="  ", db=registry)
    record, status = add_analysis(analysis, name=" policy ", tags={"robot": ""}, description="d", db=registry)
    assert (status, record.name, record.version, record.tags, record.description) == (
        "added", "policy", 1, {"robot": ""}, "d")
    assert (record.params, record.macs, record.sha256) == (analysis.params, analysis.macs, analysis.sha256)
    assert add_analysis(analysis, name="policy", db=registry)[1] == "unchanged"
    assert registry.get("policy").sha256 == analysis.sha256


@sync
async def test_the_dialog_registers_as_the_cli_does(tmp_path, cli, db):
    """Same file, same tags and description: through the CLI into one registry, through the dialog (blank name) into
    another. The dialog's default name is the CLI's (the file name up to its first dot: `policy.traced.pt` ->
    `policy`, where the dialog used to say `policy.traced`), and the stored records agree field by field."""
    import shutil

    source = model_file(tmp_path / "files", "mlp_policy", "state_dict", seed=3)
    path = tmp_path / "policy.traced.pt"
    shutil.copy(source, path)
    result = cli("model", "register", path, "--tag", "robot", "--tag", "note=two words", "--description", "arm policy")
    assert result.exit_code == 0, result.output
    by_cli = Registry(db).get("policy")

    registry = Registry(tmp_path / "app" / "registry.json")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        dialog = app.screen
        fill(dialog, path=str(path), tags='robot note="two words"', description="arm policy")
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, RegisterDialog) or dialog.job is None)
        assert not isinstance(app.screen, RegisterDialog), error_text(dialog)
        # the same bytes again: the service's "unchanged", said as such
        await pilot.press("r")
        dialog = app.screen
        fill(dialog, path=str(path))
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, RegisterDialog) or dialog.job is None)
        assert any("policy v1 is already registered with these bytes" in n.message for n in app._notifications)
    assert len(registry.list_models(latest_only=False)) == 1
    by_app = registry.get("policy")
    assert by_app.tags == {"robot": "", "note": "two words"} and by_app.description == "arm policy"
    same = ("name", "version", "tags", "description", "sha256", "params", "macs", "format", "input_shapes")
    assert {k: getattr(by_app, k) for k in same} == {k: getattr(by_cli, k) for k in same}


@sync
async def test_names_the_cli_refuses_are_refused_in_the_dialog_in_its_words(tmp_path, cli):
    """Spaces, '=', '@', a leading '-': the dialog refuses each as the CLI does (one rule), in one line that names no
    CLI flag; nothing is started or stored."""
    path = model_file(tmp_path / "files", "mlp_policy", "state_dict", seed=1)
    registry = Registry(tmp_path / "app" / "registry.json")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("r")
        dialog = app.screen
        for bad in ("depth-policy2robot site=lab", "a=b", "yolo@3", "-x"):
            result = cli("model", "register", path, "--name", bad)
            assert result.exit_code != 0
            cli_reason = " ".join(result.output.split()).removeprefix("error: ").split("; ")[0]
            fill(dialog, path=str(path), name=bad)
            await pilot.press("enter")
            shown = str(dialog.query_one("#register-error", Static).content)  # the line, before the box wraps it
            assert shown.startswith("error: " + cli_reason), (shown, cli_reason)
            assert "--" not in shown and "\n" not in shown and dialog.job is None
        # tags: the CLI's parser; a broken quote is one line too
        fill(dialog, name="", tags='site="lab')
        await pilot.press("enter")
        assert "close the quote" in error_text(dialog) and dialog.job is None
    assert not registry.path.exists()  # nothing was ever written


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
@sync
async def test_every_field_of_the_dialog_is_on_screen(tmp_path, size):
    app = EmbodiedApp(registry=Registry(tmp_path / "r.json"))
    async with app.run_test(size=size) as pilot:
        await pilot.press("r")
        dialog = app.screen
        dialog.show_error("x" * 150)  # a long error wraps inside the box; the fields stay on screen
        await pilot.pause()
        for part in ("#path", "#name", "#shape", "#tags", "#description", "#trust", "#register-error",
                     "#register-hint"):
            widget = dialog.query_one(part)
            assert widget.region.height >= 1 and dialog.region.contains_region(widget.region), part
