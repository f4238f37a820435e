"""Doing things from the keyboard (issue 16, item 9), through the real app on a registry of real analyses: edit tags
and description, remove a version or a model after a confirmation, copy with OSC 52, export the visible table, clear
marks, set the target, and the Cypher in $EDITOR. Each result is checked in the registry file or the file written,
against what the CLI does with the same request."""
from __future__ import annotations

import base64
import csv
import json

import pytest
from textual.command import CommandPalette
from textual.widgets import Input, Static, TextArea
from tui_fixtures import static_text, sync, until

from embodied_tui.app import EmbodiedApp
from embodied_tui.data.store import Registry
from embodied_tui.screens.ask import AskScreen
from embodied_tui.screens.confirm import ConfirmDialog
from embodied_tui.screens.detail import DetailScreen
from embodied_tui.screens.edit import EditDialog
from embodied_tui.screens.export import ExportDialog
from embodied_tui.screens.registry import RegistryScreen
from embodied_tui.screens.widgets.model_table import ModelTable

SIZES = [(80, 24), (120, 40)]


def table(app) -> ModelTable:
    return app.screen_stack[0].query_one(ModelTable)


def notices(app) -> list[str]:
    return [n.message for n in app._notifications]


async def on_row(pilot, key: str) -> None:
    table(pilot.app).move_to(key)
    await pilot.pause()
    assert table(pilot.app).current_key() == key


def tags_of(registry: Registry, name: str) -> dict[int, dict[str, str]]:
    return {r.version: r.tags for r in registry.versions(name)}


# ------------------------------------------------------------------------------------------------ edit
@sync
async def test_edit_tags_and_description_of_every_version_as_model_update_does(registry, tmp_path, cli):
    """`e` on resnet_tiny (two versions, both tagged robot site=lab): the line typed replaces the tags of every version
    (site changed, note added, robot removed) and sets the description; the CLI's `model update` with the same
    changes on a copy of the registry stores the same tags."""
    import shutil

    copy = tmp_path / "copy" / "registry.json"
    shutil.copytree(registry.path.parent, copy.parent)
    before = tags_of(registry, "resnet_tiny")
    assert before == {1: {"robot": "", "site": "lab"}, 2: {"robot": "", "site": "lab"}}
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await on_row(pilot, "resnet_tiny@2")
        await pilot.press("e")
        dialog = app.screen
        assert isinstance(dialog, EditDialog) and app.focused is dialog.query_one("#tags", Input)
        assert dialog.query_one("#tags", Input).value == "robot site=lab"
        dialog.query_one("#tags", Input).value = 'site=yard note="two words"'
        dialog.query_one("#description", Input).value = "the tiny resnet"
        await pilot.press("enter")
        assert isinstance(app.screen, RegistryScreen)
        assert any("updated resnet_tiny (2 versions)" in n for n in notices(app))
        assert table(app).current_key() == "resnet_tiny@2"
        assert table(app).cell("resnet_tiny@2", "tags").startswith("note=two words site")  # cut at 80 columns
    result = cli("model", "update", "resnet_tiny", "--tag", "site=yard", "--tag", "note=two words", "--untag", "robot",
                 "--description", "the tiny resnet", registry=copy)
    assert result.exit_code == 0, result.output
    assert tags_of(registry, "resnet_tiny") == tags_of(Registry(copy), "resnet_tiny")
    assert tags_of(registry, "resnet_tiny") == {1: {"site": "yard", "note": "two words"},
                                                 2: {"site": "yard", "note": "two words"}}
    assert {r.description for r in registry.versions("resnet_tiny")} == {"the tiny resnet"}


