"""`embodied-ai model ...`: analyse model files and keep them in the registry.

Numbers: params; MACs = multiply-accumulates of conv/linear/matmul/attention; FLOPs = 2 x MACs; other FLOPs =
elementwise/normalisation, counted apart; bytes at the model's stored dtype. Shapes say where they came from
(file / user / inferred).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click

from embodied_tui import units as fmt
from embodied_tui.commands.output import confirm, console, json_bytes, plain, print_json
from embodied_tui.data.hardware import PRECISIONS

_INPUT_SHAPE_HELP = ("Input shape, e.g. 1,3,640,640 (or 1x3x640x640); add a dtype after ':' for token ids or masks, "
                     "e.g. 1,128:int64. Repeat the option, or separate with ';', for models with several inputs. "
                     "Overrides the file's own shapes.")
_INPUT_DTYPE_HELP = ("dtype of each --input-shape, in order (int64, int32, float32, float16, bfloat16, bool, ...); "
                     "repeatable. Unstated: the file's, else float32, else int64 for inputs that feed an embedding.")
_FORMAT_SHORT = {"exported_program": "export", "torchscript": "torchscript", "state_dict": "state_dict"}


def _stderr():
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _say(text: str) -> None:
    """One line (ours, with registry text in it), escaped."""
    console().print(plain(text), soft_wrap=True)


def _macs_word(n: int | None) -> str:
    """'1.81G MACs', '512 MACs', 'unknown MACs'."""
    return "unknown MACs" if n is None else f"{fmt.count(n)} MACs"


class _Rows:
    """A rich table whose cells are escaped text (``plain``): registry and file text is shown, never interpreted."""

    def __init__(self, table) -> None:
        self.table = table

    def add_row(self, *cells) -> None:
        self.table.add_row(*(plain(c) for c in cells))

    def __rich__(self):
        return self.table


def _table(title: str | None = None):
    from rich import box
    from rich.table import Table

    return Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False,
                 show_edge=False)


def _kv_table():
    from rich.table import Table

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    return _Rows(table)


def _progress_status():
    """A spinner on stderr while analysing; yields the progress callback analyze_file calls."""
    status = _stderr().status("analysing ...", spinner="dots")

    def update(stage: str, fraction: float) -> None:
        status.update(f"{stage} ... {fraction:.0%}")
    return status, update


def _summary_rows(table, a) -> None:
    """Rows shared by `analyze` (an Analysis) and `show` (a ModelRecord): what the model is and what it costs."""
    arch = a.architecture
    table.add_row("format", a.format_detail or a.format)
    table.add_row("file", f"{a.path}  ({fmt.nbytes(a.size_bytes)})")
    if a.external_data:
        table.add_row("external data", f"{', '.join(a.external_data)}  ({fmt.nbytes(a.external_data_bytes)})")
    table.add_row("sha256", a.sha256)
    family = arch.family + (f" ({arch.task})" if arch.task else "")
    table.add_row("architecture", f"{arch.type}, {family}")
    for item in arch.evidence[:4]:
        table.add_row("", f"- {item}")
    table.add_row("params", f"{fmt.count(a.params)}  ({fmt.exact(a.params)})")
    if a.macs is None:
        table.add_row("MACs", f"unknown: {a.macs_null_reason or 'not computable'}")
    else:
        note = "" if a.macs_complete else "  (incomplete: see uncounted)"
        table.add_row("MACs", f"{fmt.count(a.macs)}  ({fmt.exact(a.macs)}; conv/linear/matmul/attention){note}")
        table.add_row("FLOPs", f"{fmt.count(a.flops)}  (2 x MACs)")
    for sc in a.scaling or ():
        where = f"'{sc.dim}'" + (f" ({sc.input})" if sc.input else "")
        table.add_row("MACs(n)", f"{fmt.quadratic(sc.macs_const, sc.macs_per_token, sc.macs_per_token_sq)}  for n = "
                                 f"{where}, used n = {sc.used}; {sc.method}")
    if a.transformer is not None:
        t = a.transformer
        moe = f", {t.experts} experts (top {t.experts_per_token})" if t.experts else ""
        table.add_row("transformer", f"{t.model_type}: {t.layers} layers, hidden {t.hidden}, {t.heads} heads "
                                     f"({t.kv_heads} KV) of {t.head_dim}{moe}; KV cache "
                                     f"{fmt.nbytes(t.kv_cache_bytes_per_token)}/token ({a.dtype})")
    if a.other_flops is not None:
        table.add_row("other FLOPs", f"{fmt.count(a.other_flops)}  (elementwise, normalisation, pooling)")
    table.add_row("weights", f"{fmt.nbytes(a.weight_bytes)}  ({a.dtype})")
    act = a.activation_bytes
    table.add_row("activations", "unknown" if act is None else f"{fmt.nbytes(act)} peak live ({a.dtype})")
    table.add_row("inputs", f"{fmt.shapes(a.input_shapes, a.input_symbols)}  ({a.input_shape_source})")
    table.add_row("outputs", fmt.shapes(a.output_shapes))
    if a.layers:
        top = sorted(a.layers.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ", ".join(f"{k} {v}" for k, v in top[:8]) + (f", +{len(top) - 8} types" if len(top) > 8 else "")
        table.add_row("layers", shown)
    for u in a.uncounted:
        table.add_row("uncounted", f"{u.module}{' ' + u.op if u.op else ''}: {u.reason}")
    for note in a.notes:
        table.add_row("note", note)


def _census_table(census) -> object:
    table = _Rows(_table("census (module tree)"))
    table.table.add_column("module", overflow="fold")
    table.table.add_column("type", overflow="ellipsis", max_width=18)
    table.table.add_column("params", justify="right")
    table.table.add_column("MACs", justify="right")
    table.table.add_column("output", overflow="ellipsis", max_width=16)
    for node in census:
        depth = node.path.count(".") + 1 if node.path else 0
        label = "(model)" if not node.path else "  " * depth + node.path.rsplit(".", 1)[-1]
        table.add_row(label, node.type, fmt.count(node.params), fmt.count(node.macs), fmt.shape(node.output_shape))
    return table


@click.group("model")
def model() -> None:
    """Analyse model files and keep them in the registry."""


# ------------------------------------------------------------------------------------------------ register / analyze
@model.command("register")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", "-n", help="Registry name (default: the file name up to its first dot; a model folder's own name).")
@click.option("--input-shape", "input_shape", multiple=True, help=_INPUT_SHAPE_HELP)
@click.option("--input-dtype", "input_dtype", multiple=True, help=_INPUT_DTYPE_HELP)
@click.option("--tag", "tags", multiple=True, help="A tag: a word (robot) or key=value (site=lab). Repeatable.")
@click.option("--description", "-d", help="Free-text description.")
@click.option("--trust-code", is_flag=True, help="Allow full pickles, which run code from the file when loaded.")
@click.option("--store", "store", is_flag=False, flag_value="", default=None, metavar="[DIR]",
              help="Also copy the file (and its ONNX external data) into the model store DIR; --store alone: the "
                   "registry's store (`model store set`), which registering uses anyway when one is set.")
@click.option("--no-store", is_flag=True, help="Do not copy the file into the registry's model store.")
@click.option("--json", "as_json", is_flag=True, help="Print {status, record} as JSON (and stored, with --store).")
@click.pass_context
def register_cmd(ctx, path: Path, name, input_shape, input_dtype, tags, description, trust_code, store, no_store,
                 as_json) -> None:
    """Analyse PATH (a model file, a Hugging Face model folder, its config.json or shard index) and register it. The
    same bytes again change nothing; other bytes under the same name become a
    new version."""
    from embodied_tui.analysis.api import with_dtypes
    from embodied_tui.errors import UserError
    from embodied_tui.services import model_store
    from embodied_tui.services import models as svc
    from embodied_tui.services.registration import default_name

    shapes = with_dtypes(svc.parse_input_shapes(input_shape), input_dtype)
    name = name or default_name(path)
    target = model_store.store_for_register(ctx.obj["db"], store, no_store)  # a bad store fails before the analysis
    status_ui, progress = _progress_status()
    with status_ui:
        record, status = svc.register(path, name=name, input_shape=shapes, tags=svc.parse_tags(tags),
                                      description=description, trust_code=trust_code, db=ctx.obj["db"],
                                      progress=progress)
    stored = None
    if target is not None:
        try:
            stored = model_store.push(f"{record.name}@{record.version}", ctx.obj["db"], store=target.location)
        except UserError as exc:
            raise UserError(f"registered {record.name} v{record.version} ({status}) but did not store it: {exc}")
    if as_json:
        print_json({"status": status, "record": svc.record_json(record),
                    **({"stored": stored.as_json()} if stored else {})})
        return
    if status == "unchanged":
        _say(f"unchanged: {record.name} v{record.version} already has these exact bytes (sha256 "
             f"{record.sha256[:12]}); nothing registered")
    elif status == "new_version":
        _say(f"new version: {record.name} v{record.version} (the bytes differ from v{record.version - 1})")
    elif status == "repaired":
        _say(f"repaired: restored the details (census, layer costs) of {record.name} v{record.version}")
    else:
        _say(f"added: {record.name} v{record.version}")
    arch = record.architecture
    kind = arch.family if arch.family == arch.type else f"{arch.family} {arch.type}"
    _say(f"  {kind}, {fmt.count(record.params)} params, "
         f"{_macs_word(record.macs)}, input {fmt.shapes(record.input_shapes, record.input_symbols)} "
         f"({record.input_shape_source}), {record.format}")
    if stored is not None:
        _stored_line(stored)


@model.command("analyze")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--input-shape", "input_shape", multiple=True, help=_INPUT_SHAPE_HELP)
@click.option("--input-dtype", "input_dtype", multiple=True, help=_INPUT_DTYPE_HELP)
@click.option("--trust-code", is_flag=True, help="Allow full pickles, which run code from the file when loaded.")
@click.option("--also-thop", is_flag=True, help="Also count with thop (a second opinion) and explain the difference.")
@click.option("--precision", type=click.Choice(PRECISIONS),
              help="Also give weight, activation and traffic bytes at this precision (counts are at the stored dtype).")
@click.option("--json", "as_json", is_flag=True, help="Print the whole analysis (with census and layer costs) as JSON.")
def analyze_cmd(path: Path, input_shape, input_dtype, trust_code, also_thop, precision, as_json) -> None:
    """Analyse PATH (a model file, a Hugging Face model folder, its config.json or shard index) and print what it is,
    without registering it."""
    from embodied_tui.analysis.api import with_dtypes
    from embodied_tui.services import models as svc

    shapes = with_dtypes(svc.parse_input_shapes(input_shape), input_dtype)
    status_ui, progress = _progress_status()
    with status_ui:
        analysis = svc.analyze(path, input_shape=shapes, trust_code=trust_code, progress=progress)
        thop = None
        if also_thop:
            status_ui.update("counting with thop ...")
            from embodied_tui.analysis.thop_compare import thop_opinion

            thop = thop_opinion(path, analysis, trust_code=trust_code)
    at = None
    if precision:
        from embodied_tui.perf.precision import bytes_at_precision

        at = bytes_at_precision(analysis, precision)
    if as_json:
        out = analysis.model_dump(mode="json")
        if thop is not None:
            out["thop"] = thop
        if at is not None:
            out["bytes_at_precision"] = at
        print_json(out)
        return
    table = _kv_table()
    _summary_rows(table, analysis)
    if at is not None:
        table.add_row(f"at {precision}", f"weights {fmt.nbytes(at['weight_bytes'])}, activations "
                      f"{fmt.nbytes(at['activation_bytes'])} peak, traffic {fmt.nbytes(at['unfused_bytes'])} "
                      f"unfused / {fmt.nbytes(at['fused_bytes'])} fused "
                      f"({fmt.number(at['bytes_per_element'])} B per element)")
    if thop is not None:
        if "unavailable" in thop:
            table.add_row("thop", f"not run: {thop['unavailable']}")
        else:
            ratio = f" ({thop['ratio']:.3f} x ours)" if thop.get("ratio") else ""
            table.add_row("thop", f"{_macs_word(thop['thop_macs'])}{ratio}: {thop['explanation']}")
    out = console()
    out.print(plain(f"{path.name}: analysis (not registered)"))
    out.print(table)


# ------------------------------------------------------------------------------------------------ reading
@model.command("list")
@click.option("--filter", "-f", "expr", help="Filter, e.g. 'family = yolo AND params < 10M' (see README).")
@click.option("--sort", "-s", "sort_key", help="Sort field; prefix '-' for descending (e.g. -params).")
@click.option("--all-versions", "-a", is_flag=True, help="Every version, not only the latest of each name.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of records.")
@click.pass_context
def list_cmd(ctx, expr, sort_key, all_versions, as_json) -> None:
    """Registered models (latest version of each)."""
    from embodied_tui.services import models as svc

    records = svc.list_models(ctx.obj["db"], filter=expr, sort=sort_key, all_versions=all_versions)
    if as_json:
        sys.stdout.flush()
        sys.stdout.buffer.write(json_bytes(svc.records_json_bytes(records)))
        sys.stdout.buffer.flush()
        return
    if not records:
        if expr:
            _say(f"no models match {expr!r}")
        else:
            _say(f"no models in {svc.registry(ctx.obj['db']).path}; add one with "
                 f"`embodied-ai model register PATH --name NAME` (or `embodied-ai demo`)")
        return
    safe = fmt.safe_text
    rows = [(safe(r.name), str(r.version), safe(r.architecture.family), fmt.count(r.params), fmt.count(r.macs),
             fmt.shapes(r.input_shapes, r.input_symbols), safe(_FORMAT_SHORT.get(r.format, r.format)),
             fmt.tags(r.tags)) for r in records]
    out = console()
    headers = ("name", "v", "family", "params", "MACs", "input", "format", "tags")
    # shrink order when the terminal is narrow: tags, then name, input, family, format (never the numbers)
    widths = _fit_widths(headers, rows, out.width, shrink=((7, 6), (0, 12), (5, 9), (2, 6), (6, 6), (0, 8), (7, 4)))
    table = _table()
    table.padding = (0, 0, 0, 0)  # the box's blank divider is the one space between columns _fit_widths counts
    for header, width in zip(headers, widths):
        table.add_column(header, width=width, no_wrap=True, overflow="ellipsis",
                         justify="right" if header in ("v", "params", "MACs") else "left")
    for row in rows:
        table.add_row(*(plain(c) for c in row))
    out.print(table)


def _fit_widths(headers, rows, total: int, shrink) -> list[int]:
    """Column widths that fit ``total`` cells (one space between columns): each column's widest cell, then narrowed
    in ``shrink`` order ((column, narrowest), ...) until the table fits."""
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    excess = sum(widths) + len(widths) - 1 - total
    for col, narrowest in shrink:
        if excess <= 0:
            break
        cut = min(excess, max(0, widths[col] - narrowest))
        widths[col] -= cut
        excess -= cut
    return widths


@model.command("show")
@click.argument("name")
@click.option("--version", "-v", "version", type=int, help="Version number (default: the latest).")
@click.option("--census", is_flag=True, help="Also print the module tree with per-node params, MACs and shapes.")
@click.option("--json", "as_json", is_flag=True, help="Print the record, with census and layer_costs, as JSON.")
@click.pass_context
def show_cmd(ctx, name, version, census, as_json) -> None:
    """One registered model: what it is, what it costs, where it came from."""
    from embodied_tui.services import models as svc
    from embodied_tui.services.lineage import model_lineage

    record, details = svc.show(name, version, ctx.obj["db"])
    history = model_lineage(ctx.obj["db"], record)
    if as_json:
        print_json({**svc.record_json(record, details, with_details=True),
                    "aliases": [e.model_dump(mode="json") for e in history["aliases"]],
                    "measurements": [m.model_dump(mode="json") for m in history["measurements"]]})
        return
    versions = [r.version for r in svc.registry(ctx.obj["db"]).versions(record.name)]
    table = _kv_table()
    table.add_row("name", f"{record.name}  v{record.version} of {', '.join(map(str, versions))}")
    table.add_row("registered", record.registered_at + (f"  by {_who(record.lineage)}" if record.lineage else ""))
    for event in history["aliases"]:
        moved = f", moved from v{event.from_version}" if event.from_version else ""
        table.add_row("alias", f"{event.alias}  (set {_utc(event.lineage.at)} UTC by {_who(event.lineage)}{moved})")
    if record.tags:
        table.add_row("tags", fmt.tags(record.tags))
    if record.description:
        table.add_row("description", record.description)
    _summary_rows(table, record)
    _measurement_rows(table, history["measurements"])
    out = console()
    out.print(table)
    if census:
        if details is None or not details.census:
            _say("no census stored for this model")
        else:
            out.print(_census_table(details.census))


def _utc(at: str) -> str:
    """'2026-05-01T09:30:00+00:00' -> '2026-05-01 09:30:00' (columns headed UTC)."""
    return at.replace("T", " ").removesuffix("+00:00")


def _who(lineage) -> str:
    """'alice on ws-12' (+ the runtime that ran the model, when one did)."""
    ran = " ".join(x for x in (lineage.runtime, lineage.runtime_version) if x)
    ran += f" ({lineage.provider})" if lineage.provider else ""
    return f"{lineage.user} on {lineage.host}" + (f" with {ran}" if ran else "")


def _measurement_rows(table, measurements) -> None:
    """`model show`: each measurement of this version, oldest first, with where it came from and who stored it.
    Measurements are never edited: a correction is a later row."""
    if not measurements:
        table.add_row("measured", "no measurements (`embodied-ai bench NAME` or `embodied-ai measurement add`)")
        return
    for m in measurements:
        batch = f", batch {m.batch}" if m.batch != 1 else ""
        by = f"by {_who(m.lineage)}" if m.lineage else "by (not recorded)"
        table.add_row("measured", f"{fmt.number(m.latency_ms, 4)} ms on {m.hardware} ({m.power_mode}, {m.precision}, "
                                  f"{m.runtime}{batch}) at {_utc(m.measured_at)} UTC {by}; source: {m.source}"
                                  + (f"; timed: {m.timed}" if m.timed else ""))


# ------------------------------------------------------------------------------------------------ changing
@model.command("remove")
@click.argument("name")
@click.option("--version", "-v", "version", type=int, help="Remove only this version (default: every version).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
@click.option("--force", is_flag=True, help="Also remove the aliases that point at the version(s) (kept in their "
                                            "history); without it, an aliased version is not removed.")
@click.pass_context
def remove_cmd(ctx, name, version, yes, force) -> None:
    """Remove a model (every version) or one version of it (--version N, or NAME@N / NAME@ALIAS)."""
    from embodied_tui.data.names import split_ref
    from embodied_tui.errors import UserError
    from embodied_tui.services import aliases
    from embodied_tui.services import models as svc

    reg = svc.registry(ctx.obj["db"])
    if version is not None or split_ref(name)[1] is not None:
        found = [svc.get(name, version, reg)]
        name, version = found[0].name, found[0].version
    else:
        found = reg.versions(name) or [reg.get(name)]
    if not force:  # refused before asking: an aliased version stays unless --force
        aliases.guard_removal(reg, name, [r.version for r in found], force=False)
    what = f"{name} v{version}" if version is not None else f"{name} ({len(found)} version{'s' * (len(found) > 1)})"
    if not yes:
        answer = confirm(f"remove {what} from {reg.path}?")
        if answer is None:
            raise UserError(f"not removing {what}: no answer on standard input; pass --yes to remove without asking")
        if not answer:
            _say("nothing removed")
            ctx.exit(1)
    count = svc.remove(name, version, reg, force=force)
    _say(f"removed {count} version{'s' * (count != 1)} of {name}")


@model.command("update")
@click.argument("name")
@click.option("--tag", "tags", multiple=True, help="Add or change a tag (robot, site=lab). Repeatable.")
@click.option("--untag", multiple=True, help="Remove a tag by key. Repeatable.")
@click.option("--description", "-d", help="Replace the description.")
@click.option("--version", "-v", "version", type=int, help="Change only this version (default: every version).")
@click.pass_context
def update_cmd(ctx, name, tags, untag, description, version) -> None:
    """Change a model's tags or description."""
    from embodied_tui.services import models as svc

    changed = svc.update(name, tags=svc.parse_tags(tags), untag=untag, description=description, version=version,
                         db=ctx.obj["db"])
    latest = changed[-1]
    _say(f"updated {name} ({len(changed)} version{'s' * (len(changed) != 1)}): tags "
         f"{fmt.tags(latest.tags) or '(none)'}" + (f"; description {latest.description!r}" if description is not None
                                                   else ""))


