"""CLI command groups; each module exposes ``COMMANDS``. Shared output helpers live in ``embodied_tui.commands.output``."""