@sync
async def test_edit_one_version_removes_a_tag_and_refuses_a_bad_one(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("A")  # every version: the row of v1
        await on_row(pilot, "resnet_tiny@1")
        await pilot.press("e")
        dialog = app.screen
        tags = dialog.query_one("#tags", Input)
        assert tags.value == "robot site=lab"
        tags.value = "=lab"
        await pilot.press("enter")
        error = dialog.query_one("#edit-error", Static)
        assert error.display and "bad tag '=lab'" in static_text(error) and "--" not in static_text(error)
        assert isinstance(app.screen, EditDialog)
        tags.value = "site=lab"  # robot removed
        dialog.query_one("#only-version").value = True
        await pilot.press("enter")
        assert isinstance(app.screen, RegistryScreen)
        assert any("updated resnet_tiny (v1)" in n for n in notices(app))
    assert tags_of(registry, "resnet_tiny") == {1: {"site": "lab"}, 2: {"robot": "", "site": "lab"}}


@sync
async def test_edit_from_the_detail_screen_shows_the_new_description(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(120, 40)) as pilot:
        await on_row(pilot, "mlp_policy@1")
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        await pilot.press("e")
        app.screen.query_one("#description", Input).value = "arm controller"
        await pilot.press("enter")
        assert isinstance(app.screen, DetailScreen)
        assert app.screen.record.description == "arm controller"
        facts = static_text(app.screen.query_one("#file-facts", Static), width=120)
        assert "arm controller" in facts
    assert registry.get("mlp_policy").description == "arm controller"


@sync
async def test_edit_with_nothing_changed_writes_nothing(registry):
    db_bytes = registry.path.read_bytes()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await on_row(pilot, "detector@1")
        await pilot.press("e", "enter")
        assert isinstance(app.screen, RegistryScreen)
        assert any("detector: nothing changed" in n for n in notices(app))
    assert registry.path.read_bytes() == db_bytes


# ------------------------------------------------------------------------------------------------ remove
@sync
async def test_remove_asks_first_then_removes_a_version_or_the_model(registry):
    before = {(r.name, r.version) for r in registry.list_models(latest_only=False)}
    db_bytes = registry.path.read_bytes()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await on_row(pilot, "resnet_tiny@2")
        await pilot.press("d")
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        question = static_text(dialog.query_one("#confirm-question", Static))
        assert "resnet_tiny" in question and "v1, v2" in question and str(registry.path) in question
        await pilot.press("n")  # keep
        assert isinstance(app.screen, RegistryScreen) and registry.path.read_bytes() == db_bytes
        await pilot.press("d", "escape")  # keep too
        assert registry.path.read_bytes() == db_bytes

        await pilot.press("d", "v")  # this version only
        assert isinstance(app.screen, RegistryScreen)
        assert any("removed v2 of resnet_tiny" in n for n in notices(app))
        assert "resnet_tiny@1" in table(app).keys and "resnet_tiny@2" not in table(app).keys

        await on_row(pilot, "detector@1")  # one version: y removes it
        await pilot.press("d")
        assert "y: remove" in static_text(app.screen.query_one("#confirm-keys", Static))
        await pilot.press("y")
        assert "detector@1" not in table(app).keys
        assert any("removed detector (1 version)" in n for n in notices(app))
    after = {(r.name, r.version) for r in registry.list_models(latest_only=False)}
    assert after == before - {("resnet_tiny", 2), ("detector", 1)}


@sync
async def test_remove_every_version_from_detail_goes_back_to_the_table(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await on_row(pilot, "resnet_tiny@2")
        await pilot.press("enter", "d")
        assert "a: remove all 2" in static_text(app.screen.query_one("#confirm-keys", Static))
        await pilot.press("a")  # every version (the app's own `a`, Ask, does not open over the dialog)
        assert isinstance(app.screen, RegistryScreen)
        assert not any(k.startswith("resnet_tiny@") for k in table(app).keys)
        assert any("removed resnet_tiny (2 versions)" in n for n in notices(app))
    assert "resnet_tiny" not in {r.name for r in registry.list_models(latest_only=False)}


@sync
async def test_actions_on_an_empty_registry_say_there_is_no_model(tmp_path):
    app = EmbodiedApp(registry=Registry(tmp_path / "r.json"))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("e", "d", "y", "Y", "ctrl+e")
        assert isinstance(app.screen, RegistryScreen)
        assert notices(app).count("no model here: register one with r") == 4
        assert "nothing to export: no rows are shown" in notices(app)
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("size", SIZES)
@sync
async def test_each_dialog_shows_all_its_lines(registry, size):
    """Edit, remove and export at 80x24 and 120x40: every field, hint and question line is on screen whole."""
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=size) as pilot:
        await on_row(pilot, "resnet_tiny@2")
        for key, parts in (("e", ("#tags", "#description", "#only-version", "#edit-hint")),
                           ("d", ("#confirm-question", "#confirm-keys")),
                           ("ctrl+e", ("#export-what", "#path", "#export-hint"))):
            await pilot.press(key)
            await pilot.pause()
            screen_region = app.screen.region
            for part in parts:
                widget = app.screen.query_one(part)
                assert widget.region.height >= 1 and screen_region.contains_region(widget.region), (key, part)
            await pilot.press("escape")
            assert isinstance(app.screen, RegistryScreen)


@sync
async def test_a_refused_removal_shows_the_services_line(registry):
    """An alias pointing at the version: `services.models.remove` refuses; the app shows that line without the CLI's
    advice (``errors.app_message``: no `--force`, no command line) and the registry keeps the version."""
    from embodied_tui.errors import app_message
    from embodied_tui.services import aliases
    from embodied_tui.services.models import remove

    aliases.set_alias(registry, "small_vit@1", "production")
    with pytest.raises(Exception) as refused:
        remove("small_vit", 1, registry)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await on_row(pilot, "small_vit@1")
        await pilot.press("d", "y")
        assert app_message(refused.value) in notices(app)
        assert "--force" in str(refused.value) and not any("--force" in n for n in notices(app))
    assert registry.get("small_vit").version == 1


# ------------------------------------------------------------------------------------------------ copy
def osc52(text: str) -> str:
    """The escape sequence that sets the terminal's clipboard (OSC 52, 'c' selection, base64 payload, BEL)."""
    return "\x1b]52;c;" + base64.b64encode(text.encode()).decode() + "\a"


@sync
async def test_y_copies_the_reference_and_Y_the_row_through_osc52(registry):
    record = registry.get("mobilenet_tiny")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        written: list[str] = []
        write = app._driver.write
        app._driver.write = lambda data: (written.append(data), write(data))[1]  # what reaches the terminal
        await on_row(pilot, "mobilenet_tiny@1")
        await pilot.press("y")
        assert app.clipboard == "mobilenet_tiny@1" and osc52("mobilenet_tiny@1") in written
        assert any("copied mobilenet_tiny@1" in n for n in notices(app))
        await pilot.press("Y")
        cells = app.clipboard.split("\t")
        assert osc52(app.clipboard) in written
        # the exact numbers, not the table's abbreviations
        assert cells[:6] == ["mobilenet_tiny", "1", record.architecture.family, record.architecture.type,
                             str(record.params), str(record.macs)]
        assert cells[-1] == record.path and cells[-2] == record.sha256
        # from the detail screen too
        await pilot.press("enter", "y")
        assert app.clipboard == "mobilenet_tiny@1"
        # on the census tree: the node under the cursor, its dotted path and its row, exact numbers
        await pilot.press("2", "j", "j")
        await pilot.press("y")
        census = {n.path: n for n in registry.details(record).census}
        path = app.clipboard
        assert path in census and path != ""
        await pilot.press("Y")
        node = census[path]
        assert app.clipboard.split("\t") == [path, node.type, str(node.params), str(node.macs),
                                              "x".join(map(str, node.output_shape))]


# ------------------------------------------------------------------------------------------------ export
@sync
async def test_ctrl_e_exports_the_rows_shown_as_csv_and_json(registry, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    expected = sorted((r for r in registry.list_models() if r.architecture.type == "cnn"), key=lambda r: r.name)
    assert 1 < len(expected) < len(registry.list_models())
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("slash")
        app.screen.query_one("#filter", Input).value = "type = cnn"
        await pilot.press("enter", "ctrl+e")
        dialog = app.screen
        assert isinstance(dialog, ExportDialog)
        assert dialog.query_one("#path", Input).value == str(tmp_path / "models.csv")
        await pilot.press("enter")  # written in a worker: the dialog closes when it is done
        await until(pilot, lambda: isinstance(app.screen, RegistryScreen))
        assert any(f"exported {len(expected)} rows as shown" in n for n in notices(app))

        await pilot.press("ctrl+e")  # models.csv exists now: the default moves on
        path_input = app.screen.query_one("#path", Input)
        assert path_input.value == str(tmp_path / "models-2.csv")
        path_input.value = str(tmp_path / "models.csv")
        await pilot.press("enter")  # exists: asks first
        assert "exists already" in static_text(app.screen.query_one("#export-error", Static))
        path_input.value = str(tmp_path / "models.json")
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RegistryScreen))

    with open(tmp_path / "models.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["name"], int(r["version"]), int(r["params"]), int(r["macs"])) for r in rows] == [
        (r.name, r.version, r.params, r.macs) for r in expected]
    # the JSON is the CLI's `model list --json` of the same filter and order, byte for byte
    result = cli("model", "list", "--json", "--filter", "type = cnn", "--sort", "name", registry=registry.path)
    assert result.exit_code == 0
    assert (tmp_path / "models.json").read_text() == result.output
    assert [r["name"] for r in json.loads(result.output)] == [r.name for r in expected]


