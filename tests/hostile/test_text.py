"""Text from outside never drives the terminal: names, tags, descriptions, device YAML, model files (ONNX node, input
and dim names), Cypher results and measurements reach the CLI and the app escaped by ``units.safe_text``, and are
never read as Rich markup.

The registry is built the way an older version (or a hand edit) could have left it: records and devices are made with
a plain token through the real services, then the token is swapped for the hostile payload in the TinyDB JSON file
itself (the name rule of ``data/names.py`` refuses such names when they are created, never when they are read).
The CLI runs for real (click's CliRunner with ``color=True``, so click strips no escape sequence for us; a wide
``COLUMNS`` so no cell is cut or folded; one run in a subprocess); the app runs under Textual's Pilot.
"""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from embodied_tui import units as fmt
from embodied_tui.cli import main
from embodied_tui.commands.output import json_bytes

TOKEN = "ZZQZZ"
# clear screen, an OSC title set ended by BEL, a C1 CSI, a bidi override and isolate, Rich markup (style, link, emoji
# code), a newline that starts a fake table row, CR, tab and DEL
PAYLOAD = ("\x1b[2J\x1b]0;pwned\x07\x9b31m\u202eevil\u2066[bold red]RED[/][link=https://x.test]L[/link]:smile:"
           "\n| fake | row |\r\t\x7f")
ESCAPED = ("\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202eevil\\u2066[bold red]RED[/][link=https://x.test]L[/link]:smile:"
           "\\n| fake | row |\\r\\t\\x7f")
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\u2066", "\x7f", "\r", "\t")
# pieces of ESCAPED without spaces: found whole even where a screen wraps the text at a space
PIECES = ("\\x1b[2J\\x1b]0;pwned\\x07\\x9b31m\\u202eevil\\u2066[bold",
          "red]RED[/][link=https://x.test]L[/link]:smile:\\n|")
NAME = "resnet" + PAYLOAD
EXE = Path(sys.executable).with_name("embodied-ai")


# ------------------------------------------------------------------------------------------------ the rule
def test_safe_text_escapes_controls_format_characters_and_line_breaks():
    assert fmt.safe_text(PAYLOAD) == ESCAPED
    assert fmt.safe_text("a\nb\x1bc", newlines=True) == "a\nb\\x1bc"
    for ch, shown in (("\x00", "\\x00"), ("\x85", "\\x85"), ("\u200b", "\\u200b"), ("\u200d", "\\u200d"),
                      ("\u2028", "\\u2028"), ("\ufeff", "\\ufeff"), ("\U000e0041", "\\U000e0041"),
                      ("\ud800", "\\ud800"), ("\u00ad", "\\xad")):
        assert fmt.safe_text(f"x{ch}y") == f"x{shown}y"
    for kept in ("résnet-18", "中文モデル", "C:\\models\\x.onnx", "no\u00a0break", "[b]x[/b]", "🙂"):
        assert fmt.safe_text(kept) == kept
    assert fmt.safe_text(ESCAPED) == ESCAPED  # escaping twice changes nothing
    text = "plain ascii name"
    assert fmt.safe_text(text) is text  # printable text is not copied


def test_formatters_that_embed_foreign_text_escape_it():
    assert fmt.tags({PAYLOAD: PAYLOAD}) == f"{ESCAPED}={ESCAPED}"
    assert fmt.shape([1, 3], [PAYLOAD, None]) == f"{ESCAPED}x3"
    assert fmt.cell(PAYLOAD) == ESCAPED
    assert fmt.cell({PAYLOAD: [PAYLOAD, 1.5, None, True]}) == f"{ESCAPED}={ESCAPED}, 1.5, —, yes"


def test_json_bytes_escapes_what_pydantic_writes_raw_and_keeps_the_value():
    raw = json.dumps({"name": PAYLOAD + " é 中 \U000e0041"}, ensure_ascii=False).encode()
    safe = json_bytes(raw)
    assert json.loads(safe) == json.loads(raw)
    assert not any(ch in safe.decode() for ch in RAW + ("\U000e0041",))
    assert "é 中".encode() in safe  # other text stays as it was
    assert json_bytes(b'{"a": 1}') == b'{"a": 1}'


# ------------------------------------------------------------------------------------------------ the registry
def _swap(value, old: str, new: str):
    if isinstance(value, str):
        return value.replace(old, new)
    if isinstance(value, list):
        return [_swap(v, old, new) for v in value]
    if isinstance(value, dict):
        return {_swap(k, old, new): _swap(v, old, new) for k, v in value.items()}
    return value