@model.command("export")
@click.argument("names", nargs=-1)
@click.option("--output", "-o", "out", required=True, type=click.Path(path_type=Path),
              help="Bundle file to write (JSON).")
@click.pass_context
def export_cmd(ctx, names, out: Path) -> None:
    """Write models (all, or NAMES; every version) with hashes, tags and details to a JSON bundle."""
    from embodied_tui.services import models as svc

    count = svc.export_bundle(out, names, ctx.obj["db"])
    _say(f"exported {count} model version{'s' * (count != 1)} to {out}")


@model.command("import")
@click.argument("bundle", type=click.Path(path_type=Path))
@click.pass_context
def import_cmd(ctx, bundle: Path) -> None:
    """Add the models of a bundle made by `model export`. Running it again adds nothing."""
    from embodied_tui.services import models as svc

    results = svc.import_bundle(bundle, ctx.obj["db"])
    counts = {s: sum(1 for _, st in results if st == s) for s in ("added", "renumbered", "unchanged")}
    _say(f"imported {counts['added'] + counts['renumbered']} model version(s) from {bundle} "
         f"({counts['renumbered']} renumbered to a free version); {counts['unchanged']} already present")
    for record, st in results:
        if st == "renumbered":
            _say(f"  {record.name}: stored as v{record.version} (its version number was taken)")


