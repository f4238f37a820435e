"""The module tree of a model: one node per census entry, labelled with params, MACs, output shape and MAC share.

Hidden vim keys: j/k move, l expands (or steps into), h collapses (or steps to the parent), g/G first/last.
"""
from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.binding import Binding
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from embodied_tui import units as fmt
from embodied_tui.data.records import CensusNode


def node_label(node: CensusNode, model_macs: int | None, model_name: str) -> Text:
    """The node's line; its name and type come from the model file and are escaped (``units.safe_text``)."""
    name = node.path.rsplit(".", 1)[-1] if node.path else model_name
    label = Text()
    label.append(fmt.safe_text(name), style="bold")
    label.append(f" {fmt.safe_text(node.type)}", style="italic")
    label.append(f"  {fmt.count(node.params)} params  {fmt.count(node.macs)} MACs")
    if node.output_shape is not None:
        label.append(f"  -> {fmt.shape(node.output_shape)}")
    label.append(f"  {fmt.percent(node.macs, model_macs)}")
    return label


def parent_path(path: str) -> str | None:
    if not path:
        return None
    return path.rsplit(".", 1)[0] if "." in path else ""


class CensusTree(Tree[CensusNode]):
    HELP_TITLE = "Census tree"
    BINDINGS = [
        Binding("enter", "select_cursor", "Expand / collapse", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("l", "expand_or_down", "Expand", show=False),
        Binding("h", "collapse_or_parent", "Collapse / parent", show=False),
        Binding("g", "first", "First node", show=False),
        Binding("G", "last", "Last node", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
    ]

    def __init__(self, model_name: str | Text, **kwargs) -> None:
        super().__init__(model_name, **kwargs)
        self.guide_depth = 2
        self.show_root = True

    def load(self, census: Sequence[CensusNode], model_macs: int | None, model_name: str) -> None:
        """Build the tree from the flat census (dotted paths; '' is the model). Missing parents are attached to the
        nearest ancestor that exists so no node is lost."""
        self.clear()
        by_path: dict[str, TreeNode[CensusNode]] = {}
        root_entry = next((n for n in census if n.path == ""), None)
        if root_entry is not None:
            self.root.set_label(node_label(root_entry, model_macs, model_name))
            self.root.data = root_entry
        self.root.allow_expand = True
        by_path[""] = self.root
        for entry in census:
            if entry.path == "":
                continue
            parent = parent_path(entry.path)
            while parent is not None and parent not in by_path:
                parent = parent_path(parent)
            anchor = by_path[parent if parent is not None else ""]
            label = node_label(entry, model_macs, model_name)
            if entry.children:
                by_path[entry.path] = anchor.add(label, data=entry)
            else:
                by_path[entry.path] = anchor.add_leaf(label, data=entry)
        self.root.expand()
        self.cursor_line = 0

    def action_expand_or_down(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and not node.is_expanded:
            node.expand()
        elif node.children:
            self.action_cursor_down()  # the first child is the next line

    def action_collapse_or_parent(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and node.is_expanded:
            node.collapse()
        elif node.parent is not None:
            self.move_cursor(node.parent)

    def action_first(self) -> None:
        self.cursor_line = 0

    def action_last(self) -> None:
        self.cursor_line = self.last_line
