"""The coverage ledger: every op a counter traced is either counted by a named formula or listed as uncounted, with
its bytes. Format-neutral: computed once from the trace (``trace.TraceOp``: ``formula``, ``bytes``, ``mac_op``) and the
counter's ``uncounted`` list, for torch formats and ONNX alike (``analysis.api``).

- ``ledger(trace)``: one ``Entry`` per traced op.
- ``apply(fields, trace)``: the summary's ``coverage`` (ops and bytes, total and uncounted), the ``uncounted`` list
  completed (every uncounted op listed once, with its bytes), ``macs_complete`` false whenever an uncounted op's work
  is multiply-accumulates, and a note such as "uncounted: 3 of 412 ops, 0.4% of bytes".

What an "op" is: one entry of the counter's trace (an ONNX node that computes or moves data, an aten op that is not a
view). Entries of ``uncounted`` that are no traced op (a data-dependent rest the torch counter could not run, a Loop
whose trip count is data-dependent) stay as they are, with ``bytes`` None.
"""
from __future__ import annotations

from dataclasses import dataclass

from embodied_tui.data.records import Coverage, Uncounted

# trace kinds whose work is multiply-accumulates (a counter may also flag an op itself: ``TraceOp.mac_op``)
MAC_KINDS = frozenset({"conv", "conv_transpose", "linear", "matmul", "attention", "lstm", "gru", "rnn"})
NO_FORMULA = "no formula for this op: its work is not counted"


@dataclass(frozen=True, slots=True)
class Entry:
    """One traced op in the ledger."""

    index: int
    op: str
    owner: str
    formula: str | None  # the formula that counted it; None: uncounted
    bytes: int  # read + written, weights included (0 when the counter does not say)
    mac_op: bool  # its work is multiply-accumulates

    @property
    def counted(self) -> bool:
        return self.formula is not None


def ledger(trace) -> list[Entry]:
    return [Entry(op.index, op.op, op.owner, op.formula, int(op.bytes or 0), bool(op.mac_op or op.kind in MAC_KINDS))
            for op in trace]


def summarize(entries: list[Entry]) -> Coverage:
    missed = [e for e in entries if not e.counted]
    return Coverage(total_ops=len(entries), uncounted_ops=len(missed), total_bytes=sum(e.bytes for e in entries),
                    uncounted_bytes=sum(e.bytes for e in missed))


def describe(cov: Coverage) -> str:
    """'uncounted: 3 of 412 ops, 0.4% of bytes' (the share of bytes to one decimal; '<0.1%' when tiny)."""
    if not cov.total_bytes:
        share = "bytes unknown"
    else:
        pct = 100 * cov.uncounted_bytes / cov.total_bytes
        share = ("<0.1%" if 0 < pct < 0.05 else f"{pct:.1f}%") + " of bytes"
    return f"uncounted: {cov.uncounted_ops} of {cov.total_ops} ops, {share}"


def complete_uncounted(entries: list[Entry], uncounted: list[Uncounted]) -> list[Uncounted]:
    """``uncounted`` with each uncounted op's bytes, plus an entry for every uncounted op it did not list. An entry
    matches an op by module and op name (a fused op such as ONNX's "Sigmoid*Mul" by any of its parts)."""
    out = list(uncounted)
    taken: set[int] = set()
    for e in (e for e in entries if not e.counted):
        parts = {e.op, *e.op.split("*")}
        k = next((k for k, u in enumerate(out) if k not in taken and u.module == e.owner and u.op in parts), None)
        if k is None:
            out.append(Uncounted(module=e.owner, op=e.op, reason=NO_FORMULA, bytes=e.bytes))
            taken.add(len(out) - 1)
            continue
        taken.add(k)
        if out[k].bytes is None:
            out[k] = out[k].model_copy(update={"bytes": e.bytes})
    return out


def apply(fields: dict, trace) -> dict:
    """Add the ledger's results to an analysis' fields (in place, returned): ``coverage``, the completed
    ``uncounted`` list, ``macs_complete`` and, when an op is uncounted, the note ``describe`` writes."""
    entries = ledger(trace)
    cov = summarize(entries)
    fields["coverage"] = cov
    fields["uncounted"] = complete_uncounted(entries, list(fields.get("uncounted", [])))
    if any(e.mac_op and not e.counted for e in entries):
        fields["macs_complete"] = False
    if cov.uncounted_ops:
        fields["notes"] = [*fields.get("notes", []), describe(cov)]
    return fields