# ------------------------------------------------------------------------------------------------ aliases
@model.group("alias")
def alias_group() -> None:
    """Named pointers to a version (production, staging): NAME@ALIAS works wherever a model name does."""


@alias_group.command("set")
@click.argument("ref", metavar="NAME@VERSION")
@click.argument("alias")
@click.option("--json", "as_json", is_flag=True, help="Print {status, event} as JSON.")
@click.pass_context
def alias_set_cmd(ctx, ref, alias, as_json) -> None:
    """Point ALIAS at a version: NAME@3 (NAME alone: its latest version; NAME@staging: where another alias points).
    Moving an alias keeps its history (`model alias list --history`)."""
    from embodied_tui.services import aliases

    event, status = aliases.set_alias(ctx.obj["db"], ref, alias)
    if as_json:
        print_json({"status": status, "event": event.model_dump(mode="json")})
        return
    if status == "unchanged":
        _say(f"unchanged: {event.model}@{event.alias} already points at v{event.version}")
    elif status == "moved":
        _say(f"moved: {event.model}@{event.alias} -> v{event.version} (was v{event.from_version})")
    else:
        _say(f"set: {event.model}@{event.alias} -> v{event.version}")


@alias_group.command("rm")
@click.argument("name")
@click.argument("alias")
@click.option("--json", "as_json", is_flag=True, help="Print the event as JSON.")
@click.pass_context
def alias_rm_cmd(ctx, name, alias, as_json) -> None:
    """Remove ALIAS of model NAME (the model is untouched; the alias's history is kept)."""
    from embodied_tui.services import aliases

    event = aliases.remove_alias(ctx.obj["db"], name, alias)
    if as_json:
        print_json(event.model_dump(mode="json"))
        return
    _say(f"removed: {event.model}@{event.alias} (pointed at v{event.from_version})")


