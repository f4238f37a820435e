"""What of the graph a Cypher query can match, read from grand-cypher's parsed query: the one module that reads
grand-cypher's private attributes (``grand-cypher`` is pinned exactly in pyproject.toml for this module).

grand-cypher has no public API for a parsed query, so ``read_scope`` takes the query's parse tree (its grammar's,
parsed within the query budget by ``ask.graph.parse_cypher``), runs its transformer and reads the executor it builds: the MATCH pattern (``_motif``, ``_return_edges``,
``_paths``, ``_child_executors``) and the WHERE clause's condition tree (``AND``/``OR`` with ``_condition_a``/
``_condition_b``; ``CompoundCondition`` with ``_left``, ``_operator``, ``_right``, ``_should_be``). Everything is read
at once, before the Scope is returned: its tests only call the operator objects on plain values.

The public path is the whole graph (``WHOLE``), on which ``run_cypher`` gives the same rows (``ask.graph.build_graph``
explains why a Scope keeps them, in order). It is taken

- with ``EMBODIED_AI_NO_FASTPATH=1`` in the environment, or ``read_scope(..., fast=False)``;
- for any query whose parsed form does not have the structure above (a grand-cypher release that renamed or removed
  an attribute raises AttributeError here and gets ``WHOLE``: slower, never wrong). Upgrading grand-cypher past such
  a change is a change to this file only.

``run_parsed`` runs a query from that tree (``GrandCypher.run`` parses again; parsing is the costly part of a query
with many conditions), through the same private transformer, or with ``GrandCypher.run`` when it is not there.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import networkx as nx

from embodied_tui.ask.graph import NUMBER_COLUMNS, RUNS_ON, TEXT_COLUMNS, WHOLE, Scope, row_column
from embodied_tui.data.fast_records import fastpath_enabled

_Test = Callable[[dict, str], bool]


def read_scope(text: str, *, fast: bool | None = None, tree: Any = None) -> Scope:
    """What of the graph the Cypher query ``text`` can match (see ``ask.graph.query_scope``); ``WHOLE`` when the fast
    path is off (``fast``, else the environment) or the query cannot be read safely. ``tree``: its parse tree
    (``ask.graph.parse_cypher``); without it the query is parsed here (within the query budget)."""
    if not (fastpath_enabled() if fast is None else fast):
        return WHOLE
    try:
        if tree is None:
            from embodied_tui.ask.graph import parse_cypher

            tree = parse_cypher(text)
        executor = _executor(tree)
    except Exception:  # noqa: BLE001 (any failure: the whole graph, where run_cypher raises its own error)
        return WHOLE
    try:
        return _scope(executor)
    except Exception:  # noqa: BLE001 (not the structure this module knows: the whole graph is always right)
        return WHOLE


def _executor(tree: Any) -> Any:
    """grand-cypher's executor for the parsed query (raises when there is no tree, or it has more than one part)."""
    from grandcypher import GrandCypherTransformer

    if tree is None:
        raise ValueError("no parse tree")
    transformer = GrandCypherTransformer(nx.MultiDiGraph())
    transformer.transform(tree)
    (executor,) = transformer._executors
    return executor


def run_parsed(engine: Any, tree: Any, query: str) -> dict:
    """``engine.run(query)`` (a ``GrandCypher``) on the query's parse tree, without parsing it again; with a
    grand-cypher whose transformer is not the one this module knows, ``engine.run(query)`` (parses again)."""
    transformer = getattr(engine, "_transformer", None)
    if transformer is None or not hasattr(transformer, "_executors") or not callable(getattr(transformer, "transform",
                                                                                            None)):
        return engine.run(query)
    transformer.transform(tree)
    return transformer._executors[0].returns()


def _leaves(condition: Any) -> Iterable[Any]:
    """The comparisons of a grand-cypher WHERE condition (through AND and OR)."""
    from grandcypher import AND, OR

    if isinstance(condition, (AND, OR)):
        yield from _leaves(condition._condition_a)
        yield from _leaves(condition._condition_b)
    else:
        yield condition


def _conjuncts(condition: Any) -> Iterable[Any]:
    """The conditions of the WHERE clause's top-level AND (each must hold for a row)."""
    from grandcypher import AND

    if isinstance(condition, AND):
        yield from _conjuncts(condition._condition_a)
        yield from _conjuncts(condition._condition_b)
    else:
        yield condition


def _holds(condition: Any) -> _Test:
    """A condition on one variable's properties, as grand-cypher evaluates it on a match, on the properties and label
    of one node or edge: AND and OR of comparisons with constants (same operator objects; a TypeError or a null result
    is false; NOT flips ``_should_be``). Reads every attribute now: the test itself reads none."""
    from grandcypher import AND, OR
    from grandcypher.types import AttributeRef

    if isinstance(condition, (AND, OR)):
        a, b, both = _holds(condition._condition_a), _holds(condition._condition_b), isinstance(condition, AND)
        return lambda props, label: (a(props, label) and b(props, label)) if both else (a(props, label)
                                                                                         or b(props, label))
    operator, should_be = condition._operator, condition._should_be
    if not callable(operator):
        raise TypeError(f"a comparison without an operator function: {operator!r}")

    def operand(value: Any) -> Callable[[dict, str], Any]:
        if not isinstance(value, AttributeRef):
            return lambda props, label: value
        attribute = str(value.attribute)
        if attribute == "__labels__":
            return lambda props, label: {label}
        return lambda props, label: props.get(attribute)

    left, right = operand(condition._left), operand(condition._right)

    def holds(props: dict, label: str) -> bool:
        try:
            result = operator(left(props, label), right(props, label))
        except (TypeError, AttributeError):
            result = False
        if result is None:
            result = False
        return not result != should_be

    return holds


