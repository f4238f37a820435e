"""A grounded model card: what a model is, what it costs, where its MACs go, where it runs and what to doubt.

``model_card(db, name)`` reads a registered model, its details and its fit rows and hands them to
``build_card(record, details, fits)``, which is pure. Every figure in the card is a field of the record
(``ModelRecord``), of its details (census, per-layer costs) or of a fit row (``perf.fit_row.FitRow``), shown either
as is or converted with one of these stated conversions: ``/1e6`` (M params, MB), ``/1e9`` (GMACs, GFLOPs, GB),
``x100`` of a ratio of two such figures (a share, %). Counts are exact with thousands separators; other figures have
3 significant digits. Module paths are in backticks. Each sentence that draws a conclusion names its evidence in
parentheses.

Renderings: ``to_text()`` (plain), ``to_markdown()``, ``to_huggingface()`` (YAML front matter + Markdown sections,
as on the Hugging Face Hub: ``tags``, ``pipeline_tag`` and an ``embodied_ai`` block with the record's numbers).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from embodied_tui import units as fmt
from embodied_tui.perf.fit_row import FitRow
from embodied_tui.services.aliases import resolve
from embodied_tui.services.columns import ALWAYS, WHOLE, ColumnDef, headers, laid_out, plan
from embodied_tui.units import safe_text

TOP_TYPES = 3
TOP_LAYERS = 5
TOP_DEVICES = 8
CARD_PROMPT_TOKENS = 128  # a language model's generation in the card: its registered tokens as the prompt (else this)
CARD_NEW_TOKENS = 128  # ... then this many new tokens
_ROLES = ("stem", "backbone", "encoder", "neck", "decoder", "head", "heads", "classifier", "features")
_PIPELINE = {"classification": "image-classification", "detection": "object-detection",
             "segmentation": "image-segmentation", "depth": "depth-estimation", "policy": "reinforcement-learning",
             "language": "text-generation"}
_SOURCES = {"file": "read from the file", "user": "given by the user (--input-shape)",
            "inferred": "inferred by the analyser, not read from the file", "none": "unknown"}


@dataclass
class Section:
    title: str
    lines: list[str] = field(default_factory=list)
    table: tuple[list[str], list[list[str]]] | None = None
    # how the table's columns give way in a narrow terminal (``services.columns``), one per column; None: as is
    columns: tuple[ColumnDef, ...] | None = None


# The card's tables in a terminal (``to_markdown(width=...)``): (rank: hidden largest first, ALWAYS never; numeric;
# least width of a text column). Device, mode and precision always show, the device by its short name where needed.
_COLUMN_RANKS: dict[str, tuple[int, bool, int]] = {
    "layer": (ALWAYS, False, 12), "type": (3, False, WHOLE), "MACs": (1, True, 0), "share": (2, True, 0),
    "output": (4, True, 0),
    "device": (ALWAYS, False, WHOLE), "mode": (ALWAYS, False, WHOLE), "precision": (ALWAYS, False, WHOLE),
    "predicted ms": (1, True, 0), "interval ms": (5, True, 0), "roofline ms": (6, True, 0),
    "measured ms": (4, True, 0), "fps": (2, True, 0), "bound": (3, False, WHOLE), "fits": (7, False, WHOLE),
    "calibration": (8, False, 8), "basis": (9, False, WHOLE),
}
TABLE_PADDING = 3  # cells a column of a rich-rendered Markdown table takes beside its text: padding and rule
TABLE_EDGE = 2  # and the table as a whole


def _column_defs(columns: list[str], short: dict[str, str] | None = None) -> tuple[ColumnDef, ...]:
    return tuple(ColumnDef(c, c, *_COLUMN_RANKS.get(c, (1, False, 8)), short=short if c == "device" else None)
                 for c in columns)


@dataclass
class Card:
    name: str
    version: int
    sections: list[Section]
    front_matter: dict[str, Any]

    # The renderings are what a terminal shows: every line and cell goes through ``safe_text`` (names, module paths,
    # device names and notes come from the registry, model files and device YAML). ``to_dict`` keeps the raw text:
    # JSON escapes it.
    def to_text(self) -> str:
        title = safe_text(f"{self.name} v{self.version}: model card")
        out = [title, "=" * len(title)]
        for s in self.sections:
            out += ["", s.title, "-" * len(s.title)]
            out += [f"- {safe_text(line)}" for line in s.lines]
            if s.table:
                out += [""] + _plain_table(*s.table)
        return "\n".join(out) + "\n"

    def to_markdown(self, level: int = 1, width: int | None = None, ellipsis: str = "…", dash: str = "—") -> str:
        """Markdown; with ``width`` (a terminal's cells), each table's columns are laid out to fit it
        (``services.columns``: numbers whole or hidden, devices abbreviated first, text cut with ``ellipsis``) and a
        line under the table names the hidden ones."""
        h = "#" * level
        out = [f"{h} {safe_text(self.name)} v{self.version}"]
        for s in self.sections:
            out += ["", f"{h}# {s.title}", ""]
            out += [f"- {safe_text(line)}" for line in s.lines]
            if s.table:
                columns, rows = s.table
                note = ""
                if width is not None:
                    columns, rows, note = _fitted_table(s, width, ellipsis, dash)
                out += [""] + _markdown_table(columns, rows)
                if note:
                    out += ["", f"*{note}*"]
        return "\n".join(out) + "\n"

    def to_huggingface(self) -> str:
        front = yaml.safe_dump(self.front_matter, sort_keys=False, allow_unicode=True).strip()
        return f"---\n{safe_text(front, newlines=True)}\n---\n\n" + self.to_markdown()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "front_matter": self.front_matter,
                "sections": [{"title": s.title, "lines": s.lines,
                              "table": None if s.table is None else {"columns": s.table[0], "rows": s.table[1]}}
                             for s in self.sections]}


def _plain_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    rows = [[safe_text(c) for c in r] for r in rows]
    widths = [max(len(str(c)), *(len(str(r[i])) for r in rows)) for i, c in enumerate(columns)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return [line(columns), line(["-" * w for w in widths])] + [line(r) for r in rows]


def _fitted_table(section: Section, width: int, ellipsis: str, dash: str
                  ) -> tuple[list[str], list[list[str]], str]:
    """A section's table laid out in ``width`` cells: its shown headers, rows and the 'hidden: ...' note."""
    columns, rows = section.table
    defs = section.columns or _column_defs(columns)
    # module paths lose their backticks here: a cut `path…` would leave one open and garble the rest of the row
    rows = [[safe_text(c[1:-1] if len(c) > 1 and c[0] == c[-1] == "`" else c) for c in r] for r in rows]
    out = plan(defs, rows, width - TABLE_EDGE, TABLE_PADDING)
    return headers(defs, out, ellipsis), [laid_out(defs, r, out, ellipsis) for r in rows], out.hidden_text(dash)


def _markdown_table(columns: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    return out + ["| " + " | ".join(safe_text(c).replace("|", "\\|") for c in r) + " |" for r in rows]


# ------------------------------------------------------------------------------------------------ number formats
# The card's figures are bare decimals (``plain``: no exponent, no "<0.1%"), so every one is found again in the record
# or a fit row; a missing figure in a table reads "-".

def count(n: int | float) -> str:
    """An exact count with thousands separators."""
    return fmt.exact(n)


def sig(x: float, digits: int = 3) -> str:
    """``x`` to ``digits`` significant digits, never in exponent notation."""
    return fmt.significant(x, digits, plain=True)


def pct(part: float, whole: float) -> str:
    return fmt.percent(part, whole, plain=True)


def _ms(x: float | None) -> str:
    return fmt.ms(x, plain=True, missing="-")


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


def _macs_text(macs: int) -> str:
    return f"{count(macs)} ({sig(macs / 1e9)} GMACs)" if macs >= 1e8 else f"{count(macs)} ({sig(macs / 1e6)} MMACs)"


# ------------------------------------------------------------------------------------------------ sections

def _what_it_is(record: Any, details: Any) -> Section:
    arch = record.architecture
    lines = [f"{record.name} v{record.version} is a {record.format_detail or record.format} file of "
             f"{count(record.size_bytes)} bytes, stored as {record.dtype} (sha256 {record.sha256[:12]})."]
    evidence = "; ".join(arch.evidence) or "no structural evidence recorded"
    if arch.family != "unknown" or arch.type != "unknown":
        task = f", task {arch.task}" if arch.task else ""
        article = "an" if arch.type[:1] in "aeiou" or arch.type in ("mlp", "rnn") else "a"
        lines.append(f"It is {article} {arch.type} model of the {arch.family} family{task} (evidence: {evidence}).")
    else:
        lines.append(f"Its architecture was not recognised (evidence: {evidence}).")
    census = list(_get(details, "census", None) or [])
    top = [n for n in census if n.path and "." not in n.path]
    if top:
        roles = [n.path for n in top if n.path.lower() in _ROLES]
        total = record.macs or 0
        parts = []
        for n in sorted(top, key=lambda n: -(n.macs or 0))[:6]:
            share = f", {pct(n.macs, total)} of MACs" if total and n.macs is not None else ""
            parts.append(f"`{n.path}` ({n.type}, {count(n.params)} params{share})")
        named = [f"a {r}" for r in roles]
        lead = (f"The census shows {', '.join(named[:-1])} and {named[-1]} at the top level" if len(roles) >= 2
                else "Top-level parts")
        lines.append(f"{lead}: {'; '.join(parts)} (census).")
    if record.input_shapes:
        outputs = fmt.shapes(record.output_shapes) if record.output_shapes else "unknown"
        lines.append(f"Input {fmt.shapes(record.input_shapes)}, "
                     f"{_SOURCES.get(record.input_shape_source, record.input_shape_source)}; output {outputs}.")
    return Section("What it is", lines)


def _size_and_cost(record: Any) -> Section:
    lines = [f"Parameters: {count(record.params)} ({sig(record.params / 1e6)} M)."]
    if record.macs is None:
        lines.append(f"MACs: unknown ({record.macs_null_reason or 'not computable'}).")
    else:
        lines.append(f"MACs (multiply-accumulates of conv, linear, matmul and attention): {_macs_text(record.macs)} "
                     f"per inference; FLOPs = 2 x MACs = {count(record.flops)}.")
    if record.other_flops is not None:
        lines.append(f"Other FLOPs (elementwise, normalisation, pooling, softmax; counted apart): "
                     f"{count(record.other_flops)}.")
    weights = f"Weights: {count(record.weight_bytes)} bytes ({sig(record.weight_bytes / 1e6)} MB) at {record.dtype}"
    if record.activation_bytes is not None:
        weights += (f"; peak live activations: {count(record.activation_bytes)} bytes "
                    f"({sig(record.activation_bytes / 1e6)} MB)")
    lines.append(weights + ".")
    if record.layers:
        layers = sorted(record.layers.items(), key=lambda kv: (-kv[1], kv[0]))
        lines.append("Layers by type: " + ", ".join(f"{t} {n}" for t, n in layers) + ".")
    return Section("Size and cost", lines)


def _where_macs_go(record: Any, details: Any) -> Section | None:
    costs = [c for c in (_get(details, "layer_costs", None) or []) if c.macs]
    total = record.macs
    if not costs or not total:
        return None
    by_type: dict[str, int] = {}
    for c in costs:
        by_type[c.type] = by_type.get(c.type, 0) + c.macs
    types = sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0]))
    lines = []
    first_type, first_macs = types[0]
    lines.append(f"{first_type} layers hold {pct(first_macs, total)} of the MACs ({count(first_macs)} of "
                 f"{count(total)}; per-layer costs).")
    if len(types) > 1:
        lines.append("Then: " + "; ".join(f"{t} {count(m)} ({pct(m, total)})" for t, m in types[1:TOP_TYPES])
                     + " (per-layer costs).")
    top = sorted(costs, key=lambda c: -c.macs)[:TOP_LAYERS]
    rows = [[f"`{c.name or '(root)'}`", c.type, count(c.macs), pct(c.macs, total),
             "-" if c.output_shape is None else fmt.shape(c.output_shape)] for c in top]
    lines.append(f"The largest layer, `{top[0].name or '(root)'}`, holds {pct(top[0].macs, total)} of the MACs "
                 f"(per-layer costs).")
    return Section("Where the MACs go", lines, (["layer", "type", "MACs", "share", "output"], rows))


