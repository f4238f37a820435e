"""Detail and compare screens on real analyses: census tree, tabs, shapes, bars, file facts; compare markers."""
from __future__ import annotations

from textual.widgets import Static, TabbedContent
from tui_fixtures import run_command, settle, static_text, sync

from embodied_tui.analysis.layer_kinds import kind_counts
from embodied_tui.app import EmbodiedApp
from embodied_tui.screens.compare import DOWN, UP, CompareScreen
from embodied_tui.screens.detail import DetailScreen
from embodied_tui.screens.widgets.census_tree import CensusTree
from embodied_tui.screens.widgets.compare_table import CompareTable
from embodied_tui.screens.widgets.type_bars import TypeBars

SIZE = (80, 24)


def open_detail(app: EmbodiedApp, name: str) -> None:
    app.open_detail(app.registry.get(name))


@sync
async def test_census_tree_expand_collapse_and_vim_keys(registry):
    record = registry.get("resnet_tiny", 1)
    census = registry.details(record).census
    top_level = [n for n in census if n.path and "." not in n.path]
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.open_detail(record)
        await pilot.pause()
        await pilot.press("2")
        tree = app.screen.query_one(CensusTree)
        assert app.focused is tree
        assert tree.root.is_expanded and len(tree.root.children) == len(top_level)
        assert tree.cursor_line == 0
        # the root label carries the model totals and a 100% share
        root_label = str(tree.root.label)
        assert "100.0%" in root_label and record.name in root_label
        # first top-level node with children: move to it, expand with l, collapse with h, toggle with enter/space
        index = next(i for i, n in enumerate(tree.root.children) if n.allow_expand)
        await pilot.press(*["j"] * (index + 1))
        node = tree.cursor_node
        assert node is tree.root.children[index] and not node.is_expanded
        await pilot.press("l")
        assert node.is_expanded
        expected_children = [n for n in census if n.path.rsplit(".", 1)[0] == node.data.path and n.path != node.data.path]
        assert len(node.children) == len(expected_children)
        await pilot.press("l")  # already open: steps into the first child
        assert tree.cursor_node is node.children[0]
        await pilot.press("h")  # a leaf or closed node: back to the parent
        assert tree.cursor_node is node
        await pilot.press("h")
        assert not node.is_expanded
        await pilot.press("space")
        assert node.is_expanded
        await pilot.press("enter")
        assert not node.is_expanded
        # labels: type, params, MACs, output shape and share of model MACs
        label = str(node.label)
        assert node.data.type in label and "params" in label and "MACs" in label and "%" in label
        await pilot.press("G")
        assert tree.cursor_line == tree.last_line
        await pilot.press("g")
        assert tree.cursor_line == 0


@sync
async def test_tabs_show_summary_shapes_bars_and_file_facts(registry):
    record = registry.get("small_vit")
    details = registry.details(record)
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.open_detail(record)
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, DetailScreen)
        summary = static_text(screen.query_one("#summary-scroll Static", Static))
        assert record.architecture.family in summary and f"{record.params:,}" in summary
        for line in record.architecture.evidence:
            assert line in summary
        assert "FLOPs = 2 x MACs" in static_text(screen.query_one("#convention", Static))

        await pilot.press("3")
        assert screen.query_one(TabbedContent).active == "shapes"
        shapes = static_text(screen.query_one("#shapes Static", Static))
        assert "x".join(map(str, record.input_shapes[0])) in shapes and record.input_shape_source in shapes

        await pilot.press("right_square_bracket")
        assert screen.query_one(TabbedContent).active == "types"
        types = {c.type for c in details.layer_costs if c.macs}
        table = static_text(screen.query_one("#type-table", Static))
        for layer_type in types:
            assert layer_type in table
        assert screen.query_one(TypeBars).display

        await pilot.press("5")
        facts = static_text(screen.query_one("#file-facts", Static))
        assert record.sha256 in facts and record.path in facts and record.format in facts

        await pilot.press("escape")
        assert not isinstance(app.screen, DetailScreen)


@sync
async def test_detail_of_a_model_without_details_says_so(registry, tmp_path):
    record = registry.get("mlp_policy")
    for path in registry.details_dir.iterdir():  # the details files are gone (deleted by hand)
        path.unlink()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.open_detail(record)
        await pilot.pause()
        assert not app.screen.query_one(CensusTree).display
        assert "No census" in static_text(app.screen.query_one("#census-empty", Static))
        assert "No per-layer costs" in static_text(app.screen.query_one("#type-table", Static))


@sync
async def test_compare_marks_larger_and_smaller_and_toggles_differences(registry):
    a, b = registry.get("mobilenet_tiny"), registry.get("small_vit")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.open_compare([a, b])
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        table = screen.query_one(CompareTable)
        params = [str(c) for c in table.get_row("params")[1:]]
        big, small = (0, 1) if a.params > b.params else (1, 0)
        assert params[big].endswith(UP) and params[small].endswith(DOWN)
        macs = [str(c) for c in table.get_row("MACs")[1:]]
        big, small = (0, 1) if a.macs > b.macs else (1, 0)
        assert macs[big].endswith(UP) and macs[small].endswith(DOWN)
        # a layer type only one model has counts 0 for the other
        kinds_a, kinds_b = kind_counts(a.layers), kind_counts(b.layers)  # the census is on shared layer kinds
        only_a = next(k for k in kinds_a if k not in kinds_b)
        assert [str(c) for c in table.get_row(f"# {only_a}")[1:]] == [f"{kinds_a[only_a]} {UP}", f"0 {DOWN}"]
        pairs = (("dtype", a.dtype, b.dtype), ("type", a.architecture.type, b.architecture.type),
                 ("format", a.format, b.format), ("family", a.architecture.family, b.architecture.family))
        same = [label for label, x, y in pairs if x == y]
        differ = [label for label, x, y in pairs if x != y]
        assert same and differ
        all_rows = table.row_count
        await pilot.press("d")
        labels = [row.key.value for row in table.ordered_rows]
        assert table.row_count < all_rows and "params" in labels
        assert not set(same) & set(labels) and set(differ) <= set(labels)
        assert "differences only" in static_text(screen.query_one("#status", Static))
        await pilot.press("d")
        assert table.row_count == all_rows


@sync
async def test_compare_with_from_palette_on_detail(registry):
    a, b = registry.get("detector"), registry.get("lstm_policy")
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.open_detail(a)
        await pilot.pause()
        await run_command(pilot, f"Compare with: {b.name}")
        assert isinstance(app.screen, CompareScreen)
        assert [(r.name, r.version) for r in app.screen.records] == [(a.name, a.version), (b.name, b.version)]


@sync
async def test_card_tab_shows_the_grounded_model_card(registry):
    from textual.widgets import Static

    from embodied_tui.services.card import model_card

    record = registry.get("resnet_tiny")
    card = model_card(registry, record.name, record.version).to_markdown()
    app = EmbodiedApp(registry=registry)
    async with app.run_test(size=SIZE) as pilot:
        app.open_detail(record)
        await settle(pilot)
        await pilot.press("6")
        screen = app.screen
        assert screen.query_one(TabbedContent).active == "card"
        assert screen.card_text == card and f"{record.params:,}" in screen.card_text
        shown = static_text(screen.query_one("#card-text", Static), width=80)  # rendered once, in a worker
        assert f"{record.name} v{record.version}" in shown and f"{record.params:,}" in shown
        await pilot.press("left_square_bracket")
        assert screen.query_one(TabbedContent).active == "file"
