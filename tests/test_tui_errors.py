"""Messages inside the app never point at CLI flags or command lines (issue 16, item 8): a ``UserError`` carries the
CLI's advice apart (``hint``), the CLI prints message and hint as one line as before, the app shows the message (with
an ``app_hint`` of its own where there is one). Driven through the real store, the real alias service, the real CLI
(click's runner) and the app with Pilot."""
from __future__ import annotations

import pickle

from textual.widgets import Static
from tui_fixtures import settle, static_text, sync

from embodied_tui.app import EmbodiedApp
from embodied_tui.data.store import Registry
from embodied_tui.errors import RegistryError, UserError, app_message
from embodied_tui.screens.confirm import ConfirmDialog
from embodied_tui.services.aliases import set_alias

CLI_ONLY = ("--db", "--force", "embodied-ai ", "`")


def test_the_hint_is_the_clis_and_the_app_hint_the_apps():
    error = RegistryError("cannot read registry r.json: Permission denied", hint="pass another --db",
                          app_hint="open another registry")
    assert str(error) == "cannot read registry r.json: Permission denied; pass another --db"
    assert app_message(error) == "cannot read registry r.json: Permission denied; open another registry"
    assert error.message == "cannot read registry r.json: Permission denied"
    plain = UserError("no such device")
    assert str(plain) == app_message(plain) == "no such device"  # no hint: the same line for both faces
    again = pickle.loads(pickle.dumps(error))  # raised in a worker process, shown by the app
    assert type(again) is RegistryError and str(again) == str(error) and app_message(again) == app_message(error)
    assert app_message(ValueError("x")) == "x"


@sync
async def test_alias_refusal_in_the_app_names_no_flag_and_the_cli_line_is_unchanged(registry, cli, one_line_error):
    set_alias(registry, "detector@1", "prod")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(80, 24)) as pilot:
        app.registry_screen.table.move_to("detector@1")
        await pilot.pause()
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
        shown = [n.message for n in app._notifications if "aliased" in n.message]
        assert shown, [n.message for n in app._notifications]
        assert "prod -> v1" in shown[-1] and "nothing was removed" in shown[-1]
        assert not [flag for flag in CLI_ONLY if flag in shown[-1]], shown[-1]
        assert "detector@1" in app.registry_screen.table.keys  # refused: still listed
    text = one_line_error(cli("model", "remove", "detector", "--yes", registry=registry.path), "still aliased")
    assert text == ("error: model 'detector' is still aliased (prod -> v1): move the alias with `embodied-ai model "
                    "alias set`, or pass --force to remove the alias with the version; nothing was removed")


@sync
async def test_a_corrupt_registry_is_explained_in_the_app_without_cli_flags(tmp_path, cli, one_line_error):
    path = tmp_path / "registry.json"
    path.write_text("{not json")
    app = EmbodiedApp(registry=Registry(path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        status = static_text(app.registry_screen.query_one("#status", Static), width=400)
        assert "unreadable" in status and str(path) in status and "it was not changed" in status
        assert not [flag for flag in CLI_ONLY if flag in status], status
    text = one_line_error(cli("model", "list", registry=path), "unreadable")
    assert text.endswith("fix or move the file aside (it was not changed), or pass another --db")
