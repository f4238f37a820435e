"""The ask screen: a question answered by services.ask, the Cypher it ran edited and run again, errors inline."""
from __future__ import annotations

from textual.widgets import Input, Static, TextArea
from tui_fixtures import run_command, settle, static_text, sync

from embodied_tui import units as fmt
from embodied_tui.app import EmbodiedApp
from embodied_tui.screens.ask import AskScreen, is_cypher
from embodied_tui.screens.registry import RegistryScreen
from embodied_tui.screens.widgets.answer_table import AnswerTable
from embodied_tui.services.ask import ask, query
from embodied_tui.services.target import device_short_names

SIZE = (80, 24)
QUESTION = "models under 1 ms on a raspberry pi 5 please banana"


def shown(screen: AskScreen) -> tuple[list[str], list[list[str]]]:
    """The answer as the table shows it, with the columns the terminal is too narrow for put back from the status
    line's 'hidden: ...' names (so a hidden column must be named there, and every shown cell must be whole)."""
    table = screen.query_one(AnswerTable)
    columns = [str(c.label) for c in table.ordered_columns]
    hidden = list(table.column_layout.hidden)
    if hidden:
        assert f"hidden: {', '.join(hidden)}" in static_text(screen.query_one("#status", Static))
    return columns + hidden, [[str(cell) for cell in table.get_row(row.key)] for row in table.ordered_rows]


def expected(answer: dict, screen: AskScreen) -> tuple[list[str], list[list[str]]]:
    """The service's answer, cut to the columns the table shows (in the answer's order, hidden ones last), device ids
    in a column the narrow terminal abbreviates written as their catalog short names."""
    layout = screen.query_one(AnswerTable).column_layout
    hidden = set(layout.hidden)
    keep = [i for i, c in enumerate(answer["columns"]) if c not in hidden]
    columns = [answer["columns"][i] for i in keep] + [c for c in answer["columns"] if c in hidden]
    short = device_short_names(screen.app.registry)

    def cell(i: int, value) -> str:
        text = fmt.cell(value)
        return short.get(text, text) if f"c{i}" in layout.abbreviated else text
    return columns, [[cell(i, row[i]) for i in keep] for row in answer["rows"]]


def error_text(screen: AskScreen) -> str:
    widget = screen.query_one("#ask-error", Static)
    return static_text(widget) if widget.display else ""


async def ask_here(pilot, text: str) -> None:
    pilot.app.screen.query_one("#question", Input).value = text
    await pilot.press("enter")
    await settle(pilot)


@sync
async def test_ask_a_question_then_edit_the_cypher_and_run_it_again(registry):
    answer = ask(registry, QUESTION)
    assert answer["rows"] and "banana" in answer["unparsed"]
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        screen = app.screen
        assert isinstance(screen, AskScreen) and app.focused is screen.query_one("#question", Input)
        await ask_here(pilot, QUESTION)
        assert shown(screen) == expected(answer, screen)
        editor = screen.query_one("#cypher", TextArea)
        assert editor.text == answer["cypher"]
        info = static_text(screen.query_one("#ask-info", Static))
        assert info.startswith(answer["answer"][0]) and "'banana' was not understood" in info  # said first
        assert answer["readings"][0]["meaning"] in info
        assert f"{len(answer['rows'])} rows" in static_text(screen.query_one("#status", Static))

        # edit the Cypher that ran: keep only the two fastest, and run it with ctrl+r
        edited = answer["cypher"] + "\nLIMIT 2" if "LIMIT" not in answer["cypher"] else answer["cypher"]
        editor.focus()
        editor.load_text(edited)
        await pilot.press("ctrl+r")
        await settle(pilot)
        rerun = query(registry, edited)
        assert len(rerun["rows"]) == 2 and shown(screen) == expected(rerun, screen)
        assert not screen.query_one("#ask-info", Static).display  # plain Cypher: nothing was parsed
        await pilot.press("escape")
        assert isinstance(app.screen, RegistryScreen)


@sync
async def test_cypher_typed_as_the_question_and_a_bad_one_inline(registry):
    cypher = "MATCH (m:Model) WHERE m.params > 100000 RETURN m.name, m.params ORDER BY m.params DESC"
    good = query(registry, cypher)
    assert good["rows"] and is_cypher("  match (m) return m") and not is_cypher("matches of resnet")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        screen = app.screen
        await ask_here(pilot, cypher)
        assert shown(screen) == expected(good, screen)
        assert screen.query_one("#cypher", TextArea).text == cypher
        # a bad query: one line inline, the last answer stays, nothing crashes
        await ask_here(pilot, "MATCH (m:Model RETURN m.name")
        assert "Cypher" in error_text(screen) and "column" in error_text(screen)
        assert shown(screen) == expected(good, screen)
        assert "the last answer is still shown" in static_text(screen.query_one("#status", Static))
        # fixed in the editor: the error goes away
        screen.query_one("#cypher", TextArea).load_text("MATCH (m:Model) RETURN m.name LIMIT 1")
        await pilot.press("f5")
        await settle(pilot)
        assert error_text(screen) == "" and len(shown(screen)[1]) == 1
        # an empty question says what to type
        await ask_here(pilot, "   ")
        assert "type a question" in error_text(screen)


