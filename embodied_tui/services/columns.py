"""Column layout for every table of the app: which columns show at a terminal width, how wide, which are hidden.

One pure function, ``layout(columns, width)``, serves the registry table, the fit table, the card's fit table and the
ask answer table. Its rules:

- A **numeric** column is never cut: it shows at its full width (the widest of its cells and its header) or it is
  hidden. Numbers are therefore never clipped. (The one exception is a header longer than its numbers that the
  caller gives a ``short`` form: the registry's "ms @ TARGET" becomes "ms", and the status line names the target.)
- A **text** column may be cut down to its ``least`` width; cut text ends in an ellipsis (``cut``: '…', or '~' on an
  ASCII terminal).
- A column with a **short** width (every cell has an abbreviation, e.g. a device id's shortest catalog alias) is
  abbreviated before anything is cut or dropped.
- Then, least important first (largest ``rank``), a column is cut to its least width and, if that is not enough,
  hidden: a more important column is never cut while a less important one is shown. A ``rank`` of ``ALWAYS`` marks
  a column that is never hidden (a fit row's device, mode and precision; a model's name).
- Room left over afterwards shows hidden columns again (most important first) and undoes abbreviations.

Widths are in terminal cells (``rich.cells.cell_len``), without the padding between columns; ``padding`` is the number
of cells each column takes beside its text (the gaps), counted in the width available.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from rich.cells import cell_len

ALWAYS = 0  # rank of a column that is never dropped


@dataclass(frozen=True)
class Column:
    """One column to lay out. ``ideal``: the widest cell or the header, whichever is wider; ``least``: the narrowest a
    text column may be cut to (numeric columns: ignored, they are never cut); ``short``: the width when every cell is
    abbreviated (None: no abbreviation); ``rank``: drop order, larger first, ``ALWAYS`` never. A numeric column whose
    header is wider than its cells may set ``least`` to its widest cell: the header is then cut, never a cell."""

    key: str
    header: str
    ideal: int
    rank: int = 1
    numeric: bool = False
    least: int = 0
    short: int | None = None


@dataclass(frozen=True)
class Layout:
    """The outcome: ``widths`` of the shown columns (key -> cells, in the columns' order), the headers of the hidden
    ones, and the keys of the columns that show abbreviated cells."""

    widths: dict[str, int]
    hidden: tuple[str, ...] = ()
    abbreviated: frozenset[str] = field(default_factory=frozenset)

    def shows(self, key: str) -> bool:
        return key in self.widths

    def total(self, padding: int) -> int:
        return sum(w + padding for w in self.widths.values())

    def hidden_text(self, dash: str = "—") -> str:
        """'hidden: fps, meas ms — widen the terminal' (empty when nothing is hidden); ``dash`` '-' for ASCII."""
        return f"hidden: {', '.join(self.hidden)} {dash} widen the terminal" if self.hidden else ""


def measure(header: str, cells: Iterable[str]) -> int:
    """The width a column needs to show its header and every cell whole."""
    return max([cell_len(header), *(cell_len(c) for c in cells)])


def _floor(column: Column) -> int:
    """The narrowest a shown column can be: a numeric one its full width, or its ``least`` when that is set (the width
    of its widest cell: then only a long header is cut); a text one its ``least`` (at least 1)."""
    if column.numeric:
        return min(column.least, column.ideal) if column.least else column.ideal
    start = column.short if column.short is not None else column.ideal
    return max(1, min(column.least or start, start))


def layout(columns: Sequence[Column], width: int, padding: int = 2) -> Layout:
    """Which of ``columns`` show in ``width`` cells and how wide. Columns with a short form (device ids, a long
    header) are abbreviated first, least important first, as far as needed; then, least important first (largest
    ``rank``), each column is cut to its floor and, if that is not enough, hidden, so a more important column is never
    cut while a less important one shows. Columns ranked ``ALWAYS`` are only cut, and shown even when they alone do
    not fit (the table then scrolls sideways). Hidden columns that the room freed later fits are shown again, most
    important first, and abbreviations the room no longer needs are undone."""
    widths = {c.key: c.ideal for c in columns}
    short: set[str] = set()

    def over() -> int:
        return sum(widths.values()) + padding * len(widths) - width

    def abbreviate(c: Column) -> None:
        if c.short is not None and c.short < widths[c.key]:
            widths[c.key] = c.short
            short.add(c.key)

    by_rank = sorted(columns, key=lambda c: (c.rank == ALWAYS, -c.rank))  # least important first, ALWAYS last
    for c in by_rank:
        if over() > 0:
            abbreviate(c)
    dropped: list[Column] = []
    for c in by_rank:
        if over() <= 0:
            break
        widths[c.key] = max(_floor(c), widths[c.key] - max(over(), 0))
        if over() > 0 and c.rank != ALWAYS:
            del widths[c.key]
            short.discard(c.key)
            dropped.append(c)
    for c in sorted(dropped, key=lambda c: c.rank):  # room freed by a later drop or abbreviation
        room = -over() - padding
        need = c.short if c.short is not None else _floor(c)
        if room >= need:
            widths[c.key] = min(c.ideal, room)
            if widths[c.key] < c.ideal and c.short is not None and widths[c.key] <= c.short:
                widths[c.key] = c.short
                short.add(c.key)
            dropped.remove(c)
    for c in sorted((c for c in columns if c.key in short), key=lambda c: (c.rank != ALWAYS, c.rank)):
        if over() + c.ideal - widths[c.key] <= 0:
            widths[c.key] = c.ideal
            short.discard(c.key)
    hidden = tuple(c.header.strip() or c.key for c in columns if c in dropped)
    return Layout(widths={c.key: widths[c.key] for c in columns if c.key in widths}, hidden=hidden,
                  abbreviated=frozenset(short))


def cut(text: str, width: int, ellipsis: str = "…") -> str:
    """``text`` in at most ``width`` cells: whole if it fits, else cut with ``ellipsis`` as its last cell."""
    if cell_len(text) <= width:
        return text
    if width <= 0:
        return ""
    out, used, room = [], 0, width - cell_len(ellipsis)
    for ch in text:
        w = cell_len(ch)
        if used + w > room:
            break
        out.append(ch)
        used += w
    return "".join(out) + ellipsis if room >= 0 else ellipsis[:width]


def is_number(text: str) -> bool:
    """Whether a cell shows a number (``1.23``, ``-4``, ``12,346``, ``9.48e-5``, ``11.7M``, ``<0.001``): such a cell
    is never cut. The placeholders '—' and '-' count as numbers too (a numeric column's missing value)."""
    t = text.strip()
    if t in ("", "—", "-", "?"):
        return True
    t = t.lstrip("<>~").replace(",", "")
    if t and t[-1] in "kMGT%":
        t = t[:-1]
    try:
        float(t)
    except ValueError:
        return False
    return True


def short_names(ids: Iterable[str], aliases: dict[str, list[str]], slug: str = r"^[a-z0-9][a-z0-9.-]*$") -> dict[str, str]:
    """Device id -> its short name: the shortest alias that is a slug (lowercase letters, digits, '-' and '.') and
    shorter than the id, preferring one whose letters appear in the id as they are ('h200' for nvidia-h200-sxm,
    'agx-thor' rather than 't5000' for jetson-agx-thor); else the id. The catalog keeps aliases unique across
    devices, so short names are unique too (checked: an alias that is another id, or already taken, is not used)."""
    import re

    pattern = re.compile(slug)
    ids = list(ids)
    taken = {i.casefold() for i in ids}
    out: dict[str, str] = {}
    for device in ids:
        candidates = sorted((a for a in aliases.get(device, []) if pattern.match(a) and a.casefold() not in taken),
                            key=lambda a: (a.replace("-", "") not in device.replace("-", ""), len(a), a))
        name = candidates[0] if candidates and len(candidates[0]) < len(device) else device
        out[device] = name if name not in out.values() else device
    return out


@dataclass(frozen=True)
class ColumnDef:
    """A column of a table whose cells are known (fit rows, answers, the card): ``short`` maps a cell to its
    abbreviation (a device id to its short name), applied to the whole column or not at all. ``least``: the narrowest
    a text column is cut to (``WHOLE``: shown whole or hidden)."""

    key: str
    header: str
    rank: int = 1
    numeric: bool = False
    least: int = 8
    short: dict[str, str] | None = None


WHOLE = 1_000  # a ``least`` that keeps a text column whole (short words are no use cut: 'memory' -> 'me…')


def plan(defs: Sequence[ColumnDef], rows: Sequence[Sequence[str]], width: int, padding: int = 2) -> Layout:
    """``layout`` of a table with these column definitions and cells (every row has one cell per definition). A numeric
    column is shown whole, header included (its unit), or hidden."""
    columns = []
    for i, d in enumerate(defs):
        cells = [r[i] for r in rows]
        ideal = measure(d.header, cells)
        short = None if d.short is None else measure(d.header, (d.short.get(c, c) for c in cells))
        columns.append(Column(d.key, d.header, ideal, rank=d.rank, numeric=d.numeric, least=0 if d.numeric else d.least,
                              short=short if short is not None and short < ideal else None))
    return layout(columns, width, padding)


def laid_out(defs: Sequence[ColumnDef], row: Sequence[str], out: Layout, ellipsis: str = "…") -> list[str]:
    """The cells of ``row`` that ``out`` shows, abbreviated where it abbreviates their column and cut to its width
    (numeric cells always fit: ``layout`` never makes their column narrower)."""
    cells = []
    for d, text in zip(defs, row):
        width = out.widths.get(d.key)
        if width is None:
            continue
        if d.key in out.abbreviated and d.short is not None:
            text = d.short.get(text, text)
        cells.append(cut(text, width, ellipsis))
    return cells


def headers(defs: Sequence[ColumnDef], out: Layout, ellipsis: str = "…") -> list[str]:
    """The headers of the shown columns, cut to their widths."""
    return [cut(d.header, out.widths[d.key], ellipsis) for d in defs if d.key in out.widths]


def answer_columns(names: Sequence[str], rows: Sequence[Sequence[str]],
                   short: dict[str, str] | None = None) -> list[ColumnDef]:
    """Column definitions of a query answer (one column per RETURN item, cells already formatted): the first column
    (what the rows are about) always shows; a column whose every cell is a number (``is_number``) is never cut, and
    the numbers (what a question asks for: ms, params) give way only after every text column; among each kind the
    rightmost gives way first. A column whose every cell is a key of ``short`` (device ids -> their short names) may
    be abbreviated with it."""
    numeric = [bool(rows) and all(is_number(r[i]) for r in rows) for i in range(len(names))]
    return [ColumnDef(f"c{i}", name, rank=ALWAYS if i == 0 else i + (0 if numeric[i] else len(names)),
                      numeric=numeric[i], least=8,
                      short=short if short and rows and all(r[i] in short for r in rows) else None)
            for i, name in enumerate(names)]