def run(db: Path, *args: str):
    """The real CLI on ``db``; ``color=True`` keeps click from stripping escape sequences (as on a terminal)."""
    result = CliRunner().invoke(main, ["--db", str(db), *args], env={"COLUMNS": "400", "NO_COLOR": "1"}, color=True)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def build_registry(folder: Path) -> Path:
    """The snapshot registry with one model, one device and one measurement full of the payload."""
    from tui_fixtures import fixed_registry

    db = folder / "registry.json"
    fixed_registry(db)
    data = json.loads(db.read_text(encoding="utf-8"))
    record = next(doc["record"] for doc in data["models"].values() if doc["record"]["name"] == "resnet_tiny")
    record.update(name="resnet" + TOKEN, tags={TOKEN: TOKEN}, description=TOKEN, notes=[TOKEN],
                  uncounted=[{"module": TOKEN, "op": TOKEN, "reason": TOKEN}], input_names=[TOKEN],
                  input_symbols=[[TOKEN] + [None] * (len(record["input_shapes"][0]) - 1)])
    record["architecture"].update(family=TOKEN, evidence=[*record["architecture"]["evidence"], TOKEN])
    record["layers"][TOKEN] = 1
    db.write_text(json.dumps(data), encoding="utf-8")
    board = {"id": "evil-board", "name": TOKEN, "vendor": TOKEN, "type": "soc", "aliases": [],
             "power_modes": [{"name": TOKEN, "power_w": 10, "memory_bandwidth_gbps": 1e6, "peak_tflops": {"fp32": 1e6},
                              "source": TOKEN, "notes": [TOKEN]}],
             "default_mode": TOKEN, "notes": [TOKEN], "sources": {TOKEN: TOKEN}}
    (folder / "board.yaml").write_text(yaml.safe_dump(board))
    added = run(db, "hw", "add", str(folder / "board.yaml"))
    assert added.exit_code == 0, added.output
    measured = run(db, "measurement", "add", "--model", "resnet" + TOKEN, "--hw", "evil-board", "--mode", TOKEN,
                   "--precision", "fp32", "--latency-ms", "1.5", "--source", TOKEN, "--runtime", TOKEN,
                   "--timed", TOKEN)
    assert measured.exit_code == 0, measured.output
    data = _swap(json.loads(db.read_text(encoding="utf-8")), TOKEN, PAYLOAD)
    db.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return db


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> Path:
    return build_registry(tmp_path_factory.mktemp("hostile-text"))


def check(output: str, shown: bool = True, rows: bool = True) -> None:
    """Nothing a terminal acts on, no markup read (the literal markup and emoji code are there when the payload is
    shown), no line started by the payload's newline (``rows``)."""
    for ch in RAW:
        assert ch not in output, (ch, output[:2000])
    assert "😄" not in output
    if rows:
        assert not any(line.lstrip().startswith("| fake") for line in output.splitlines()), output[:2000]
    if shown:
        assert ESCAPED in output, output[:3000]


QUERY = "MATCH (m:Model) RETURN m.name, m.family, m.type"
MEASURED = "MATCH (x:Measurement) RETURN x, x.source, x.runtime"
TEXT_COMMANDS = {
    "model list": ["model", "list"],
    "model list all": ["model", "list", "--all-versions", "--sort", "-params"],
    "model show": ["model", "show", NAME, "--census"],
    "card": ["card", NAME],
    "card markdown": ["card", NAME, "--markdown"],
    "query": ["query", QUERY],
    "query measurement": ["query", MEASURED],
    "ask": ["ask", "list models"],
    "hw show": ["hw", "show", "evil-board"],
    "measurement list": ["measurement", "list"],
    "fit": ["fit", NAME, "--hw", "evil-board"],
}


@pytest.mark.parametrize("command", list(TEXT_COMMANDS))
def test_cli_text_output_is_escaped(hostile_db, command):
    result = run(hostile_db, *TEXT_COMMANDS[command])
    assert result.exit_code == 0, result.output
    check(result.stdout + result.stderr)


def test_cli_lists_that_cut_the_payload_stay_safe(hostile_db):
    """`hw list` cuts the mode name to its column; `card --hf` writes YAML's own escapes in the front matter."""
    listed = run(hostile_db, "hw", "list")
    assert listed.exit_code == 0 and "evil-board" in listed.stdout
    check(listed.stdout + listed.stderr, shown=False)
    assert "\\x1b[2J" in listed.stdout
    card = run(hostile_db, "card", NAME, "--hf")
    assert card.exit_code == 0
    _, front, markdown = card.stdout.split("---\n", 2)
    check(markdown + card.stderr)
    check(front, shown=False, rows=False)  # a YAML line may start with "| fake": a folded quoted scalar, no row
    assert yaml.safe_load(front)["embodied_ai"]["name"] == NAME  # the front matter still holds the real name