@sync
async def test_ask_from_the_palette_and_from_detail(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, "Ask...")
        assert isinstance(app.screen, AskScreen)
        await pilot.press("escape")
        app.open_detail(registry.get("small_vit"))
        await pilot.pause()
        await pilot.press("a")
        assert isinstance(app.screen, AskScreen)
        await pilot.press("a")  # typed into the question, not a second screen
        assert app.screen.query_one("#question", Input).value == "a" and len(app.screen_stack) == 3


# ------------------------------------------------------------------------------------------------ a slow question

SLOW = "fastest model on a jetson"  # on a registry of many models with an empty fit store: fits for seconds


BIG = 6000  # models: a cold question over them fits for seconds (3,000 took ~2 s once fits went by grids), time to cancel


def big_registry(folder, n: int = BIG):
    """The fixture's models copied under ``n`` names, each with its own file hash (distinct content: copies of one
    content are fitted once, so each must be fitted on its own here), no fit store."""
    import hashlib

    from ask_fixture import registry_fixture

    from embodied_tui.data.store import Registry

    entries = Registry(registry_fixture().db).entries()
    reg = Registry(folder / "registry.json")
    copies = []
    for i in range(n):
        record, identity, details = entries[i % len(entries)]
        sha = hashlib.sha256(f"{record.sha256} copy {i}".encode()).hexdigest()
        copies.append((record.model_copy(update={"name": f"{record.name}_{i:03d}", "sha256": sha}), f"{identity}-{i}",
                       details))
    reg.put_many(copies)
    return reg


def fitted_models(reg) -> int:
    """How many models the fit store holds rows of (none when it was never written)."""
    from store_probe import stored_models

    return stored_models(reg)


async def until(pilot, condition, rounds: int = 4000) -> None:
    """Wait (a bounded number of pauses, not a timing assertion) until ``condition()`` holds."""
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.01)
    raise AssertionError("the condition never held")


@sync
async def test_escape_cancels_a_slow_question_with_a_progress_line_then_goes_back(tmp_path):
    reg = big_registry(tmp_path)
    app = EmbodiedApp(registry=reg)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        screen = app.screen
        screen.query_one("#question", Input).value = SLOW
        await pilot.press("enter")
        status = screen.query_one("#status", Static)
        await until(pilot, lambda: "computing fits:" in static_text(status))
        assert f"of {BIG:,} models" in static_text(status) and "escape cancels" in static_text(status)
        await pilot.press("escape")
        assert isinstance(app.screen, AskScreen) and "cancelled" in static_text(status)
        await until(pilot, lambda: not any(w.is_running for w in app.workers))
        stopped_at = fitted_models(reg)
        assert stopped_at < BIG  # the fits stopped: not every model was computed
        await pilot.pause(0.3)
        assert fitted_models(reg) == stopped_at and shown(screen) == ([], [])  # nothing runs on, nothing shown
        await pilot.press("escape")  # nothing running: back
        assert isinstance(app.screen, RegistryScreen)


@sync
async def test_ctrl_q_quits_mid_question(tmp_path):
    reg = big_registry(tmp_path)
    app = EmbodiedApp(registry=reg)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        app.screen.query_one("#question", Input).value = SLOW
        await pilot.press("enter")
        await until(pilot, lambda: "computing fits:" in static_text(app.screen.query_one("#status", Static)))
        await pilot.press("ctrl+q")
    assert app.return_code == 0
    # the question's thread stopped with the app: the fits were not run to the end behind it
    assert fitted_models(reg) < BIG


@sync
async def test_a_refused_question_says_why_first_and_shows_no_rows(registry):
    answer = ask(registry, "models with 5M params")  # a quantity with no comparison: not guessed, not widened
    assert answer["refused"] and answer["answer"]
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("a")
        screen = app.screen
        await ask_here(pilot, "models with 5M params")
        assert shown(screen)[1] == []
        info = static_text(screen.query_one("#ask-info", Static))
        assert info.startswith(answer["answer"][0][:60])
        assert "not answered" in static_text(screen.query_one("#status", Static))
