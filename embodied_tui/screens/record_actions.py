"""Doing things to the model under the cursor, from the registry table and the detail screen alike.

``e`` edits its tags and description (``screens.edit``), ``d`` removes it or one version after a confirmation
(``services.models.remove``, the CLI's ``model remove``: its refusals, such as a version an alias points at, are shown
as they are), ``t`` opens the "Set target" choices of the palette, ``y`` copies its reference (``NAME@VERSION``, which
every command and filter takes) and ``Y`` its row (tab-separated, the columns of the CSV export:
``services.export.records_table``) to the clipboard; on the census tree they copy the node's dotted path and its row
(path, type, params, MACs, output shape). Copies go through Textual's ``App.copy_to_clipboard``, an OSC 52
escape sequence, so they reach the local clipboard over SSH where the terminal allows it (tmux needs
``set -g set-clipboard on``). Every action says its result in one line.

A screen using ``RecordActions`` lists ``record_keys(prefix)`` in its BINDINGS and has ``current_record()``;
``records_changed(select)`` is told after a change (the registry table reloads; the detail screen re-reads its
record or closes when it was removed).
"""
from __future__ import annotations

from textual.binding import Binding

from embodied_tui import units as fmt
from embodied_tui.data.records import ModelRecord
from embodied_tui.errors import UserError, app_message


def record_keys(prefix: str) -> list[Binding]:
    return [
        Binding("e", "edit_record", "Edit tags/description", show=False, id=f"{prefix}.edit"),
        Binding("d", "remove_record", "Remove (asks first)", show=False, id=f"{prefix}.remove"),
        Binding("t", "set_target", "Set target", show=False, id=f"{prefix}.target"),
        Binding("y", "copy_reference", "Copy NAME@VERSION", show=False, id=f"{prefix}.copy"),
        Binding("Y", "copy_row", "Copy row (tab-separated)", show=False, id=f"{prefix}.copy_row"),
    ]


class RecordActions:
    """Mixin for a Screen: the actions of ``record_keys``."""

    def current_record(self) -> ModelRecord | None:  # pragma: no cover - the screen's own
        raise NotImplementedError

    def records_changed(self, select: ModelRecord | None = None, removed: ModelRecord | None = None) -> None:
        """After an edit (``select``: the record to keep the cursor on) or a removal (``removed``)."""

    def target_cells(self) -> dict:
        """Row key -> the target cell the table shows (copied with ``Y``); none by default."""
        return {}

    def focused_item(self) -> tuple[str, str, tuple] | None:
        """What ``y``/``Y`` copy instead of the model when the focused widget has an item under its cursor (the
        detail screen's census node): (its name in the message, its value, its row's cells). None: the model."""
        return None

    def _record_or_say(self) -> ModelRecord | None:
        record = self.current_record()
        if record is None:
            self.notify("no model here: register one with r", severity="warning", markup=False)
        return record

    # ---------------------------------------------------------------------------------------- edit
    def action_edit_record(self) -> None:
        from embodied_tui.screens.edit import EditDialog

        record = self._record_or_say()
        if record is None:
            return
        try:
            versions = len(self.app.registry.versions(record.name)) or 1
        except UserError as exc:
            self.notify(fmt.safe_text(app_message(exc)), severity="error", markup=False)
            return

        def done(changed: list[ModelRecord] | None) -> None:
            if changed:
                mine = [r for r in changed if r.version == record.version]
                self.records_changed(select=mine[0] if mine else changed[-1])

        self.app.push_screen(EditDialog(record, versions), done)

    # ---------------------------------------------------------------------------------------- remove
    def action_remove_record(self) -> None:
        from embodied_tui.screens.confirm import ConfirmDialog

        record = self._record_or_say()
        if record is None:
            return
        try:
            versions = self.app.registry.versions(record.name) or [record]
        except UserError as exc:
            self.notify(fmt.safe_text(app_message(exc)), severity="error", markup=False)
            return
        name, where = record.name, self.app.registry.path
        if len(versions) > 1:
            question = (f"remove {name} from {where}? v{record.version} only, or all {len(versions)} versions "
                        f"(v{', v'.join(str(r.version) for r in versions)})")
            choices = [("v", f"remove v{record.version}", "version"), ("a", f"remove all {len(versions)}", "all")]
        else:
            question = f"remove {name} v{record.version} from {where}?"
            choices = [("y", "remove", "all")]

        def answered(answer: str | None) -> None:
            if answer is None:
                self.notify(fmt.safe_text(f"kept {name}: nothing removed"), markup=False)
                return
            self._remove(record, answer == "version")

        self.app.push_screen(ConfirmDialog(question, choices, title="Remove"), answered)

    def _remove(self, record: ModelRecord, one_version: bool) -> None:
        from embodied_tui.services.models import remove

        try:
            count = remove(record.name, record.version if one_version else None, self.app.registry)
        except UserError as exc:  # a refusal (an alias points at it, it is gone already): its own line
            self.notify(fmt.safe_text(app_message(exc)), severity="error", markup=False)
            return
        what = f"v{record.version} of {record.name}" if one_version else \
            f"{record.name} ({count} version{'s' * (count != 1)})"
        self.notify(fmt.safe_text(f"removed {what}"), markup=False)
        self.records_changed(removed=record)

    # ---------------------------------------------------------------------------------------- target
    def action_set_target(self) -> None:
        from textual.command import CommandPalette

        from embodied_tui.screens.palette import SetTargetProvider

        if not CommandPalette.is_open(self.app):
            self.app.push_screen(CommandPalette(providers=[SetTargetProvider],
                                                placeholder="Set target: device/mode/precision..."))

    # ---------------------------------------------------------------------------------------- copy
    def action_copy_reference(self) -> None:
        item = self.focused_item()
        if item is not None:
            self._copy(item[1], f"{item[0]} {item[1]}")
            return
        record = self._record_or_say()
        if record is not None:
            self._copy(f"{record.name}@{record.version}", f"{record.name}@{record.version}")

    def action_copy_row(self) -> None:
        from embodied_tui.services.export import RECORD_HEADERS, records_table, row_text

        item = self.focused_item()
        if item is not None:
            self._copy(row_text(item[2]), f"the row of {item[0]} {item[1]} ({len(item[2])} tab-separated cells)")
            return
        record = self._record_or_say()
        if record is not None:
            row = records_table([record], self.target_cells()).rows[0]
            self._copy(row_text(row), f"the row of {record.name}@{record.version} ({len(RECORD_HEADERS)} "
                                      f"tab-separated cells, the CSV export's columns)")

    def _copy(self, text: str, what: str) -> None:
        self.app.copy_to_clipboard(text)
        self.notify(fmt.safe_text(f"copied {what}"), markup=False)