def _bound_reason(row: FitRow) -> str:
    """Why the row has its bound, from the row's own times (and the intensity vs ridge point where they agree)."""
    bound = row.bound
    tc, tm = row.time_compute_ms, row.time_memory_ms
    ai, ridge = row.arithmetic_intensity, row.ridge_point
    split = "" if tc is None or tm is None else (f"layers limited by compute take {sig(tc)} ms, layers limited by "
                                                 f"memory {sig(tm)} ms")
    if bound in ("compute", "memory"):
        why = f"{bound}-bound: {split}" if split else f"{bound}-bound"
        if ai is not None and ridge is not None and (ai >= ridge) == (bound == "compute"):
            side = "above" if bound == "compute" else "below"
            why += f"; its arithmetic intensity, {sig(ai)} FLOP/B, is {side} the ridge point of {sig(ridge)} FLOP/B"
        return why
    if bound == "overhead" and row.overhead_ms is not None:
        fixed, s = f"the fixed time per call, t0 = {sig(row.overhead_ms)} ms,", "s"
        if row.op_overhead_ms and row.n_ops and row.time_overhead_ms is not None:
            fixed, s = (f"the fixed costs, t0 = {sig(row.overhead_ms)} ms per call plus {row.n_ops} operator "
                        f"launches at {sig(row.op_overhead_ms)} ms each ({sig(row.time_overhead_ms)} ms in "
                        "all),"), ""
        return (f"overhead-bound: {fixed} exceed{s} the time of its layers ({split})" if split else
                f"overhead-bound: {fixed.rstrip(',')} dominate{s}")
    if bound == "host-link":
        link = row.time_host_link_ms
        return "host-link-bound: weights that do not fit on chip stream over the host link" + (
            f" ({sig(link)} ms)" if link is not None else "")
    return f"{bound}-bound" if bound else "bound unknown"


