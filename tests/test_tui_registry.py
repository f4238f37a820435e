"""The registry screen, driven through the real app (App.run_test at 80x24) on a registry of real analyses."""
from __future__ import annotations

import pytest
from textual.widgets import Input, Static
from tui_fixtures import analysed_registry_copy, run_command, settle, static_text, sync, until

from embodied_tui import units as fmt
from embodied_tui.app import EmbodiedApp
from embodied_tui.data.store import Registry
from embodied_tui.screens.compare import CompareScreen
from embodied_tui.screens.detail import DetailScreen
from embodied_tui.screens.help import HelpScreen
from embodied_tui.screens.registry import RegistryScreen
from embodied_tui.screens.widgets.model_table import MARK, ModelTable
from embodied_tui.services import target as targets

SIZE = (80, 24)


def rows(app: EmbodiedApp) -> list[str]:
    return list(app.screen.query_one(ModelTable).keys)


def keys(records) -> list[str]:
    return [f"{r.name}@{r.version}" for r in records]


def status(app) -> str:
    return static_text(app.screen.query_one("#status", Static))


@sync
async def test_lists_latest_versions_sorted_by_name(registry):
    latest = registry.list_models(latest_only=True)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, RegistryScreen)
        assert rows(app) == keys(sorted(latest, key=lambda r: r.name.lower()))
        # resnet_tiny was registered twice: only version 2 is listed, and `A` shows every version
        assert "resnet_tiny@2" in rows(app) and "resnet_tiny@1" not in rows(app)
        assert f"{len(latest)} of {len(latest)} models" in status(app)
        await pilot.press("A")
        assert set(rows(app)) == set(keys(registry.list_models(latest_only=False)))


@sync
async def test_filter_expression_fuzzy_text_and_bad_expression(registry):
    records = registry.list_models()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        filter_input = app.screen.query_one("#filter", Input)
        assert app.focused is filter_input
        await pilot.press("t", "y", "question_mark", "q")  # typed keys reach the filter, even ? and q...
        assert filter_input.value == "ty?q" and isinstance(app.screen, RegistryScreen)
        filter_input.value = "type = cnn AND params < 1M"  # ...the rest is set at once (each key press is slow)
        await pilot.pause()
        expected = [r for r in records if r.architecture.type == "cnn" and r.params < 1_000_000]
        assert expected and len(expected) < len(records)
        assert sorted(rows(app)) == sorted(keys(expected))
        assert f"{len(expected)} of {len(records)} models" in status(app)

        # a bad expression: the error shows inline, the last good rows stay, nothing crashes
        filter_input.value += " AND params <"
        await pilot.pause()
        error = app.screen.query_one("#filter-error", Static)
        assert error.display and "bad filter" in static_text(error)
        filter_input.value = filter_input.value[:-1] + "> 60k"
        await pilot.pause()
        assert not error.display
        assert sorted(rows(app)) == sorted(keys(r for r in expected if r.params > 60_000))

        # plain text is a fuzzy search; escape clears the filter and returns to the table
        filter_input.value = "policy"
        await pilot.pause()
        assert sorted(rows(app)) == sorted(keys(r for r in records if "policy" in r.name))
        await pilot.press("escape")
        assert len(rows(app)) == len(records)
        assert isinstance(app.focused, ModelTable)


@sync
async def test_sort_cycles_and_reverses(registry):
    records = registry.list_models()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("s")  # name -> params
        assert rows(app) == keys(sorted(records, key=lambda r: r.params))
        assert "sort: params ^" in status(app)
        await pilot.press("S")
        assert rows(app) == keys(sorted(records, key=lambda r: r.params, reverse=True))
        await pilot.press("s")  # -> GMACs, still reversed
        assert rows(app) == keys(sorted(records, key=lambda r: r.macs, reverse=True))
        assert "sort: GMACs v" in status(app)


@sync
async def test_vim_motion_and_enter_opens_detail(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ModelTable)
        order = rows(app)
        await pilot.press("j", "j")
        assert table.cursor_row == 2
        await pilot.press("k")
        assert table.cursor_row == 1
        await pilot.press("G")
        assert table.cursor_row == len(order) - 1
        await pilot.press("g")
        assert table.cursor_row == 0
        await pilot.press("j", "enter")
        assert isinstance(app.screen, DetailScreen)
        assert f"{app.screen.record.name}@{app.screen.record.version}" == order[1]
        await pilot.press("q")
        assert isinstance(app.screen, RegistryScreen)