@sync
async def test_export_refuses_a_bad_path_in_one_line(registry, tmp_path):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+e")
        path_input = app.screen.query_one("#path", Input)
        error = app.screen.query_one("#export-error", Static)
        (tmp_path / "folder.csv").mkdir()
        for bad, words in ((tmp_path / "models.txt", "must end in .csv or .json"),
                           (tmp_path / "nowhere" / "m.csv", "does not exist"),
                           (tmp_path / "folder.csv", "it is a folder")):
            path_input.value = str(bad)
            await pilot.press("enter")
            assert words in " ".join(static_text(error).split()) and isinstance(app.screen, ExportDialog)
        # a write that fails (here a FIFO where the file would go: never written through) is one line too, and the
        # dialog stays to try another name
        import os

        os.mkfifo(tmp_path / "pipe.csv")
        path_input.value = str(tmp_path / "pipe.csv")
        await pilot.press("enter", "enter")  # it exists: the second enter means "replace it"
        await until(pilot, lambda: "cannot write" in static_text(error))
        assert "not a regular file" in " ".join(static_text(error).split()) and not path_input.disabled
        await pilot.press("escape")
        assert isinstance(app.screen, RegistryScreen)


# ------------------------------------------------------------------------------------------------ marks, target
@sync
async def test_M_clears_every_mark(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("space", "space", "space")
        screen = app.screen
        assert len(screen.marked) == 3
        await pilot.press("M")
        assert screen.marked == {} and "0 marked" in static_text(screen.query_one("#status", Static))
        assert any("cleared 3 marks" in n for n in notices(app))
        assert all(not table(app).cell(k, "mark").strip() for k in table(app).keys)


@sync
async def test_t_opens_the_target_choices(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("t")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        await on_row(pilot, "mlp_policy@1")
        await pilot.press("enter", "t")  # from the detail screen too
        assert isinstance(app.screen, CommandPalette)


# ------------------------------------------------------------------------------------------------ $EDITOR
def write_editor(tmp_path, body: str) -> str:
    script = tmp_path / "fake-editor"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(0o755)
    return str(script)


@sync
async def test_ctrl_o_edits_the_cypher_in_the_editor(registry, tmp_path, monkeypatch):
    """EDITOR is a script that rewrites the file it is given, as a person would in an editor."""
    query = "MATCH (m:Model) RETURN m.name ORDER BY m.name LIMIT 2"
    monkeypatch.delenv("VISUAL", raising=False)
    monkeypatch.setenv("EDITOR", write_editor(tmp_path, f"cat \"$1\" > {tmp_path}/seen; echo '{query}' > \"$1\""))
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("a")
        screen = app.screen
        assert isinstance(screen, AskScreen)
        box = screen.query_one("#cypher", TextArea)
        box.text = "MATCH (m:Model) RETURN m.name"
        await pilot.press("ctrl+o")
        assert box.text == query
        assert (tmp_path / "seen").read_text() == "MATCH (m:Model) RETURN m.name"  # the editor got the box's text
        assert any("ctrl+r runs it" in n for n in notices(app))

        # an editor that fails leaves the box alone and says so
        monkeypatch.setenv("EDITOR", write_editor(tmp_path, "exit 3"))
        await pilot.press("ctrl+o")
        assert box.text == query
        assert any("exited with status 3" in n for n in notices(app))