def _device(r: FitRow) -> str:
    return r.hardware_name or r.hardware


def _where_it_runs(fits: list[FitRow], short: dict[str, str] | None = None) -> Section:
    predicted = [r for r in fits if r.predicted_latency_ms is not None]
    if not fits:
        return Section("Where it runs", ["No fit rows: the model has no MAC count, so no latency is predicted."])
    if not predicted:
        reasons = sorted({r.reason or "unknown" for r in fits})
        return Section("Where it runs", [f"No device gives a prediction ({'; '.join(reasons)})."])
    best: dict[str, FitRow] = {}
    for r in sorted(predicted, key=lambda r: r.predicted_latency_ms):
        best.setdefault(r.hardware, r)
    ranked = list(best.values())
    shown = ranked[:TOP_DEVICES]
    shown += [r for r in fits if r.measured_latency_ms is not None and r not in shown]
    launches = " + a cost per operator launch" if any(r.op_overhead_ms for r in shown) else ""
    lines = [f"Latencies are calibrated roofline predictions (t = t0{launches} + sum over layers of max(compute, "
             "memory) time), not measurements, unless a measured value is shown; the fastest mode and precision of each device "
             "is listed (fit rows)."]
    for r in ranked[:3]:
        lines.append(f"On {_device(r)} ({r.power_mode}, {r.precision}) the "
                     f"prediction is {sig(r.predicted_latency_ms)} ms{_interval(r)}, {sig(r.fps)} fps, above the "
                     f"roofline bound of {_ms(r.roofline_latency_ms)} ms; it is {_bound_reason(r)} (fit row).")
    for r in [r for r in fits if r.measured_latency_ms is not None]:
        n = r.measured_n or 0
        lines.append(f"Measured on {_device(r)} ({r.power_mode}, {r.precision}): "
                     f"{sig(r.measured_latency_ms)} ms against {_ms(r.predicted_latency_ms)} ms predicted "
                     f"(median of {n} stored measurement{'s' if n != 1 else ''}; fit row).")
    energy = [r for r in predicted if r.energy_mj is not None]
    if energy:
        e = min(energy, key=lambda r: r.energy_mj)
        lines.append(f"Least energy per inference: {sig(e.energy_mj)} mJ on "
                     f"{_device(e)} ({e.power_mode}, {e.precision}): "
                     f"{sig(e.power_w)} W x "
                     f"{sig(e.predicted_latency_ms)} ms (fit row).")
    no_fit = sorted({_device(r) for r in fits if r.fits_memory is False})
    unknown = sorted({_device(r) for r in fits if r.fits_memory is None})
    if no_fit:
        lines.append(f"It does not fit the memory of: {', '.join(no_fit)} (fits_memory in the fit rows).")
    else:
        lines.append("It fits the memory of every device that states a capacity (fits_memory in the fit rows)"
                     + (f"; unknown for {', '.join(unknown)}." if unknown else "."))
    kinds = sorted({r.calibration or "none" for r in shown})
    lines.append("Intervals are the 10th-90th percentile of the calibration's residuals (leave-one-out for "
                 "published fits); basis: exact = calibrated on this device and mode, sibling = fitted on a device "
                 "of the same family and scaled by clocks and bandwidth, defaults = no calibration of the family "
                 "(basis_detail in the fit rows).")
    if "default" in kinds:
        lines.append("Rows marked 'default' use the device type's default efficiencies, not a calibration: treat "
                     "them as rough (calibration column).")
    rows = [[_device(r), r.power_mode, r.precision,
             _ms(r.predicted_latency_ms), r.interval_text(3).replace(fmt.NA, "-"), _ms(r.roofline_latency_ms), _ms(r.measured_latency_ms),
             fmt.significant(r.fps, plain=True, missing="-"), r.bound or "-",
             {True: "yes", False: "NO", None: "?"}[r.fits_memory],
             r.calibration or "-", r.basis or "-"] for r in shown]
    columns = ["device", "mode", "precision", "predicted ms", "interval ms", "roofline ms", "measured ms", "fps",
               "bound", "fits", "calibration", "basis"]
    names = {safe_text(_device(r)): short[r.hardware] for r in shown if short and r.hardware in short}
    return Section("Where it runs", lines, (columns, rows), _column_defs(columns, names))