@alias_group.command("list")
@click.argument("name", required=False)
@click.option("--history", is_flag=True, help="Every move of every alias (who, when, host, from and to version).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of alias events.")
@click.pass_context
def alias_list_cmd(ctx, name, history, as_json) -> None:
    """The aliases in force (of model NAME), or with --history every set and rm, oldest first."""
    from embodied_tui.data.names import split_ref
    from embodied_tui.services import aliases
    from embodied_tui.services import models as svc

    if name is not None:
        name = split_ref(name)[0]
        if not aliases.history(ctx.obj["db"], name):
            svc.registry(ctx.obj["db"]).get(name)  # no such model: NotFound with close names
    events = aliases.history(ctx.obj["db"], name) if history else aliases.current(ctx.obj["db"], name)
    if as_json:
        print_json([e.model_dump(mode="json") for e in events])
        return
    if not events:
        _say(f"no aliases{' of ' + name if name else ''}; set one with `embodied-ai model alias set NAME@VERSION ALIAS`")
        return
    table = _Rows(_table())
    if history:
        for header in ("#", "when (UTC)", "who", "host", "model", "alias", "change"):
            table.table.add_column(header, overflow="fold", justify="right" if header == "#" else "left")
        for e in events:
            was = f"v{e.from_version}" if e.from_version else "(new)"
            change = f"{was} -> v{e.version}" if e.event == "set" else f"v{e.from_version} -> (removed)"
            table.add_row(str(e.seq), _utc(e.lineage.at), e.lineage.user, e.lineage.host, e.model, e.alias,
                          change + (f": {e.reason}" if e.reason else ""))
    else:
        for header in ("model", "alias", "v", "set (UTC)", "by"):
            table.table.add_column(header, overflow="fold", justify="right" if header == "v" else "left")
        for e in events:
            table.add_row(e.model, e.alias, str(e.version), _utc(e.lineage.at), _who(e.lineage))
    console().print(table)