def test_cli_fit_of_every_device(hostile_db):
    result = run(hostile_db, "fit", NAME)
    assert result.exit_code == 0
    check(result.stdout + result.stderr, shown=False)


def test_cli_error_lines_are_escaped(hostile_db):
    missing = run(hostile_db, "model", "show", "nope" + PAYLOAD)
    assert missing.exit_code != 0
    check(missing.stdout + missing.stderr, shown=False)


JSON_COMMANDS = {
    "model list": ["model", "list", "--json"],
    "model show": ["model", "show", NAME, "--json"],
    "card": ["card", NAME, "--json"],
    "query": ["query", MEASURED, "--json"],
    "ask": ["ask", "list models", "--json"],
    "hw show": ["hw", "show", "evil-board", "--json"],
    "hw list": ["hw", "list", "--json"],
    "measurement list": ["measurement", "list", "--json"],
}


@pytest.mark.parametrize("command", list(JSON_COMMANDS))
def test_cli_json_output_escapes_and_keeps_the_text(hostile_db, command):
    result = run(hostile_db, *JSON_COMMANDS[command])
    assert result.exit_code == 0, result.output
    for ch in RAW:
        assert ch not in result.stdout, ch
    assert any(PAYLOAD in text for text in strings(json.loads(result.stdout)))  # the value itself is intact


def strings(value):
    """Every string (keys too) in a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from strings(v)


def test_cli_in_a_real_process(hostile_db):
    """The installed command in a subprocess: stdout is a pipe, nothing strips escape sequences for us."""
    env = {**os.environ, "COLUMNS": "400", "NO_COLOR": "1"}
    for args in (["model", "list"], ["measurement", "list"], ["hw", "show", "evil-board"]):
        done = subprocess.run([str(EXE), "--db", str(hostile_db), *args], capture_output=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        check(done.stdout.decode() + done.stderr.decode())


# ------------------------------------------------------------------------------------------------ a hostile ONNX file
def onnx_file(path: Path) -> Path:
    """A MatMul and an op of a made-up domain; input, output, weight, node and dim names all hold the payload."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("in" + PAYLOAD, TensorProto.FLOAT, [PAYLOAD, 8])
    y = helper.make_tensor_value_info("out" + PAYLOAD, TensorProto.FLOAT, [PAYLOAD, 4])
    w = helper.make_tensor("w" + PAYLOAD, TensorProto.FLOAT, [8, 4], [0.1] * 32)
    nodes = [helper.make_node("MatMul", ["in" + PAYLOAD, "w" + PAYLOAD], ["h" + PAYLOAD], name="mm" + PAYLOAD),
             helper.make_node("Odd" + PAYLOAD, ["h" + PAYLOAD], ["out" + PAYLOAD], name="odd" + PAYLOAD,
                              domain="evil.domain")]
    model = helper.make_model(helper.make_graph(nodes, "g" + PAYLOAD, [x], [y], [w]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("evil.domain", 1)])
    model.doc_string = PAYLOAD
    onnx.save(model, str(path))
    return path


def test_cli_on_an_onnx_file_with_hostile_names(tmp_path):
    path = onnx_file(tmp_path / "evil.onnx")
    db = tmp_path / "reg" / "registry.json"
    for args in (["model", "analyze", str(path)], ["model", "register", str(path), "--name", "evil-onnx"],
                 ["model", "show", "evil-onnx", "--census"], ["card", "evil-onnx"], ["model", "list"],
                 ["query", "MATCH (m:Model) RETURN m"]):
        result = run(db, *args)
        assert result.exit_code == 0, (args, result.output)
        check(result.stdout + result.stderr, shown=False)
    assert ESCAPED in run(db, "card", "evil-onnx").stdout  # the layer names of the file are in the card, escaped


# ------------------------------------------------------------------------------------------------ the app
def screen_text(app) -> str:
    """Everything the screen shows, read from Textual's own screenshot."""
    svg = app.export_screenshot()
    return html.unescape("".join(re.findall(r"<text[^>]*>(.*?)</text>", svg, flags=re.S)))


def check_screen(text: str, shown: bool = True) -> None:
    for ch in RAW:
        assert ch not in text, ch
    assert "😄" not in text
    if shown:
        assert all(piece in text for piece in PIECES), text[:3000]


