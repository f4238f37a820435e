"""services.columns: the one column layout of every table (numbers never cut, text cut with an ellipsis, columns
abbreviated before dropped, dropped last-ranked first), and the device short names it abbreviates with."""
from __future__ import annotations

import itertools

import pytest

from embodied_tui.data.hardware import load_catalog
from embodied_tui.screens import glyphs
from embodied_tui.services.columns import ALWAYS, WHOLE, Column, cut, is_number, layout, measure, short_names

PAD = 2

# a fit table: device (abbreviable 20 -> 8), mode and precision always shown; numbers ranked; a text column last
FIT = (
    Column("device", "device", 20, rank=ALWAYS, least=6, short=8),
    Column("mode", "mode", 7, rank=ALWAYS, least=4),
    Column("prec", "prec", 4, rank=ALWAYS),
    Column("pred", "pred ms", 7, rank=1, numeric=True),
    Column("fps", "fps", 6, rank=3, numeric=True),
    Column("meas", "meas ms", 7, rank=4, numeric=True),
    Column("bound", "bound", 8, rank=2, least=3),
)


def total(widths: dict[str, int]) -> int:
    return sum(w + PAD for w in widths.values())


@pytest.mark.parametrize("width", range(20, 90))
def test_every_width_keeps_numbers_whole_and_fits(width):
    out = layout(FIT, width, PAD)
    by_key = {c.key: c for c in FIT}
    for key, w in out.widths.items():
        column = by_key[key]
        if column.numeric:
            assert w == column.ideal  # a number is shown whole or not at all
        else:
            assert 1 <= w <= column.ideal
    # device, mode and precision never go
    assert {"device", "mode", "prec"} <= set(out.widths)
    # the three always-shown columns at their floors need 8 + 4 + 4 + 3 x 2 = 22 cells: from there on it fits
    if width >= 8 + 4 + 4 + 3 * PAD:
        assert total(out.widths) <= width
    # hidden headers are exactly the columns not shown, in table order
    assert out.hidden == tuple(c.header for c in FIT if c.key not in out.widths)


def test_everything_shows_whole_when_there_is_room():
    room = sum(c.ideal + PAD for c in FIT)
    out = layout(FIT, room, PAD)
    assert out.widths == {c.key: c.ideal for c in FIT} and not out.hidden and not out.abbreviated
    assert out.hidden_text() == ""


def test_abbreviates_before_it_cuts_or_drops():
    room = sum(c.ideal + PAD for c in FIT)
    saved = 20 - 8  # the device column's ideal minus its short width
    out = layout(FIT, room - saved, PAD)
    assert out.abbreviated == {"device"} and out.widths["device"] == 8 and not out.hidden
    assert all(out.widths[c.key] == c.ideal for c in FIT if c.key != "device")


def test_drops_in_rank_order_last_ranked_first():
    room = sum(c.ideal + PAD for c in FIT)
    hidden_sequence = []
    for width in range(room, 10, -1):
        for header in layout(FIT, width, PAD).hidden:
            if header not in hidden_sequence:
                hidden_sequence.append(header)
    # meas (rank 4), fps (3), bound (2), pred (1): largest rank first
    assert hidden_sequence == ["meas ms", "fps", "bound", "pred ms"]
    narrow = layout(FIT, 40, PAD)
    assert narrow.hidden_text() == f"hidden: {', '.join(narrow.hidden)} — widen the terminal"
    assert narrow.hidden_text("-").endswith("- widen the terminal")