def _interval(r: FitRow) -> str:
    """' (likely 9.8-15.1 ms, basis sibling)' or '' without an interval."""
    if r.interval_low_ms is None or r.interval_high_ms is None:
        return ""
    return f" (likely {r.interval_text(3)} ms, basis {r.basis})"


def _caveats(record: Any) -> Section:
    lines = []
    if record.input_shape_source == "inferred":
        shapes = fmt.shapes(record.input_shapes) if record.input_shapes else "unknown"
        lines.append(f"The input shape {shapes} was inferred, not read from the file: every count scales with it "
                     f"(re-register with --input-shape to change it).")
    elif record.input_shape_source == "none":
        lines.append("No input shape is known: MACs, activations and latencies could not be computed.")
    if record.macs is None:
        lines.append(f"MACs are missing: {record.macs_null_reason or 'the analysis could not count them'}.")
    elif not record.macs_complete:
        lines.append("MACs are incomplete: some parts were not counted, so counts and latencies are lower bounds "
                     "(macs_complete is false).")
    for u in record.uncounted:
        lines.append(f"Not counted: `{u.module}`" + (f" ({u.op})" if u.op else "") + f": {u.reason}.")
    batch_norms = sum(n for t, n in record.layers.items() if "batchnorm" in t.lower())
    if record.bn_folded:
        lines.append("Batch norms are folded into the convolutions in this file (bn_folded).")
    elif batch_norms:
        lines.append(f"Batch norms are separate layers here ({batch_norms} of them; layer census): their bytes count "
                     f"in the roofline, and a runtime that folds them moves fewer bytes.")
    for note in record.notes:
        lines.append(f"Analyser note: {note}")
    if not lines:
        lines.append("None recorded: the shape came from the file or the user and every part was counted.")
    return Section("Caveats", lines)