@sync
async def test_mark_two_and_compare(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ModelTable)
        await pilot.press("c")  # nothing marked: a warning, no screen
        assert isinstance(app.screen, RegistryScreen)
        await pilot.press("space", "space")  # marks row 0, moves down, marks row 1
        order = rows(app)
        assert table.cell(order[0], "mark") == MARK and table.cell(order[1], "mark") == MARK
        assert table.cell(order[2], "mark") != MARK
        assert "2 marked" in status(app)
        await pilot.press("c")
        assert isinstance(app.screen, CompareScreen)
        assert keys(app.screen.records) == order[:2]
        await pilot.press("escape")
        await pilot.press("k", "space")  # unmark the second
        assert "1 marked" in status(app)


@sync
async def test_help_lists_focused_widget_and_screen_keys(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = static_text(app.screen.query_one("#help-text", Static))
        # the table's hidden vim keys, the screen's keys and the app's, each under its title
        for expected in ("Model table  (focused)", "First row", "Registry", "Compare", "Everywhere", "Help"):
            assert expected in text
        assert text.index("Model table") < text.index("Registry") < text.index("Everywhere")
        await pilot.press("escape")
        assert isinstance(app.screen, RegistryScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, RegistryScreen)


def test_no_forbidden_keys_are_bound():
    """ctrl+s / ctrl+j / ctrl+b / ctrl+enter are eaten by tmux and many terminals (design.md)."""
    from embodied_tui.screens.ask import AskScreen
    from embodied_tui.screens.fit import FitScreen
    from embodied_tui.screens.register import RegisterDialog
    from embodied_tui.screens.widgets.census_tree import CensusTree
    from embodied_tui.screens.widgets.compare_table import CompareTable
    from embodied_tui.screens.widgets.vim_table import VimTable

    forbidden = {"ctrl+s", "ctrl+j", "ctrl+b", "ctrl+enter"}
    for cls in (EmbodiedApp, RegistryScreen, DetailScreen, CompareScreen, HelpScreen, RegisterDialog, ModelTable,
                CensusTree, CompareTable, FitScreen, AskScreen, VimTable):
        bound = {key.strip() for binding in cls.BINDINGS for key in
                 (binding.key if hasattr(binding, "key") else binding[0]).split(",")}
        assert not bound & forbidden, cls


@sync
async def test_palette_sort_and_open(registry):
    records = registry.list_models()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, "Sort by: params (reversed)")
        assert isinstance(app.screen, RegistryScreen)
        assert rows(app) == keys(sorted(records, key=lambda r: r.params, reverse=True))

        target = min(records, key=lambda r: r.params)
        await run_command(pilot, f"Open model: {target.name}")
        assert isinstance(app.screen, DetailScreen) and app.screen.record.name == target.name


@sync
async def test_empty_and_corrupt_registry_say_so(tmp_path):
    app = EmbodiedApp(registry=Registry(tmp_path / "none.json"))
    async with app.run_test(size=SIZE):
        assert "0 of 0 models" in status(app) and "press r to register" in status(app)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    app = EmbodiedApp(registry=Registry(bad))
    async with app.run_test(size=SIZE):
        assert "unreadable" in status(app) and str(bad) in status(app)
    assert bad.read_text() == "{not json"


@sync
async def test_large_registry_keeps_the_cursor_on_screen(registry, tmp_path):
    source = registry
    record = source.get("small_vit")
    details = source.details(record)
    big = Registry(tmp_path / "big.json")
    big.put_many([(record.model_copy(update={"name": f"m{i:04d}"}), f"identity-{i}", details) for i in range(300)])
    app = EmbodiedApp(registry=big)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ModelTable)

        def visible() -> str:
            return "\n".join(table.render_line(y).text for y in range(table.scrollable_content_region.height))

        assert table.row_count == 300 and "m0000" in visible() and "m0299" not in visible()
        await pilot.press("G")
        assert table.cursor_row == 299 and "m0299" in visible() and "m0000" not in visible()
        assert visible().splitlines()[0].split()[:3] == ["name", "v", "family"]  # the header stays on top
        await pilot.press("pageup", "k")
        assert table.current_record().name in visible()
        await pilot.press("g")
        assert table.cursor_row == 0 and "m0000" in visible()


