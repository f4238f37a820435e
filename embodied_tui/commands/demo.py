"""`embodied-ai demo`: write a handful of small sample models in every supported format and register them."""
from __future__ import annotations

from pathlib import Path

import click

from embodied_tui.commands.output import console, say


@click.command("demo")
@click.option("--dir", "directory", type=click.Path(path_type=Path),
              help="Where to write the model files (default: demo-models/ beside the registry).")
@click.option("--db", "db_here", type=click.Path(), help="Registry file (same as the global --db).")
@click.pass_context
def demo(ctx: click.Context, directory: Path | None, db_here: str | None) -> None:
    """Register sample models (ResNet, MobileNet, YOLO-style, ViT, LSTM and MLP policies, U-Net) saved as
    TorchScript, ExportedProgram, ONNX, state_dict and safetensors. Running it again adds nothing."""
    from rich.console import Console

    from embodied_tui import units as fmt
    from embodied_tui.services import models as svc

    db = db_here or ctx.obj["db"]
    status = Console(stderr=True).status("writing demo models ...")
    with status:
        results = svc.install_demo(db, directory, on_sample=lambda name: status.update(f"demo model {name} ..."))
    out = console()
    labels = [fmt.safe_text(f"{r.name} v{r.version}") for r, _ in results]
    width = max(map(len, labels))
    for (record, state), label in zip(results, labels):
        say(out, f"{state:<11} {label:<{width}}  {record.format:<16} {fmt.count(record.params):>6} params  "
                 f"{record.architecture.family}")
    added = sum(1 for _, s in results if s != "unchanged")
    say(out, f"{added} registered, {len(results) - added} already there, in {svc.registry(db).path}")
    from embodied_tui.services import target

    pinned = target.pinned(svc.registry(db))
    if pinned is not None:
        say(out, f"target: {pinned.spec()} pinned for the app's ms column")


COMMANDS = [demo]
