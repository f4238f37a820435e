"""`embodied-ai fit`: where a model will run and how fast (`calibrate` and `bench` are in commands/measure.py)."""
from __future__ import annotations

from typing import Callable

import click

from embodied_tui import units as fmt
from embodied_tui.commands.output import console, plain, print_json, say
from embodied_tui.data.hardware import PRECISIONS
from embodied_tui.perf.fit_row import BASIS_MARK, FitRow

_PRECISION_WORDS = f"{', '.join(PRECISIONS[:-1])} or {PRECISIONS[-1]}"


@click.command("fit")
@click.argument("name")
@click.option("--hw", "hw", help="Device id or name (default: every device).")
@click.option("--mode", help="Power mode (default: every mode).")
@click.option("--precision", help=f"{_PRECISION_WORDS} (default: every precision the device states).")
@click.option("--runtime", help="Use the calibration of this runtime (e.g. onnxruntime-cpu, tensorrt).")
@click.option("--version", "version", type=int, help="Model version (default: latest).")
@click.option("--all", "show_all", is_flag=True, help="Show every precision, not only each mode's fastest.")
@click.option("--layers", is_flag=True, help="Include every layer's roofline in the JSON rows.")
@click.option("--prompt-tokens", "prompt_tokens", type=int, metavar="P",
              help="Language models: prompt tokens prefilled (with --new-tokens: fit a generation, not one pass).")
@click.option("--new-tokens", "new_tokens", type=int, metavar="K",
              help="Language models: tokens decoded one at a time after the prompt.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of rows.")
@click.pass_context
def fit(ctx: click.Context, name: str, hw, mode, precision, runtime, version, show_all, layers, prompt_tokens,
        new_tokens, as_json) -> None:
    """Predict NAME's latency on devices with a calibrated roofline, fastest first.

    Per layer t = max(2 (MACs + K outputs) / (eta_c P), bytes / (eta_m BW)); model t = t0 + n_ops t_op + sum.
    t_op (per operator launch) and K (MACs per output) are 0 unless fitted from six or more measurements. The pure
    roofline (eta = 1, no overheads) is shown as a lower bound. Bytes are unfused, at the row's precision; the
    prediction charges optimising runtimes only what epilogue fusion leaves. GPUs and Jetsons use a TensorRT engine
    model (fused kernels, tensor-core shapes, INT8 only on conv/matmul layers) fitted to published latencies; each
    row has an interval from leave-one-out residuals and a basis (exact, sibling device, defaults).

    A decoder transformer with --prompt-tokens P --new-tokens K: the generation instead of one pass. prefill = P
    prompt tokens from an empty KV cache; decode = mean per token over contexts P..P+K-1; pred = prefill + K x decode;
    kv = fp16 KV cache at P+K tokens; fit = weights + KV cache within device memory (perf.phases rooflines)."""
    from embodied_tui.services.fit import fit_rows

    rows = fit_rows(ctx.obj["db"], name, hw, mode, precision, runtime=runtime, version=version, with_layers=layers,
                    prompt_tokens=prompt_tokens, new_tokens=new_tokens)
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    if prompt_tokens is not None:
        _generation_table(name, rows, rows if (show_all or precision) else _fastest_per_mode(rows), precision or hw)
        return
    shown = rows if (show_all or precision) else _fastest_per_mode(rows)
    # fmt.ms: 7 characters at most below 1000 ms (0.00177, 1.63e-5)
    measured = any(r.measured_latency_ms is not None for r in shown)  # the column only where there is one
    widths = {"mode": 8, "prec": 4, "W": 3, "pred": 7, "range": 9, "b": 1, "floor": 7,
              **({"meas": 7} if measured else {}), "bound": 8, "fit": 3}
    out = _print_table(f"{name}: latency per inference in ms, fastest first", rows, shown, widths,
                       ("W", "pred", "floor", "meas"), lambda r: (
        r.hardware, r.power_mode, r.precision, fmt.number(r.power_w),
        fmt.ms(r.predicted_latency_ms), r.interval_text(), BASIS_MARK.get(r.basis or "", ""),
        fmt.ms(r.roofline_latency_ms), *([fmt.ms(r.measured_latency_ms)] if measured else []),
        r.bound or fmt.NA, {True: "yes", False: "NO", None: "?"}[r.fits_memory]))
    say(out, "pred = calibrated roofline; range = its likely interval (10th-90th percentile of the calibration's "
             "residuals; --json: basis_detail); b = basis: E exact (calibrated on this device and mode), S sibling "
             "(a device of its family, scaled by clocks and bandwidth), D defaults; floor = pure roofline (eta = 1, "
             "no overheads), a lower bound; meas = measured median (shown where there is one); fit = weights + peak activations fit the device "
             "memory (on-chip for NPUs)")
    for r in rows:
        if r.predicted_latency_ms is None and r.reason and (precision or hw):
            say(out, f"{r.hardware} {r.power_mode} {r.precision}: {r.reason}")
    best = next((r for r in rows if r.predicted_latency_ms is not None), None)
    if best and best.top_layers:
        say(out, f"slowest layers on {best.hardware} ({best.power_mode}, {best.precision}): " + "; ".join(
            f"{layer.name} {fmt.ms(layer.predicted_ms)} ms ({layer.bound})" for layer in best.top_layers[:3]))
    kinds = sorted({(r.calibration, fmt.calibration_numbers(r, launches=False), r.calibration_source)
                    for r in shown if r.calibration != "none"})
    for kind, numbers, source in kinds[:4]:
        say(out, f"[{kind}] {numbers}: {source}")