@sync
async def test_big_registry_filters_on_enter_without_waiting(registry, tmp_path):
    from embodied_tui.screens.registry import DEBOUNCE_FROM

    source = registry
    record = source.get("mlp_policy")
    big = Registry(tmp_path / "big.json")
    n = DEBOUNCE_FROM + 10
    big.put_many([(record.model_copy(update={"name": f"m{i:05d}"}), f"identity-{i}", None) for i in range(n)])
    app = EmbodiedApp(registry=big)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("slash")
        app.screen.query_one("#filter", Input).value = "name ~ m0000"
        await pilot.press("enter")
        assert rows(app) == [f"m{i:05d}@1" for i in range(10)]
        assert isinstance(app.focused, ModelTable)


@sync
async def test_q_and_escape_go_back_and_ctrl_q_quits(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        for back in ("q", "escape"):
            await pilot.press("enter")
            assert isinstance(app.screen, DetailScreen)
            await pilot.press(back)
            assert isinstance(app.screen, RegistryScreen)
        await pilot.press("enter", "ctrl+q")
        await pilot.pause()
        assert app.return_code == 0


def fastest_predictions(registry: Registry, record) -> tuple[str, set[str]]:
    """The lowest predicted latency of services.fit's rows for ``record``, and the devices x modes x precisions that
    reach it (ties are possible)."""
    from embodied_tui.services.fit import fit_rows

    rows = [r for r in fit_rows(registry, record.name, version=record.version) if r.predicted_latency_ms is not None]
    best = min(r.predicted_latency_ms for r in rows)
    return fmt.significant(best), {f"{r.hardware}/{r.power_mode}/{r.precision}"
                                   for r in rows if r.predicted_latency_ms == best}


@sync
async def test_best_fit_cells_fill_in_with_the_fastest_prediction(registry):
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(160, 24)) as pilot:
        table = app.screen.query_one(ModelTable)
        await until(pilot, lambda: all(table.has_best_fit(k) for k in table.keys))
        await settle(pilot)
        for key in table.keys:
            record = table.records[key]
            cell = table.cell(key, "fit")
            best_ms, where = fastest_predictions(registry, record)
            # the note names the row's device by its catalog short name, then mode and precision
            short = targets.device_short_names(registry)
            assert cell == best_ms, (key, cell)
            assert table.cell(key, "note") in {f"{short.get(w.split('/')[0], w.split('/')[0])}/{w.split('/', 1)[1]}"
                                               for w in where}, (key, table.cell(key, "note"))
        # the column is painted, not only stored, under a header that says what it is (no target pinned)
        painted = "\n".join(table.render_line(y).text for y in range(table.scrollable_content_region.height))
        assert "ms fastest" in painted and table.cell(table.keys[0], "fit") in painted
        # a reload of the registry (a new model) forgets them, and the rows on screen are computed again
        app.screen.reload()
        assert not any(table.has_best_fit(k) for k in table.keys)
        await until(pilot, lambda: all(table.has_best_fit(k) for k in table.keys))


@sync
async def test_best_fit_is_computed_for_visible_rows_only(registry, tmp_path):
    source = registry.get("mlp_policy")
    big = Registry(tmp_path / "big.json")
    big.put_many([(source.model_copy(update={"name": f"m{i:04d}"}), f"identity-{i}", registry.details(source))
                  for i in range(200)])
    app = EmbodiedApp(registry=big)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ModelTable)
        first_page = table.visible_keys()
        assert 0 < len(first_page) < 30
        await until(pilot, lambda: all(table.has_best_fit(k) for k in first_page))
        await settle(pilot)
        assert not any(table.has_best_fit(k) for k in table.keys[len(first_page) + 1:])
        assert table.cell(table.keys[-1], "fit") == fmt.NA  # unknown until shown
        await pilot.press("G")
        last_page = table.visible_keys()
        assert table.keys[-1] in last_page
        await until(pilot, lambda: all(table.has_best_fit(k) for k in last_page))
        best_ms, where = fastest_predictions(big, big.get("m0199"))
        assert table.cell("m0199@1", "fit") == best_ms
        middle = table.keys[100]
        assert middle not in first_page + last_page and not table.has_best_fit(middle)


