"""The names a question may use (``ask.parse.Vocabulary``): models, families, tasks, types, devices and their
power modes, stored pipelines, with each model's sizes and tags. ``vocabulary`` reads them from a graph's nodes;
``vocabulary_of`` from the registry's records without building a graph (tests/test_ask_scale.py checks both give the
same names), kept per registry while its records are the same objects."""
from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embodied_tui.ask.graph import HARDWARE, MODEL, hardware_properties
from embodied_tui.ask.parse import DeviceTerm, Vocabulary
from embodied_tui.ask.pipeline_graph import PIPELINE
from embodied_tui.services.graph import model_node_properties

if TYPE_CHECKING:
    from embodied_tui.services.graph import Registered


def vocabulary(graph) -> Vocabulary:
    """The names a question may use, read from the graph's nodes (``vocabulary_of`` reads them from the registry
    without building a graph; both give the same names)."""
    models, families, tasks, types, pipelines = set(), set(), set(), set(), set()
    devices: dict[str, dict[str, Any]] = {}
    for _, data in graph.nodes(data=True):
        labels = data.get("__labels__", set())
        if MODEL in labels:
            models.add(data["name"])
            for bucket, key in ((families, "family"), (tasks, "task"), (types, "type")):
                if data.get(key) and data[key] != "unknown":
                    bucket.add(data[key])
        elif PIPELINE in labels:
            pipelines.add(data["name"])
        elif HARDWARE in labels:
            _add_device(devices, data)
    return _vocabulary(models, families, tasks, types, devices, pipelines)


def _add_device(devices: dict[str, dict[str, Any]], data: dict) -> None:
    d = devices.setdefault(data["device"], {"name": data["name"], "vendor": data.get("vendor") or "",
                                            "type": data.get("type") or "", "modes": [],
                                            "aliases": tuple(data.get("aliases") or ()), "host": data.get("host"),
                                            "watts": []})
    d["modes"].append(data["power_mode"])
    d["watts"].append(data.get("power_w"))


def _vocabulary(models, families, tasks, types, devices: dict[str, dict[str, Any]], pipelines) -> Vocabulary:
    terms = tuple(DeviceTerm(id=i, name=d["name"], vendor=d["vendor"], type=d["type"], aliases=d["aliases"],
                             modes=tuple(d["modes"]), host=d["host"], watts=tuple(d["watts"]))
                  for i, d in sorted(devices.items()))
    return Vocabulary(models=tuple(sorted(models)), families=tuple(sorted(families)), tasks=tuple(sorted(tasks)),
                      types=tuple(sorted(types)), devices=terms, pipelines=tuple(sorted(pipelines)))


# the Model node properties 'lighter than <model>' compares, and its input shape ('models taking 224x224 inputs')
_SIZES = ("params", "macs", "weight_bytes", "input_shape")


def model_sizes(props: dict) -> dict[str, Any]:
    """What ``Vocabulary.sizes`` holds of one Model node's properties: ``{"m.params": ..., "m.input_shape": ...}``."""
    return {f"m.{key}": props.get(key) for key in _SIZES}


_MODEL_NAMES: dict[Path, tuple[list, tuple]] = {}  # registry path -> (the records read, their names)
_MODEL_NAMES_LOCK = threading.Lock()


def _model_names(src: "Registered") -> tuple:
    """(models, families, tasks, types, sizes, tags) of the registry's records, as the graph's Model nodes hold them;
    kept per registry while its records are the same objects (the store keeps the records it read until the file
    changes: ``data.store``), so the app's next question does not go through 10,000 records again."""
    path = src.reg.path
    with _MODEL_NAMES_LOCK:
        hit = _MODEL_NAMES.get(path)
    if hit is not None and len(hit[0]) == len(src.records) and all(a is b for a, b in zip(hit[0], src.records)):
        return hit[1]
    models, families, tasks, types, sizes, tags = set(), set(), set(), set(), {}, {}
    for record in src.records:
        props = model_node_properties(record)
        if not props["name"]:
            continue
        models.add(props["name"])
        for bucket, key in ((families, "family"), (tasks, "task"), (types, "type")):
            if props.get(key) and props[key] != "unknown":
                bucket.add(props[key])
        sizes[props["name"]] = model_sizes(props)
        if getattr(record, "tags", None):
            tags[record.name] = dict(record.tags)
    found = (models, families, tasks, types, sizes, tags)
    with _MODEL_NAMES_LOCK:
        _MODEL_NAMES.clear()  # one registry at a time: memory stays one registry's names
        _MODEL_NAMES[path] = (list(src.records), found)
    return found


def vocabulary_of(src: "Registered") -> Vocabulary:
    """The names a question may use (models, families, tasks, types, devices and their modes, pipelines) with each
    model's sizes and tags, read from the registry without building a graph: the same as ``vocabulary`` of the graph
    of every model and device (tests/test_ask_scale.py checks it), plus ``sizes`` (params, MACs, weight bytes and
    input shape of each Model node) and ``tags`` (each record's tags)."""
    models, families, tasks, types, sizes, tags = _model_names(src)
    devices: dict[str, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    for entry in src.devices:
        for mode in entry.power_modes:
            props = hardware_properties(entry, mode)
            if (props["device"], props["power_mode"]) in seen:  # one Hardware node per device x mode
                continue
            seen.add((props["device"], props["power_mode"]))
            _add_device(devices, props)
    pipelines = {p.name for p in src.pipelines}
    vocab = _vocabulary(models, families, tasks, types, devices, pipelines)
    return replace(vocab, sizes=sizes, tags=tags)