def test_app_shows_registry_text_escaped_and_never_as_markup(hostile_db, tmp_path):
    import shutil

    from textual.widgets import DataTable
    from tui_fixtures import settle

    from embodied_tui.app import EmbodiedApp
    from embodied_tui.data.store import Registry
    from embodied_tui.screens.widgets.model_table import ModelTable

    db = tmp_path / "registry.json"  # a private copy: the app may write the fit cache
    shutil.copy2(hostile_db, db)
    shutil.copytree(hostile_db.with_name(hostile_db.name + ".d"), db.with_name(db.name + ".d"))
    registry = Registry(db)
    record = next(r for r in registry.list_models() if r.name == NAME)

    async def scenario() -> None:
        app = EmbodiedApp(registry=registry)
        async with app.run_test(size=(260, 60)) as pilot:
            await settle(pilot)
            table = app.screen.query_one(ModelTable)
            key = f"{NAME}@{record.version}"
            assert table.cell(key, "name") == fmt.clip("resnet" + ESCAPED, 28)
            assert table.cell(key, "family") == ESCAPED
            assert table.cell(key, "tags") == fmt.clip(f"{ESCAPED}={ESCAPED}", 20)
            painted = [strip.text for strip in table.render_lines(table.region.reset_offset)]
            assert any(ESCAPED in line for line in painted)
            check_screen("\n".join(painted))
            check_screen(screen_text(app))

            app.open_detail(record)
            await settle(pilot)
            for tab in "123456":  # summary, census, shapes, MACs/type, file, card
                await pilot.press(tab)
                await settle(pilot)
                check_screen(screen_text(app), shown=tab != "2")  # the census tree holds the file's own names

            app.open_fit(record)
            await settle(pilot)
            await pilot.press("slash")  # only the evil board's rows: faster catalog devices would push them off screen
            app.focused.value = "evil-board"
            await pilot.press("enter")
            await settle(pilot)
            fit_table = app.screen.query_one(DataTable)
            cells = [cell for row in fit_table.ordered_rows for cell in fit_table.get_row(row.key)]
            modes = [cell for cell in cells if "pwned" in str(cell)]
            assert modes and all(str(cell) == ESCAPED and not cell.spans for cell in modes)
            check_screen(screen_text(app))
            await pilot.press("2")  # the roofline chart of the first row: the evil board, titled with its mode
            await settle(pilot)
            await pilot.pause(0.3)
            await settle(pilot)
            check_screen(screen_text(app), shown=False)

            app.open_compare([record, next(r for r in registry.list_models() if r.name == "mlp_policy")])
            await settle(pilot)
            headers = [str(c.label) for c in app.screen.query_one(DataTable).ordered_columns]
            assert f"{fmt.clip('resnet' + ESCAPED, 12)} v{record.version}" in headers
            check_screen(screen_text(app), shown=True)

            await app.push_screen(_ask_screen(QUERY))
            await settle(pilot)
            answer = app.screen.query_one(DataTable)
            names = [cell for row in answer.ordered_rows for cell in answer.get_row(row.key) if "pwned" in str(cell)]
            assert names and {str(cell) for cell in names} == {"resnet" + ESCAPED, ESCAPED}
            assert not any(cell.spans for cell in names)  # "[bold red]" is text, not a style
            check_screen(screen_text(app))

    import asyncio

    asyncio.run(scenario())


def _ask_screen(question: str):
    from embodied_tui.screens.ask import AskScreen

    return AskScreen(question)


def test_palette_hits_show_names_literally():
    """The command palette reads hit texts and help as markup: hits are built as Content, help is markup-escaped."""
    from types import SimpleNamespace

    from textual.content import Content
    from textual.fuzzy import Matcher

    from embodied_tui.screens.palette import OpenModelProvider, highlight

    record = SimpleNamespace(name=NAME, version=1, architecture=SimpleNamespace(type="cnn", family=PAYLOAD))
    provider = SimpleNamespace(prefix=OpenModelProvider.prefix, help=lambda r: OpenModelProvider.help(None, r))
    text = OpenModelProvider.text(provider, record)
    assert text == f"Open model: resnet{ESCAPED}"
    shown = highlight(Matcher("open resnet"), text)
    assert shown.plain == text and shown.spans  # the match is highlighted, the markup in the name is not read
    assert Content.from_markup(OpenModelProvider.help_text(provider, record)).plain == f"v1 cnn/{ESCAPED}"