@sync
async def test_best_fit_waits_while_another_screen_covers_the_table(registry, monkeypatch):
    from embodied_tui.screens import registry as registry_screen

    monkeypatch.setattr(registry_screen, "BEST_FIT_DELAY", 1.0)  # the table rests 1 s before it asks
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        table = app.screen.query_one(ModelTable)
        await pilot.press("enter")  # at once: before the table has rested long enough to ask
        await pilot.pause(1.5)
        await settle(pilot)
        assert not any(table.has_best_fit(k) for k in table.keys)
        await pilot.press("escape")
        await until(pilot, lambda: all(table.has_best_fit(k) for k in table.visible_keys()))


# ------------------------------------------------------------------------------------------------ 10,000 records
BIG = 10_000


@pytest.fixture(scope="module")
def big_registry(tmp_path_factory) -> Registry:
    """10,000 models (copies of one real analysis, params varied, m00000..m09999) in a real TinyDB file; only
    m04217 keeps the analysis details (opened from the palette)."""
    source = analysed_registry_copy(tmp_path_factory.mktemp("big-source"), tmp_path_factory)
    record = source.get("mlp_policy")
    details = source.details(record)
    big = Registry(tmp_path_factory.mktemp("big") / "big.json")
    big.put_many([(record.model_copy(update={"name": f"m{i:05d}", "params": (i * 7919) % 10007}), f"identity-{i}",
                   details if i == 4217 else None) for i in range(BIG)])
    return big


def _in_order(needle: str, text: str) -> bool:
    it = iter(text)
    return all(ch in it for ch in needle)


def fuzzy_rows(records, word: str) -> list[str]:
    """What a plain word of the filter keeps (data/filters.py), written out: in the name, letters in order in the
    name, or in family, type, task, format or a tag."""
    def hit(r) -> bool:
        a = r.architecture
        return word in r.name or _in_order(word, r.name) or any(
            word in h.lower() for h in (a.family, a.type, a.task or "", r.format, *r.tags, *r.tags.values()))
    return keys(r for r in records if hit(r))


@sync
async def test_filter_follows_every_key_at_10000_records(big_registry):
    records = big_registry.list_models()
    assert len(records) == BIG
    app = EmbodiedApp(registry=big_registry)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.screen
        await pilot.press("slash")
        typed = ""
        for char in "m0421":  # no debounce at this size: each key filters, nothing is left waiting for a timer
            await pilot.press(char)
            typed += char
            await pilot.pause()
            assert screen._filter_timer is None
            assert rows(app) == fuzzy_rows(records, typed), typed
        expected = fuzzy_rows(records, "m0421")
        assert 10 < len(expected) < BIG and f"{len(expected)} of {BIG} models" in status(app)

        await pilot.press("enter", "s")  # back to the table; sort by params (ties keep name order)
        by_params = sorted((r for r in records if f"{r.name}@{r.version}" in set(expected)), key=lambda r: r.params)
        assert rows(app) == keys(by_params)

        # a bad expression keeps the last good rows; fixing it filters again
        await pilot.press("slash")
        filter_input = app.screen.query_one("#filter", Input)
        filter_input.value = "m0421 AND params <"
        await pilot.pause()
        assert screen.query_one("#filter-error", Static).display and rows(app) == keys(by_params)
        filter_input.value = "m0421 AND params < 5000"
        await pilot.pause()
        assert rows(app) == keys(r for r in by_params if r.params < 5000)
        await pilot.press("escape")
        assert len(rows(app)) == BIG