def _front_matter(record: Any) -> dict[str, Any]:
    arch = record.architecture
    tags = ["embodied-ai"] + [t for t in (arch.type, arch.family, arch.task) if t and t != "unknown"]
    front: dict[str, Any] = {"tags": list(dict.fromkeys(tags))}
    if arch.task in _PIPELINE:
        front["pipeline_tag"] = _PIPELINE[arch.task]
    front["embodied_ai"] = {
        "name": record.name, "version": record.version, "format": record.format, "sha256": record.sha256,
        "dtype": record.dtype, "params": record.params, "macs": record.macs, "flops": record.flops,
        "weight_bytes": record.weight_bytes, "activation_bytes": record.activation_bytes,
        "input_shapes": record.input_shapes, "input_shape_source": record.input_shape_source,
        "architecture": {"type": arch.type, "family": arch.family, "task": arch.task},
        "conventions": "macs = multiply-accumulates of conv/linear/matmul/attention; flops = 2 x macs",
    }
    return front


def build_card(record: Any, details: Any, fits: list[FitRow], generation: Section | None = None,
               short: dict[str, str] | None = None) -> Card:
    """The card of ``record`` (a ModelRecord) with its ``details`` (ModelDetails or None) and its fit rows;
    ``generation``: a decoder transformer's generation section (``generation_section``); ``short``: device id ->
    short name, for the device column of a narrow terminal (``to_markdown(width=...)``)."""
    sections = [_what_it_is(record, details), _size_and_cost(record)]
    macs = _where_macs_go(record, details)
    if macs is not None:
        sections.append(macs)
    sections.append(_where_it_runs(list(fits), short))
    if generation is not None:
        sections.append(generation)
    sections.append(_caveats(record))
    return Card(name=record.name, version=record.version, sections=sections, front_matter=_front_matter(record))


