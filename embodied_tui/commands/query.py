"""`embodied-ai query`: Cypher on the registry graph (models, device x power modes, fits, measurements)."""
from __future__ import annotations

import click

from embodied_tui.commands.output import print_json


@click.command("query")
@click.argument("cypher")
@click.option("--json", "as_json", is_flag=True, help="Print {columns, rows} as JSON.")
@click.pass_context
def query(ctx: click.Context, cypher: str, as_json: bool) -> None:
    """Run a CYPHER query on the registry graph.

    \b
    Nodes: (:Model {name, family, type, task, params, macs, gmacs, weight_bytes ...})
           (:Hardware {device, name, vendor, type, power_mode, power_w, memory_bytes ...}), one per power mode
           (:Measurement {model, hardware, power_mode, precision, latency_ms, source ...})
    Edges: (:Model)-[:RUNS_ON {latency_ms, roofline_latency_ms, measured_latency_ms, bound, precision, fps,
           energy_mj, fits_memory, memory_headroom_bytes ...}]->(:Hardware), one per precision;
           (:Measurement)-[:OF]->(:Model), (:Measurement)-[:ON]->(:Hardware)
    Example:
      embodied-ai query "MATCH (m:Model)-[r:RUNS_ON]->(h:Hardware) WHERE r.latency_ms < 30 AND h.power_w < 15
                         RETURN m.name, h.name, r.latency_ms"
    """
    from embodied_tui.commands.ask import print_answer
    from embodied_tui.services.ask import query as query_service

    result = query_service(ctx.obj["db"], cypher)
    if as_json:
        print_json(result)
        return
    print_answer(result["columns"], result["rows"])
    n = len(result["rows"])
    click.echo(f"{n} row{'s' if n != 1 else ''}")


COMMANDS = [query]
