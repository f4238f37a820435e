"""`embodied-ai settings target [DEVICE[/MODE[/PRECISION]] | --clear]`: the registry-wide settings the app reads."""
from __future__ import annotations

import click

from embodied_tui.commands.output import echo, print_json


@click.group("settings")
def settings() -> None:
    """Settings kept in the registry, shared by everyone who opens it (the app's pinned fit target)."""


@settings.command("target")
@click.argument("spec", required=False, metavar="[DEVICE[/MODE[/PRECISION]]]")
@click.option("--clear", is_flag=True, help="Forget the pinned target (the app then shows the fastest of any device).")
@click.option("--json", "as_json", is_flag=True, help="Print the target as JSON ({} when none is pinned).")
@click.pass_context
def target(ctx: click.Context, spec: str | None, clear: bool, as_json: bool) -> None:
    """Show, pin or clear the fit target: the app's registry table shows each model's predicted ms and fps on it.
    DEVICE is any name `hw show` accepts; a MODE or PRECISION left out means the fastest of the device's."""
    from embodied_tui.errors import UserError
    from embodied_tui.services import target as targets

    db = ctx.obj["db"]
    if clear and spec:
        raise UserError("give a target or --clear, not both")
    if clear:
        targets.unpin(db)
    elif spec:
        targets.pin(db, spec)
    pinned = targets.pinned(db)
    if as_json:
        print_json({} if pinned is None else {"device": pinned.device, "mode": pinned.mode,
                                              "precision": pinned.precision})
        return
    if pinned is None:
        echo("target: none (the app shows the fastest of any device)")
        return
    open_parts = [p for p, v in (("mode", pinned.mode), ("precision", pinned.precision)) if v is None]
    echo(f"target: {pinned.spec()}" + (f" (fastest {' and '.join(open_parts)})" if open_parts else ""))


COMMANDS = [settings]