def model_card(db, name: str, version: int | None = None) -> Card:
    """The grounded model card of a registered model: its record, details and fit rows on every device."""
    from embodied_tui.services.fit import fit_rows
    from embodied_tui.services.hardware import registry
    from embodied_tui.services.target import device_short_names

    reg = registry(db)
    record = resolve(reg, name, version)  # NAME, NAME@3 or NAME@alias
    details = reg.details(record)
    fits = fit_rows(reg, record.name, version=record.version) if record.macs is not None else []
    return build_card(record, details, fits, generation_section(reg, record, fits), device_short_names(reg))


def generation_section(reg: Any, record: Any, fits: list[FitRow]) -> Section | None:
    """A decoder transformer's generation on the (at most 3) devices its one-pass fit ranks fastest: the registered
    token count as the prompt (P), then ``CARD_NEW_TOKENS`` new tokens (K), each device's fastest mode x precision
    (`embodied-ai fit NAME --hw ID --prompt-tokens P --new-tokens K`); None for any other model."""
    if getattr(record, "transformer", None) is None:
        return None
    from embodied_tui.errors import UserError
    from embodied_tui.services.fit import FitContext, fit_record
    from embodied_tui.services.fit_llm import NotADecoder

    shape = record.input_shapes[0] if record.input_shapes else []
    prompt = shape[1] if len(shape) == 2 else CARD_PROMPT_TOKENS
    ranked = list(dict.fromkeys(r.hardware for r in sorted(
        (r for r in fits if r.predicted_latency_ms is not None), key=lambda r: r.predicted_latency_ms)))[:3]
    ctx = FitContext.open(reg)
    rows = []
    try:
        for hw in ranked:
            found = fit_record(ctx, record, hw=hw, prompt_tokens=prompt, new_tokens=CARD_NEW_TOKENS)
            rows += [r for r in found if r.predicted_latency_ms is not None][:1]
    except NotADecoder:
        return None
    except UserError as exc:
        return Section("Generation", [f"No generation fit: {exc}"])
    lines = [f"A generation of {CARD_NEW_TOKENS} new tokens after a {prompt}-token prompt: prefill of the prompt "
             "from an empty KV cache, then one decode pass per new token (the mean per token shown); total = "
             "prefill + K x decode; KV cache in fp16 at the final context; int8/int4 are weight-only (perf.phases "
             "rooflines with efficiencies fitted to published LLM rows; fit rows with --prompt-tokens/--new-tokens)."]
    for r in sorted(rows, key=lambda r: r.predicted_latency_ms):
        lines.append(f"On {_device(r)} ({r.power_mode}, {r.precision}): prefill {sig(r.prefill_ms)} ms + "
                     f"{CARD_NEW_TOKENS} x {sig(r.decode_ms_per_token)} ms per token = {sig(r.predicted_latency_ms)} "
                     f"ms; KV cache {fmt.nbytes(r.kv_cache_bytes)} at {prompt + CARD_NEW_TOKENS} tokens; weights + KV "
                     f"cache {'fit' if r.fits_memory else 'do not fit' if r.fits_memory is False else 'unknown'} "
                     "(fit row).")
    if not rows:
        lines.append("No device among the fastest states the peak and bandwidth a generation fit needs.")
    return Section("Generation", lines)
