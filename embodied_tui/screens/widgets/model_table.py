"""The registry table: a virtual table of model records that paints only the rows on screen.

Textual's DataTable measures every cell of every row (about 5 s for 10,000 records x 11 columns); this table keeps
one tuple of strings per row, sizes columns from string lengths and renders visible lines only (the Line API), so
10,000 records paint in a fraction of that. The header stays put while rows scroll; h/l (and left/right) scroll sideways.

Keys: up/down (j/k hidden), pageup/pagedown, home/end (g/G hidden), enter posts ``ModelTable.Selected``.

The target columns ("ms @ target", "fps", "note": ``services.target``) are filled lazily: painting a row whose cell
is unknown posts ``ModelTable.FitsWanted`` (at most one until the owner calls ``fits_wanted_seen``); the owner computes
the rows of ``visible_keys()`` and sets them with ``set_best_fit``. Until then the cells read "—".

Columns are sized to the widget's width by ``services.columns.layout``: numbers (params, GMACs, input shape, ms, fps)
are shown whole or their column is hidden; text is cut with an ellipsis ('~' on an ASCII terminal, ``glyphs``);
``hidden_text()`` names the hidden columns and ``ModelTable.LayoutChanged`` is posted when they change (a resize).
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.cells import cell_len
from rich.segment import Segment
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from embodied_tui import units as fmt
from embodied_tui.data.records import ModelRecord
from embodied_tui.screens.glyphs import ascii_only, ellipsis, shown
from embodied_tui.services.columns import ALWAYS, WHOLE, Column, Layout, cut, layout

if TYPE_CHECKING:
    from embodied_tui.services.target import TargetCell

# (key, header); the key names the column
COLUMNS = (
    ("mark", " "),
    ("name", "name"),
    ("version", "v"),
    ("family", "family"),
    ("type", "type"),
    ("params", "params"),
    ("gmacs", "GMACs"),
    ("input", "input"),
    ("fit", "ms"),
    ("fps", "fps"),
    ("note", "on"),
    ("format", "format"),
    ("tags", "tags"),
)
COLUMN_INDEX = {key: i for i, (key, _) in enumerate(COLUMNS)}
RIGHT_ALIGNED = frozenset({"version", "params", "gmacs", "fit", "fps"})
MARK = "*"
NAME_WIDTH = 28
TAGS_WIDTH = 20
NOTE_WIDTH = 40
PADDING = 1  # cells each side of a column
# column -> (rank: dropped largest first, ALWAYS never; numeric: never cut; least: narrowest a text column is cut to)
RANKS: dict[str, tuple[int, bool, int]] = {
    "mark": (ALWAYS, True, 0), "name": (ALWAYS, False, 16), "version": (7, True, 0), "family": (5, False, 6),
    "type": (8, False, WHOLE), "params": (2, True, 0), "gmacs": (3, True, 0), "input": (6, True, 0), "fit": (1, True, 0),
    "fps": (4, True, 0), "note": (9, False, 8), "format": (10, False, WHOLE), "tags": (11, False, 6),
}


def record_key(record: ModelRecord) -> str:
    """The row key of a record: one row per (name, version)."""
    return f"{record.name}@{record.version}"


def text_widths(record: ModelRecord) -> tuple[int, ...]:
    """The lengths of a record's own strings, as shown (escaped), that size the columns: name, version (the number),
    family, type, format, tags, input (unclipped). Cells are formatted only when painted; these are what sizing
    needs."""
    arch = record.architecture
    safe = fmt.safe_text
    return (len(safe(record.name)), record.version, len(safe(arch.family)), len(safe(arch.type)),
            len(safe(record.format)), len(fmt.tags(record.tags)) if record.tags else 0,
            len(fmt.shapes(record.input_shapes, record.input_symbols)))


def target_cells(cell: TargetCell | None) -> tuple[str, str, str]:
    """The ms, fps and note cells of a target cell ("—" while unknown)."""
    if cell is None:
        return fmt.NA, fmt.NA, ""
    return fmt.ms(cell.ms), fmt.significant(cell.fps), fmt.safe_text(cell.note)


def row_cells(record: ModelRecord, marked: bool, best_fit: TargetCell | None = None) -> tuple[str, ...]:
    """The cells of a record's row, before the layout cuts text to its column: registry text escaped
    (``units.safe_text``); the table paints them as plain segments, so no markup is read either."""
    arch = record.architecture
    safe = fmt.safe_text
    mark = ellipsis()
    return (
        MARK if marked else " ",
        cut(safe(record.name), NAME_WIDTH, mark),
        str(record.version),
        safe(arch.family),
        safe(arch.type),
        fmt.count(record.params),
        fmt.gmacs(record.macs),
        fmt.shapes(record.input_shapes, record.input_symbols),
        *target_cells(best_fit),
        safe(record.format),
        cut(fmt.tags(record.tags), TAGS_WIDTH, mark),
    )


class ModelTable(ScrollView, can_focus=True):
    """Rows are registry records, keyed ``name@version``."""

    HELP_TITLE = "Model table"
    BINDINGS = [
        Binding("enter", "select", "Open", show=True),
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first", "First row", show=False),
        Binding("end,G", "last", "Last row", show=False),
        Binding("left,h", "sideways(-1)", "Scroll left", show=False),
        Binding("right,l", "sideways(1)", "Scroll right", show=False),
    ]
    COMPONENT_CLASSES = {"model-table--header", "model-table--cursor"}
    DEFAULT_CSS = """
    ModelTable {
        background: $surface;
    }
    ModelTable > .model-table--header {
        text-style: bold;
        background: $panel;
    }
    ModelTable > .model-table--cursor {
        text-style: bold reverse;
    }
    ModelTable:blur > .model-table--cursor {
        text-style: reverse;
    }
    """

    cursor_row: reactive[int] = reactive(0, always_update=True)

    class Selected(Message):
        """Enter on a row."""

        def __init__(self, table: "ModelTable", record: ModelRecord) -> None:
            super().__init__()
            self.table = table
            self.record = record

        @property
        def control(self) -> "ModelTable":
            return self.table

    class LayoutChanged(Message):
        """What the layout leaves out changed (hidden columns after a resize or new rows, or the target an abbreviated
        "ms" header stands for): the owner may say so in its status line."""

        def __init__(self, table: "ModelTable") -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> "ModelTable":
            return self.table

    class FitsWanted(Message):
        """A row without a best fit was painted: the owner may compute those of ``visible_keys()``."""

        def __init__(self, table: "ModelTable") -> None:
            super().__init__()
            self.table = table

        @property
        def control(self) -> "ModelTable":
            return self.table

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.records: dict[str, ModelRecord] = {}
        self.keys: list[str] = []  # row order
        self._rows: list[ModelRecord] = []
        self._cells: dict[int, list[str]] = {}  # row -> cells, made when first painted
        self._marked: set[str] = set()
        self._best_fit: dict[str, TargetCell] = {}
        self._ideal: dict[str, int] = {key: cell_len(header) for key, header in COLUMNS}
        self._headers: dict[str, str] = dict(COLUMNS)
        self._layout: Layout = Layout(widths=dict(self._ideal))
        # What a row needs of its record, made once per record content (a filter shows the same records again and
        # again; a reload of the registry reads equal records as new objects): key -> (record, key, text_widths),
        # reused while the stored record equals the row's.
        self._known: dict[str, tuple[ModelRecord, str, tuple[int, ...]]] = {}
        self._known_ids: dict[int, tuple[ModelRecord, str, tuple[int, ...]]] = {}  # id(record) -> its _known entry
        self._index: dict[str, int] = {}
        self._fits_wanted_posted = False

    # ------------------------------------------------------------------------------------------ data
    @property
    def row_count(self) -> int:
        return len(self.keys)

    def show(self, records: Iterable[ModelRecord], marked: set[str], best_fit: dict[str, TargetCell] | None = None,
             keep_cursor: bool = True) -> None:
        """Replace the rows, keeping the cursor on the same record where it is still shown."""
        current = self.current_key() if keep_cursor else None
        self._rows = list(records)
        entries = self._entries(self._rows)
        self.keys = [entry[1] for entry in entries]
        self.records = dict(zip(self.keys, self._rows))
        self._index = {key: i for i, key in enumerate(self.keys)}
        self._marked = set(marked)
        self._best_fit = dict(best_fit or {})
        self._cells = {}
        self._ideal = self._measure([entry[2] for entry in entries])
        self._relayout()
        row = self._index.get(current, 0) if current is not None else 0
        self.cursor_row = min(row, max(len(self.keys) - 1, 0))
        self.refresh()

    def _entries(self, rows: list[ModelRecord]) -> list[tuple[ModelRecord, str, tuple[int, ...]]]:
        """(record, key, text_widths) of each row, made for records not seen before."""
        known = self._known
        by_id = self._known_ids  # the same record objects again (a filter, a reload that kept them): no key made
        entries = []
        for r in rows:
            entry = by_id.get(id(r))
            if entry is not None and entry[0] is r:
                entries.append(entry)
                continue
            key = record_key(r)
            entry = known.get(key)
            if entry is None or (entry[0] is not r and entry[0] != r):
                entry = known[key] = (r, key, text_widths(r))
            by_id[id(r)] = entry
            entries.append(entry)
        if len(by_id) > 2 * len(known):  # ids of records no longer held: start again
            self._known_ids = {id(e[0]): e for e in known.values()}
        return entries

    def _measure(self, measured: list[tuple[int, ...]]) -> dict[str, int]:
        """Ideal column widths from the rows' ``text_widths`` (cells are formatted only when painted): counts format
        to at most 5 cells ('999k', '1.23M', '1000k') and GMACs to at most 6 ('<0.001'); names and tags stop at their
        cap."""
        columns = zip(*measured) if measured else [()] * 7
        name, version, family, kind, form, tags, inputs = (max(c, default=0) for c in columns)
        found = {
            "mark": 1, "name": min(name, NAME_WIDTH), "version": len(str(version)), "family": family, "type": kind,
            "params": 5, "gmacs": 6, "input": inputs, "format": form, "tags": min(tags, TAGS_WIDTH),
            **self._target_widths(),
        }
        return {key: max(cell_len(self._headers[key]) if key != "fit" else 2, found[key]) for key, _ in COLUMNS}

    def _target_widths(self) -> dict[str, int]:
        """The widest ms, fps and note cells of the rows shown (not of every one known: the width must not depend on
        which fits happened to be computed before a filter hid their rows)."""
        best = self._best_fit
        cells = [target_cells(best[k]) for k in self.keys if k in best] or [target_cells(None)]
        ms, fps, note = (max(cell_len(c) for c in column) for column in zip(*cells))
        return {"fit": ms, "fps": fps, "note": min(note, NOTE_WIDTH)}

    def _relayout(self) -> None:
        """Lay the columns out in the widget's width (``services.columns.layout``); say so when the hidden ones
        change. The "ms @ target" header abbreviates to "ms" (its cells are never cut): ``layout_note`` then names
        the target."""
        available = self.scrollable_content_region.width or self.size.width or 80
        columns = []
        for key, _ in COLUMNS:
            rank, numeric, least = RANKS[key]
            header = self._headers[key]
            ideal = self._ideal[key]
            short = None
            if key == "fit" and cell_len(header) > ideal:
                ideal, short = cell_len(header), ideal
            columns.append(Column(key, header, ideal, rank=rank, numeric=numeric, least=least, short=short))
        old = self.layout_note()
        self._layout = layout(columns, available, 2 * PADDING)
        self.virtual_size = Size(self._layout.total(2 * PADDING), len(self._rows) + 1)
        if self.layout_note() != old:  # hidden columns, or the target an abbreviated "ms" header stands for
            self.post_message(self.LayoutChanged(self))
        self.refresh()

    @property
    def column_layout(self) -> Layout:
        return self._layout

    def hidden_text(self) -> str:
        """'hidden: fps, tags — widen the terminal', or '' when every column shows."""
        return self._layout.hidden_text("-" if ascii_only() else "—")

    def layout_note(self) -> str:
        """What the narrow layout leaves out, for the status line: the target of an "ms" header shortened from
        "ms @ TARGET", and the hidden columns."""
        parts = [self._headers["fit"]] if "fit" in self._layout.abbreviated else []
        return " | ".join(parts + ([self.hidden_text()] if self._layout.hidden else []))

    def _header(self, key: str) -> str:
        return "ms" if key == "fit" and key in self._layout.abbreviated else self._headers[key]

    def set_target_header(self, ms_header: str, note_header: str) -> None:
        """The headers of the target's ms column ('ms @ orin-nano-8gb/15W/int8') and of its note column."""
        self._headers["fit"] = ms_header
        self._headers["note"] = note_header
        self._ideal["note"] = max(self._ideal["note"], cell_len(note_header))
        self._relayout()

    def _row_cells(self, row: int) -> list[str]:
        cells = self._cells.get(row)
        if cells is None:
            key = self.keys[row]
            cells = self._cells[row] = list(row_cells(self._rows[row], key in self._marked,
                                                      self._best_fit.get(key)))
        return cells

    def set_best_fit(self, key: str, cell: TargetCell) -> None:
        """Fill the target cells of ``key`` (kept when the rows are replaced only if the owner passes them again)."""
        self._best_fit[key] = cell
        row = self._index.get(key)
        if row is None:
            return
        self._cells.pop(row, None)
        wider = {k: w for k, w in zip(("fit", "fps", "note"), (cell_len(c) for c in target_cells(cell)))
                 if min(w, NOTE_WIDTH) > self._ideal[k]}
        if wider:
            self._ideal.update({k: min(w, NOTE_WIDTH) for k, w in wider.items()})
            self._relayout()
        self.refresh()

    def forget_best_fits(self) -> None:
        """Drop every target cell (the target changed): the rows on screen ask again when painted."""
        self._best_fit = {}
        self._cells = {}
        self._ideal.update(self._target_widths())
        self._relayout()

    def has_best_fit(self, key: str) -> bool:
        return key in self._best_fit

    def visible_keys(self) -> list[str]:
        """Keys of the rows on screen now, top to bottom."""
        top = round(self.scroll_y)
        return self.keys[top:top + self._page]

    def fits_wanted_seen(self) -> None:
        """The owner handled ``FitsWanted``: the next painted row without a best fit may post it again."""
        self._fits_wanted_posted = False

    def cell(self, key: str, column: str) -> str:
        return self._row_cells(self._index[key])[COLUMN_INDEX[column]]

    def set_mark(self, key: str, marked: bool) -> None:
        row = self._index.get(key)
        if row is None:
            return
        if marked:
            self._marked.add(key)
        else:
            self._marked.discard(key)
        self._cells.pop(row, None)
        self.refresh()

    def current_key(self) -> str | None:
        if not self.keys:
            return None
        return self.keys[min(self.cursor_row, len(self.keys) - 1)]

    def current_record(self) -> ModelRecord | None:
        key = self.current_key()
        return None if key is None else self.records.get(key)

    def move_to(self, key: str) -> None:
        if key in self._index:
            self.cursor_row = self._index[key]

    # ------------------------------------------------------------------------------------------ cursor
    @property
    def _page(self) -> int:
        return max(self.scrollable_content_region.height - 1, 1)  # rows under the header

    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self.keys) - 1)) if self.keys else 0

    def watch_cursor_row(self, row: int) -> None:
        top = round(self.scroll_y)
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + self._page:
            self.scroll_to(y=row - self._page + 1, animate=False)
        self.refresh()

    def action_cursor(self, step: int) -> None:
        self.cursor_row += step

    def action_page(self, step: int) -> None:
        self.cursor_row += step * self._page

    def action_first(self) -> None:
        self.cursor_row = 0

    def action_last(self) -> None:
        self.cursor_row = len(self.keys) - 1

    def action_sideways(self, step: int) -> None:
        self.scroll_to(x=self.scroll_x + step * 8, animate=False)

    def action_select(self) -> None:
        record = self.current_record()
        if record is not None:
            self.post_message(self.Selected(self, record))

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.cursor_row = round(self.scroll_y) + event.y - 1
            if event.chain == 2:
                self.action_select()

    def on_resize(self) -> None:
        self._relayout()
        self.watch_cursor_row(self.cursor_row)

    # ------------------------------------------------------------------------------------------ painting
    def _line_text(self, cells: list[str]) -> str:
        """A row (or the header) with the shown columns at their widths; text wider than its column is cut with an
        ellipsis (the layout never makes a numeric column narrower than its cells)."""
        parts = []
        widths = self._layout.widths
        mark = ellipsis()
        for (key, _), text in zip(COLUMNS, cells):
            width = widths.get(key)
            if width is None:
                continue
            text = cut(text, width, mark)
            pad = width - cell_len(text)
            body = " " * pad + text if key in RIGHT_ALIGNED else text + " " * pad
            parts.append(" " * PADDING + body + " " * PADDING)
        return shown("".join(parts))  # '—' (unknown) as '-' on an ASCII console

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x = round(self.scroll_x)
        base = self.rich_style
        if y == 0:
            text = self._line_text([self._header(key) for key, _ in COLUMNS])
            style = base + self.get_component_rich_style("model-table--header")
        else:
            row = round(self.scroll_y) + y - 1
            if row >= len(self._rows):
                return Strip.blank(width, base)
            text = self._line_text(self._row_cells(row))
            if not self._fits_wanted_posted and self.keys[row] not in self._best_fit:
                self._fits_wanted_posted = True
                self.post_message(self.FitsWanted(self))
            style = base
            if row == self.cursor_row:
                style = base + self.get_component_rich_style("model-table--cursor")
        strip = Strip([Segment(text, style)], cell_len(text))
        return strip.crop_extend(scroll_x, scroll_x + width, style)