def _scope(ex: Any) -> Scope:
    from grandcypher import AND, OR, SUBOP, CompoundCondition
    from grandcypher.types import AttributeRef, ExpressionBase

    motif, edge_vars = ex._motif, ex._return_edges
    edges = list(motif.edges(keys=True, data=True))
    if ex._paths or ex._child_executors or not len(motif) or any(not d.get("__is_hop__", False) for *_, d in edges):
        return WHOLE
    simple = nx.Graph(motif)
    if simple.number_of_edges() != len(edges) or not nx.is_forest(simple):
        return WHOLE  # a cycle: grandiso intersects neighbour sets, whose order depends on what they hold
    node_labels = {n: frozenset(d.get("__labels__") or ()) for n, d in motif.nodes(data=True)}
    edge_labels = {(u, v): frozenset(d.get("__labels__") or ()) for u, v, _, d in edges}

    where = ex._where_condition
    leaves = list(_leaves(where)) if where is not None else []
    if any(type(c) is not CompoundCondition or isinstance(c._operator, SUBOP) for c in leaves):
        return WHOLE  # a subquery may match labels the pattern does not name; others may raise on any row

    def known(operand: Any) -> bool:
        if isinstance(operand, AttributeRef):
            return operand.entity_name in node_labels or operand.entity_name in edge_vars
        return not isinstance(operand, (ExpressionBase, AND, OR, CompoundCondition))

    node_tests: list[tuple[frozenset[str], _Test]] = []
    edge_tests: list[tuple[frozenset[str], _Test]] = []
    precisions: frozenset[str] | None = None  # what r.precision = / IN allows: fits at other precisions not computed
    sql: list[tuple[str, str, Any]] = []  # RUNS_ON comparisons the fit store's SQL applies
    if all(known(c._left) and known(c._right) for c in leaves):  # none can raise: dropping rows drops no error
        for condition in _conjuncts(where) if where is not None else ():
            names = {op.entity_name for c in _leaves(condition) for op in (c._left, c._right)
                     if isinstance(op, AttributeRef)}
            if len(names) != 1:
                continue
            (name,) = names
            if name in node_labels:
                mine, others = node_labels[name], [lb for n, lb in node_labels.items() if n != name]
                tests = node_tests
            else:
                pair = tuple(edge_vars[name])
                mine, others = edge_labels.get(pair, frozenset()), [lb for e, lb in edge_labels.items() if e != pair]
                tests = edge_tests
            if mine and all(lb and not lb & mine for lb in others):  # only this variable binds those nodes/edges
                tests.append((mine, _holds(condition)))
                if tests is edge_tests and RUNS_ON in mine:
                    pushed = _pushed(condition)
                    if pushed is not None and pushed[0] == "precision":  # '=' or 'IN': the precisions allowed
                        allowed = frozenset({pushed[2]} if pushed[1] == "=" else pushed[2])
                        precisions = allowed if precisions is None else precisions & allowed
                    if pushed is not None:
                        sql.append(pushed)
    all_nodes = None if not all(node_labels.values()) else frozenset().union(*node_labels.values())
    all_edges = None if not all(edge_labels.values()) else frozenset().union(*edge_labels.values())
    return Scope(all_nodes, all_edges, tuple(node_tests), tuple(edge_tests), precisions=precisions,
                 edge_where=tuple(sql))


_SQL_OPERATORS = {"==": "=", "=": "=", "<": "<", "<=": "<=", ">": ">", ">=": ">=", "in": "IN"}


def _pushed(condition: Any) -> tuple[str, str, Any] | None:
    """A comparison of one RUNS_ON property with a constant as (fit row column, op, value) that the fit store's SQL
    reads as grand-cypher does (``Scope.edge_where``): not negated; ``<``/``<=``/``>``/``>=`` of a number column with
    a number, ``=`` of a column with a number or text of its kind, ``IN`` of a text column with a list of texts
    (``r.latency_ms`` is the stored ``predicted_latency_ms``). None for anything else (the edge test still holds)."""
    from grandcypher import CompoundCondition
    from grandcypher.types import AttributeRef

    if type(condition) is not CompoundCondition or condition._should_be is not True:
        return None
    left, right = condition._left, condition._right
    op = _SQL_OPERATORS.get(str(getattr(condition._operator, "_operator", "")))
    if not isinstance(left, AttributeRef) or isinstance(right, (AttributeRef, bool)) or op is None:
        return None
    column = row_column(f"r.{left.attribute}")
    number = isinstance(right, (int, float)) and not isinstance(right, bool) and right == right  # not NaN
    if column in NUMBER_COLUMNS and number and op != "IN" and abs(right) != float("inf"):
        return column, op, right
    if column in TEXT_COLUMNS and op == "=" and isinstance(right, str):
        return column, op, right
    if column in TEXT_COLUMNS and op == "IN" and isinstance(right, (list, tuple)) and right \
            and all(isinstance(v, str) for v in right):
        return column, op, tuple(right)
    return None
