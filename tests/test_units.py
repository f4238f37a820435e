"""units.py, the one home of display formatting: each kind of value has one function, and the faces (commands,
screens, the model card) format through it rather than with helpers of their own."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from embodied_tui import units as fmt

PACKAGE = Path(fmt.__file__).parent


def test_counts():
    assert fmt.count(11689512) == "11.7M" and fmt.count(0) == "0" and fmt.count(None) == fmt.NA
    assert fmt.count(999) == "999" and fmt.count(1000) == "1.00k" and fmt.count(2.5e12) == "2.50T"
    assert fmt.exact(11689512) == "11,689,512" and fmt.exact(12345.6) == "12,346" and fmt.exact(None) == fmt.NA
    assert fmt.exact(None, missing="-") == "-"
    assert fmt.gmacs(1818554368) == "1.82" and fmt.gmacs(10**5) == "<0.001" and fmt.gmacs(None) == fmt.NA


@pytest.mark.parametrize("x, plain, text", [
    (0.141891, False, "0.142"), (2.00253, False, "2.00"), (1234.5, False, "1234"), (0.0000948, False, "9.48e-5"),
    (0.0000948, True, "0.0000948"), (0.0, False, "0"), (-0.5, False, "-0.500"), (float("inf"), False, "inf"),
    (9.996, False, "10.00"),
])
def test_significant(x, plain, text):
    assert fmt.significant(x, plain=plain) == text


def test_significant_number_and_ms():
    assert fmt.significant(None) == fmt.NA and fmt.significant(None, missing="-") == "-"
    assert fmt.significant(2.0012, 4) == "2.001"
    assert [fmt.number(x) for x in (25.0, 7.5, 12.34, 1020.0, None)] == ["25", "7.5", "12.3", "1020", fmt.NA]
    assert fmt.number(4.2, 4) == "4.2" and fmt.number(3.0, 4) == "3"
    assert [fmt.ms(x) for x in (0.0312, 1.63e-5, 99.94, 999.4, 12345.6, None)] == \
        ["0.0312", "1.63e-5", "99.9", "999", "12,346", fmt.NA]
    assert fmt.ms(12345.6, plain=True) == "12346" and fmt.ms(7.77e-5, plain=True) == "0.0000777"
    assert fmt.ms(None, missing="-") == "-"
    assert all(len(fmt.ms(x)) <= 7 for x in (1.2345e-5, 0.0017734, 0.5, 12.3456, 999.9))


def test_bytes_shapes_tags_percent():
    assert fmt.nbytes(46827520) == "46.8 MB" and fmt.nbytes(512) == "512 B" and fmt.nbytes(None) == fmt.NA
    assert fmt.nbytes(8 * 2**30, binary=True) == "8 GiB" and fmt.nbytes(141 * 2**30, binary=True) == "141 GiB"
    assert fmt.nbytes(30 * 2**20 + 2**19, binary=True) == "30.5 MiB"
    assert fmt.shape([1, 3, 224, 224]) == "1x3x224x224" and fmt.shape([]) == "scalar" and fmt.shape(None) == fmt.NA
    assert fmt.shape([1, 3], ["batch", None]) == "batchx3"
    assert fmt.shapes([[1, 3], [2]]) == "1x3, 2" and fmt.shapes([]) == fmt.NA
    assert fmt.tags({"site": "lab", "robot": ""}) == "robot site=lab"
    assert fmt.percent(63, 1000) == "6.3%" and fmt.percent(0, 10) == "0%" and fmt.percent(1, 10**5) == "<0.1%"
    assert fmt.percent(1, 10**5, plain=True) == "0.0%" and fmt.percent(1, 0) == fmt.NA
    assert fmt.percent(None, 10, missing="-") == "-"


def test_cell_of_any_value():
    assert fmt.cell(None) == fmt.NA and fmt.cell(True) == "yes" and fmt.cell(False) == "no"
    assert fmt.cell(1234567) == "1,234,567" and fmt.cell(25.0) == "25" and fmt.cell(2.0012) == "2.001"
    assert fmt.cell(1234.56) == "1,235" and fmt.cell(0.10654) == "0.1065" and fmt.cell(float("nan")) == "nan"
    assert fmt.cell(2.5) == "2.5" and fmt.cell(2.0) == "2"
    assert fmt.cell([1, "a", None]) == "1, a, —" and fmt.cell({"k": 0.5, "n": 2}) == "k=0.5, n=2"
    assert fmt.cell("[bold]x[/bold]") == "[bold]x[/bold]"  # text stays text (faces never read it as markup)
    assert fmt.cell("a\x1bb") == "a\\x1bb"


# every kind of value has one function in units.py: the faces define no formatter of their own
FORMATTERS = {"_ms", "_num", "_bytes", "_shape", "cell", "sig", "_sig", "pct", "_pct", "_macs", "_gib", "_count"}
FACES = [*sorted((PACKAGE / "commands").glob("*.py")), *sorted((PACKAGE / "screens").rglob("*.py"))]


@pytest.mark.parametrize("path", FACES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_faces_define_no_formatter_of_their_own(path):
    tree = ast.parse(path.read_text())  # module-level functions (ModelTable.cell reads a painted cell back)
    defined = {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    assert not defined & FORMATTERS, f"{path.name} formats numbers itself: {defined & FORMATTERS}; use units.py"


def test_the_card_formats_through_units():
    """The card keeps its stated convention (bare figures, '-' for missing) but every helper is a units call."""
    from embodied_tui.services import card

    assert card.sig(0.0000777) == fmt.significant(0.0000777, plain=True) == "0.0000777"
    assert card.count(1234567) == fmt.exact(1234567) and card.pct(1, 10**5) == "0.0%"
    tree = ast.parse(Path(card.__file__).read_text())
    helpers = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    for name in ("count", "sig", "pct", "_ms"):  # one line each, delegating to units
        body = [n for n in helpers[name].body if not isinstance(n, ast.Expr)]
        assert len(body) == 1 and "fmt." in ast.unparse(body[0]), name


def test_faces_offer_the_one_list_of_precisions():
    from click.testing import CliRunner

    from embodied_tui.cli import main
    from embodied_tui.commands.model import analyze_cmd
    from embodied_tui.data.hardware import PRECISIONS

    choice = next(p for p in analyze_cmd.params if p.name == "precision").type
    assert tuple(choice.choices) == PRECISIONS
    for args in (["fit", "--help"], ["measurement", "add", "--help"]):
        help_text = " ".join(CliRunner().invoke(main, args).output.split())
        assert f"{', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}" in help_text


def test_quadratic_writes_each_nonzero_term_exactly():
    from embodied_tui.units import quadratic

    assert quadratic(4096, 98304, 256) == "4,096 + 98,304 n + 256 n^2"
    assert quadratic(0, 162304, 256) == "162,304 n + 256 n^2"
    assert quadratic(-12, 5, 0, "t") == "-12 + 5 t"
    assert quadratic(0, 0, 0) == "0"