def test_a_column_is_cut_or_hidden_before_a_more_important_one_is_cut():
    cols = (Column("name", "name", 30, rank=ALWAYS, least=10), Column("n", "n", 12, rank=1, numeric=True),
            Column("tags", "tags", 20, rank=2, least=6))
    assert layout(cols, 30 + 12 + 20 + 3 * PAD, PAD).widths == {"name": 30, "n": 12, "tags": 20}
    # 8 cells short: the least important text column gives them up
    assert layout(cols, 60, PAD).widths == {"name": 30, "n": 12, "tags": 12}
    # 18 short: tags cut to its least (6) is not enough, so it goes; the name stays whole
    out = layout(cols, 50, PAD)
    assert out.widths == {"name": 30, "n": 12} and out.hidden == ("tags",)
    # 40: the number cannot be cut, so it goes too before the name is touched; the 6 cells left then take tags back
    out = layout(cols, 40, PAD)
    assert out.widths == {"name": 30, "tags": 6} and out.hidden == ("n",)
    # 25: only the always-shown name is left, cut to fit
    assert layout(cols, 25, PAD).widths == {"name": 23}


def test_an_abbreviation_is_undone_when_a_hidden_column_frees_the_room():
    cols = (Column("device", "device", 20, rank=ALWAYS, short=8), Column("note", "note", 30, rank=5, least=WHOLE))
    # 40 cells: abbreviating the device (saves 12) is not enough for the note (30), which goes; the device is then
    # shown in full again
    out = layout(cols, 40, PAD)
    assert out.widths == {"device": 20} and not out.abbreviated and out.hidden == ("note",)


def test_cut_marks_cut_text_and_keeps_what_fits():
    assert cut("resnet18", 8) == "resnet18"
    assert cut("resnet18", 7) == "resnet…" and len(cut("resnet18", 7)) == 7
    assert cut("resnet18", 7, "~") == "resnet~"
    assert cut("画像分類モデル", 5) == "画像…"  # wide characters take two cells each: 2 + 2 + 1
    assert cut("abc", 0) == ""


def test_measure_and_numbers():
    assert measure("fps", ["1", "12,346", "5"]) == 6
    assert measure("pred ms", ["1"]) == 7
    for text in ("1.23", "-4", "12,346", "9.48e-5", "11.7M", "<0.001", "—", "45%"):
        assert is_number(text), text
    for text in ("h200", "memory", "1x3x224x224", "yes"):
        assert not is_number(text), text


def test_short_names_are_unique_catalog_aliases_shorter_than_the_id():
    catalog = load_catalog()
    names = short_names([e.id for e in catalog], {e.id: e.aliases for e in catalog})
    assert set(names) == {e.id for e in catalog}
    assert len(set(names.values())) == len(names)  # unique
    for entry in catalog:
        short = names[entry.id]
        assert short == entry.id or (short in entry.aliases and len(short) < len(entry.id))
        assert " " not in short and "_" not in short
    assert names["nvidia-h200-sxm"] == "h200"  # its aliases: h200, h200-sxm, nvidia_h200_sxm5_141gb_hbm3e
    # an alias that is another device's id is never used
    assert short_names(["a-long-id", "b"], {"a-long-id": ["b"]}) == {"a-long-id": "a-long-id", "b": "b"}


def test_ascii_only_follows_term(monkeypatch):
    monkeypatch.delenv("EMBODIED_AI_ASCII", raising=False)
    for term, expected in (("linux", True), ("xterm-256color", False), ("dumb", True), ("", False)):
        monkeypatch.setenv("TERM", term)
        assert glyphs.ascii_only() is expected
        assert glyphs.ellipsis() == ("~" if expected else "…")
    monkeypatch.setenv("EMBODIED_AI_ASCII", "1")
    monkeypatch.setenv("TERM", "xterm")
    assert glyphs.ascii_only()


def test_layout_never_returns_more_than_one_width_per_column():
    for width, rank_perm in itertools.product((30, 50), itertools.permutations((1, 2, 3))):
        cols = [Column(f"c{i}", f"c{i}", 10, rank=r, numeric=i == 0) for i, r in enumerate(rank_perm)]
        out = layout(cols, width, PAD)
        assert total(out.widths) <= width
        assert list(out.widths) == [c.key for c in cols if c.key in out.widths]  # table order kept