def _generation_table(name: str, rows: list[FitRow], shown: list[FitRow], asked) -> None:
    """The generation rows (``services.fit_llm``): prefill, decode per token and their total, within 80 columns."""
    first = rows[0] if rows else None
    tokens = f"P={first.prompt_tokens} prompt + K={first.new_tokens} new tokens" if first else ""
    widths = {"mode": 8, "prec": 4, "prefill": 7, "dec/tok": 7, "total": 7, "range": 11, "b": 1, "kv": 7, "fit": 3}
    out = _print_table(f"{name}: generation of {tokens}, in ms, fastest first", rows, shown, widths,
                       ("prefill", "dec/tok", "total", "kv"), lambda r: (
        r.hardware, r.power_mode, r.precision, fmt.ms(r.prefill_ms), fmt.ms(r.decode_ms_per_token),
        fmt.ms(r.predicted_latency_ms), r.interval_text(), BASIS_MARK.get(r.basis or "", ""),
        fmt.nbytes(r.kv_cache_bytes), {True: "yes", False: "NO", None: "?"}[r.fits_memory]))
    say(out, "prefill = P prompt tokens from an empty KV cache; dec/tok = decode time per token, the mean over "
             "contexts P..P+K-1; total = prefill + K x dec/tok; range = x/÷ 2 (the phase fits keep no per-row "
             "residuals); b = basis: E this device's published prefill rows, S other Jetsons', D type defaults; "
             "kv = fp16 KV cache at P+K tokens; fit = weights + KV cache fit the device memory; int8/int4 are "
             "weight-only (W8A16/W4A16, fp16 peak)")
    for r in rows:
        if r.predicted_latency_ms is None and r.reason and asked:
            say(out, f"{r.hardware} {r.power_mode} {r.precision}: {r.reason}")
    sources = sorted({part for r in shown for part in r.calibration_source.split(" | ") if part})
    for source in sources[:3]:
        say(out, f"[phases] {source}")
    if len(sources) > 3:
        say(out, f"{len(sources) - 3} more efficiency sources: --json calibration_source")


def _print_table(title: str, rows: list[FitRow], shown: list[FitRow], widths: dict[str, int], right: tuple[str, ...],
                 cells: Callable[[FitRow], tuple]):
    """Print ``shown`` as a rich table within the terminal: a ``hardware`` column (as wide as the longest name, 12 to
    what ``widths``' columns leave) then ``widths``' columns (``right`` ones right-aligned), one row of ``cells(r)``
    each; then how many of ``rows`` were hidden. Returns the console for the notes that follow."""
    from rich import box
    from rich.table import Table

    out = console()
    table = Table(title=plain(title), title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=0)
    longest = max((len(fmt.safe_text(r.hardware)) for r in shown), default=8)
    widths = {"hardware": max(12, min(longest, out.width - sum(widths.values()) - len(widths) - 1)), **widths}
    for col, width in widths.items():
        table.add_column(col, justify="right" if col in right else "left", no_wrap=True, overflow="ellipsis",
                         width=width)
    for r in shown:
        table.add_row(*(plain(c) for c in cells(r)))
    out.print(table)
    hidden = len(rows) - len(shown)
    if hidden:
        say(out, f"{hidden} slower precision rows hidden (--all shows them; --json gives every field)")
    return out


def _fastest_per_mode(rows: list[FitRow]) -> list[FitRow]:
    """One row per device x power mode: its fastest precision (rows are already sorted fastest first)."""
    seen, out = set(), []
    for r in rows:
        key = (r.hardware, r.power_mode)
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


COMMANDS = [fit]