@sync
async def test_palette_finds_and_opens_a_model_among_10000_names(big_registry):
    from textual.command import CommandList, CommandPalette

    from embodied_tui.screens.palette import CANDIDATE_LIMIT

    app = EmbodiedApp(registry=big_registry)
    async with app.run_test(size=SIZE) as pilot:
        await run_command(pilot, "Open model: m04217")
        assert isinstance(app.screen, DetailScreen) and app.screen.record.name == "m04217"
        await pilot.press("escape")

        # each model provider offers the names holding the query's letters in order, at most CANDIDATE_LIMIT of
        # them, the closest first (names that start with the query, in name order)
        group = CommandPalette._GATHER_COMMANDS_GROUP
        prefixes = ("Open model:", "Fit on hardware:", "Compare with:")  # Compare leaves out m00000 (the cursor's)
        names = [r.name for r in big_registry.list_models()]

        async def offered(query: str) -> list[str]:
            """The hits listed for ``query`` in a fresh palette (whose first list, m00000..., holds no query)."""
            await pilot.press("ctrl+p")
            palette = app.screen
            commands = palette.query_one(CommandList)
            palette.query_one(Input).value = query

            def listed() -> bool:
                busy = any(w.group == group and not w.is_finished for w in app.workers)
                return not busy and commands.option_count > 0 and query in commands.get_option_at_index(0).hit.text

            await until(pilot, listed)
            texts = [commands.get_option_at_index(i).hit.text for i in range(commands.option_count)]
            await pilot.press("escape")
            return texts

        in_order = [n for n in names if _in_order("m0421", n)]
        assert 10 < len(in_order) < CANDIDATE_LIMIT  # all of them fit
        texts = await offered("m0421")
        assert sorted(texts) == sorted(f"{p} {n}" for p in prefixes for n in in_order)
        assert texts[0].split(" ")[-1].startswith("m0421")  # names holding the query rank above looser matches

        starting = [n for n in names if n.startswith("m042")]
        assert len(starting) > CANDIDATE_LIMIT  # more than fit: the first CANDIDATE_LIMIT of them, by name
        texts = await offered("m042")
        assert sorted(texts) == sorted(f"{p} {n}" for p in prefixes for n in starting[:CANDIDATE_LIMIT])


def test_name_index_picks_what_the_palette_matcher_matches():
    """The palette scores only the texts NameIndex picks: with room for all, they are exactly the texts Textual's
    matcher scores above 0; with less room, the best tiers come first."""
    import random

    from textual.fuzzy import Matcher

    from embodied_tui.screens.palette import NameIndex

    rng = random.Random(1)
    names = sorted({"".join(rng.choice("abr-_0145 .") for _ in range(rng.randint(1, 9))) for _ in range(400)})
    names += ["ab", "ab-1", "xab"]
    texts = [f"Open model: {n}" for n in names]
    index = NameIndex(texts, names)
    for query in ("ab", "a1", "b-", "0 4", "open ab", "mdl", "zz", "r_5", "A B", "."):
        matcher = Matcher(query)
        want = {i for i, t in enumerate(texts) if matcher.match(t) > 0}
        everything = index.candidates(query, limit=len(texts))
        assert set(everything) == want and len(everything) == len(want), query
        assert index.candidates(query, limit=5) == everything[:5]
    first = index.candidates("ab", limit=3)
    assert names[first[0]] == "ab" and all(names[i].startswith("ab") for i in first)


@sync
async def test_reload_sizes_columns_from_the_changed_records(registry):
    """The table keeps each record's text widths between filters; a record changed in the registry (same name and
    version, new tags) is measured again when the screen reloads."""
    tags = "site=warehouse-7b"
    longest = max(len(fmt.tags(r.tags)) for r in registry.list_models())
    assert longest < len(tags) <= 20  # wider than any tags shown now, and not clipped by the column's cap
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=(200, 24)) as pilot:
        table = app.screen.query_one(ModelTable)

        def painted() -> str:
            return "\n".join(table.render_line(y).text for y in range(table.scrollable_content_region.height))

        await pilot.press("slash")
        app.screen.query_one("#filter", Input).value = "lstm"  # filter and clear: the widths are kept meanwhile
        await pilot.pause()
        await pilot.press("escape")
        registry.update("lstm_policy", tags={"site": "warehouse-7b"})
        app.screen.reload()
        await pilot.pause()
        line = next(line for line in painted().splitlines() if "lstm_policy" in line)
        assert tags in line and tags + "…" not in line
        assert table.cell("lstm_policy@1", "tags") == tags