# ------------------------------------------------------------------------------------------------ the model store
def _stored_line(done) -> None:
    new = sum(1 for f in done.files if f.status == "stored")
    size = fmt.nbytes(sum(f.size_bytes for f in done.files))
    _say(f"stored: {done.record.name} v{done.record.version} in {done.store} ({len(done.files)} "
         f"file{'s' * (len(done.files) != 1)}, {size}; {new} new, {len(done.files) - new} already there; manifest "
         f"sha256 {done.manifest[:12]})")


@model.command("push")
@click.argument("ref", metavar="NAME[@VERSION|@ALIAS]")
@click.option("--store", "store", metavar="DIR", help="The model store (default: the registry's, `model store set`).")
@click.option("--json", "as_json", is_flag=True, help="Print what was stored as JSON.")
@click.pass_context
def push_cmd(ctx, ref, store, as_json) -> None:
    """Copy a registered model's file (and its ONNX external data) into the model store, addressed by SHA-256. The
    file is hashed again first: one that changed since it was registered is refused."""
    from embodied_tui.services import model_store

    done = model_store.push(ref, ctx.obj["db"], store=store)
    if as_json:
        print_json(done.as_json())
        return
    _stored_line(done)


@model.command("pull")
@click.argument("ref", metavar="NAME[@VERSION|@ALIAS]")
@click.option("--to", "to", type=click.Path(path_type=Path), metavar="DIR",
              help="Folder to write the files into (default: the current directory).")
