"""`embodied-ai`: the command-line face. Thin: parse, call a service, print. Each command group lives in
``embodied_tui/commands/<group>.py`` and exposes ``COMMANDS`` (a list of click commands/groups) added here.

Errors a user can act on (``embodied_tui.errors.UserError``) print one line and exit non-zero; never a traceback.
"""
from __future__ import annotations

import sys
import warnings

import click

from embodied_tui.commands import ask, demo, fit, hw, measure, measurement, model, pipeline, query, settings
from embodied_tui.units import safe_text

# command modules, in help order; imported statically so a missing one fails loudly instead of vanishing
_COMMAND_MODULES = (model, demo, hw, fit, pipeline, measure, measurement, ask, query, settings)


def _warning_printer(previous):
    """``warnings.showwarning`` for a command: a registry warning (something skipped, the command goes on) is one
    ``warning:`` line on stderr; other warnings go where they went before."""
    from embodied_tui.data.store import RegistryWarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, RegistryWarning):
            click.echo(f"warning: {safe_text(str(message))}", err=True)
        else:
            previous(message, category, filename, lineno, file, line)
    return show


class _Main(click.Group):
    def invoke(self, ctx):  # one clear line for user errors, whatever the command
        from embodied_tui.errors import UserError

        with warnings.catch_warnings():
            warnings.showwarning = _warning_printer(warnings.showwarning)
            try:
                return super().invoke(ctx)
            except UserError as exc:
                click.echo(f"error: {safe_text(str(exc))}", err=True)
                ctx.exit(exc.exit_code)


@click.group(cls=_Main, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", "db", type=click.Path(), envvar="EMBODIED_AI_DB",  # the registry refuses non-files in one line
              help="Registry file (default: $EMBODIED_AI_DB or the user data dir).")
@click.option("--target", "target", metavar="DEVICE[/MODE[/PRECISION]]",
              help="Open the app with this fit target pinned (kept in the registry): the table shows each model's "
                   "ms and fps there. 'none' forgets it.")
@click.version_option(package_name="embodied-ai")
@click.pass_context
def main(ctx: click.Context, db: str | None, target: str | None) -> None:
    """What your neural network is and where it will run. With no command, opens the app."""
    ctx.ensure_object(dict)
    ctx.obj["db"] = db
    if target is not None and ctx.invoked_subcommand is not None:
        from embodied_tui.errors import UserError

        raise UserError(f"--target pins the app's target: give it without a command (`embodied-ai --target "
                        f"{target}`), or use --hw/--mode/--precision with `{ctx.invoked_subcommand}`")
    if ctx.invoked_subcommand is None:
        from embodied_tui.app import run_app

        if target is not None:
            from embodied_tui.services import target as targets

            if target.strip().lower() == "none":
                targets.unpin(db)
            else:
                targets.pin(db, target)  # checked against the catalog and the registry's devices: one line if wrong
        run_app(db)


def _register_commands() -> None:
    for module in _COMMAND_MODULES:
        for command in module.COMMANDS:
            main.add_command(command)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