@click.option("--store", "store", metavar="DIR", help="The model store (default: the registry's, `model store set`).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@click.pass_context
def pull_cmd(ctx, ref, to, store, as_json) -> None:
    """Fetch a registered model's files from the model store under their original names, every byte checked
    against its SHA-256. A file already there with other bytes is never overwritten."""
    from embodied_tui.services import model_store

    done = model_store.pull(ref, ctx.obj["db"], to=to, store=store)
    if as_json:
        print_json(done.as_json())
        return
    wrote = sum(1 for f in done.files if f.status == "written")
    _say(f"pulled: {done.record.name} v{done.record.version} into {done.folder} ({wrote} written, "
         f"{len(done.files) - wrote} already there; sha256 verified)")
    for f in done.files:
        _say(f"  {f.name}  {fmt.nbytes(f.size_bytes)}  sha256 {f.sha256[:12]}  {f.status}")


@model.group("store")
def store_group() -> None:
    """The registry's model store: where `model push`, `model pull` and `model register` keep model files."""


@store_group.command("set")
@click.argument("location", metavar="DIR")
@click.pass_context
def store_set_cmd(ctx, location) -> None:
    """Use the folder DIR (local, or a shared mount) as this registry's model store; it is created if missing."""
    from embodied_tui.services import model_store

    chosen = model_store.set_store(ctx.obj["db"], location)
    _say(f"model store: {chosen.location} (registering now copies model files there; --no-store skips it)")


@store_group.command("show")
@click.pass_context
def store_show_cmd(ctx) -> None:
    """Print this registry's model store."""
    from embodied_tui.services import model_store

    location = model_store.configured(ctx.obj["db"])
    _say(f"model store: {location}" if location else
         "no model store set; choose one with `embodied-ai model store set DIR`")


@store_group.command("unset")
@click.pass_context
def store_unset_cmd(ctx) -> None:
    """Forget this registry's model store (the files in it are left alone)."""
    from embodied_tui.services import model_store

    _say("model store unset (its files were left alone)" if model_store.unset_store(ctx.obj["db"])
         else "no model store was set")


COMMANDS = [model]
