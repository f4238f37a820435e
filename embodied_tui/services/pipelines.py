"""The verbs on stored pipelines, for both faces: register a spec file (with its configs' content), list, show,
remove, and fit a stored pipeline or a spec file (``services.pipeline.fit_pipeline`` does the arithmetic).

What registering checks (``register``): the spec validates (``data.pipeline_spec``); every config stage's
``config.json`` exists and parses as a config (``analysis.hf.config.read_config``: JSON only, no remote code) and
describes a transformer ``services.pipeline`` can fit; every registered-model stage names a model in the registry.
Configs are stored by content and models by name (``data.pipeline_store``'s docstring says why).

``fit`` takes a reference: a spec file when the path exists, else a stored ``NAME`` or ``NAME@V``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embodied_tui.data import pipeline_store as store
from embodied_tui.data.pipeline_spec import PipelineSpec, load_spec
from embodied_tui.data.store import Registry
from embodied_tui.errors import UserError
from embodied_tui.services.aliases import resolve
from embodied_tui.services.hardware import registry


def read_configs(spec: PipelineSpec, base_dir: Path) -> dict[str, dict[str, Any]]:
    """The parsed config.json of every config stage, by the path the spec gives; UserError naming the stage."""
    from embodied_tui.analysis.hf.config import read_config
    from embodied_tui.services.pipeline import shape_of

    out: dict[str, dict[str, Any]] = {}
    for stage in spec.stages:
        if stage.config is None:
            continue
        path = Path(stage.config).expanduser()
        path = path if path.is_absolute() else base_dir / path
        if not path.is_file():
            raise UserError(f"stage {stage.name}: config {path} does not exist; give a config.json path relative to "
                            f"the spec file")
        data = out.get(stage.config) or read_config(path)
        shape_of(data, str(path), stage.name, phase=stage.phase, part=stage.part)  # it can be fitted: say so now
        out[stage.config] = data
    return out


def register(db, spec_path: str | Path, *, name: str | None = None) -> tuple[store.StoredPipeline, str]:
    """Validate the spec file and store it as the next version of ``name`` (default: the spec's name). Returns the
    stored pipeline and "added", "new_version" or "unchanged"."""
    reg = registry(db)
    path = Path(spec_path)
    spec = load_spec(path)
    for stage in spec.stages:
        if stage.model is not None:
            resolve(reg, stage.model)  # NAME, NAME@3 or NAME@alias; NotFound names the registered models
    configs = read_configs(spec, path.parent)
    return store.add(reg, spec, configs, name=name, source=str(path.resolve()))


def list_pipelines(db, *, all_versions: bool = False) -> list[store.StoredPipeline]:
    """The latest version of each stored pipeline (or every version); a damaged one is left out with a warning."""
    reg = registry(db)
    return store.all_versions(reg, strict=False) if all_versions else store.latest(reg, strict=False)


def show(db, ref: str) -> store.StoredPipeline:
    """A stored pipeline by ``NAME`` or ``NAME@V``."""
    name, version = store.parse_ref(ref)
    return store.get(registry(db), name, version)


def versions_of(db, name: str) -> list[int]:
    return [p.version for p in store.all_versions(registry(db)) if p.name == name]


def remove(db, ref: str) -> int:
    name, version = store.parse_ref(ref)
    return store.remove(registry(db), name, version)


def check_stored(db, ref: str) -> int:
    """How many versions ``remove(db, ref)`` would remove; NotFound when none."""
    name, version = store.parse_ref(ref)
    return store.check_stored(registry(db), name, version)


def fit(db, ref: str | Path, hw: str, *, mode: str | None = None, precision: str | None = None,
        with_changes: bool = True, ctx=None):
    """Fit a spec file (when ``ref`` is an existing file) or a stored pipeline (``NAME`` / ``NAME@V``) on ``hw``."""
    from embodied_tui.services.pipeline import fit_pipeline

    path = Path(ref)
    if path.is_file() or path.suffix in (".yaml", ".yml"):
        return fit_pipeline(db, path, hw, mode=mode, precision=precision, with_changes=with_changes, ctx=ctx)
    stored = show(db, str(ref))
    return fit_stored(db, stored, hw, mode=mode, precision=precision, with_changes=with_changes, ctx=ctx)


def fit_stored(db: Registry | str | Path | None, stored: store.StoredPipeline, hw: str, *, mode: str | None = None,
               precision: str | None = None, with_changes: bool = True, ctx=None):
    from embodied_tui.services.pipeline import fit_pipeline

    return fit_pipeline(db, stored.spec, hw, mode=mode, precision=precision, with_changes=with_changes,
                        configs=stored.configs, ctx=ctx)


# ------------------------------------------------------------------------------------------------ the app's view

@dataclass(frozen=True)
class Target:
    """A device the app's pipeline screen can fit on: its id, power modes (names) and default mode."""

    device: str
    modes: tuple[str, ...]
    default_mode: str
    type: str


def targets(db) -> list[Target]:
    """Every device (catalog, user, host) with its power modes, SoCs first (robots' boards), then by id."""
    from embodied_tui.services.fit import devices

    found = [Target(e.id, tuple(m.name for m in e.power_modes), e.default.name, e.type) for e in devices(registry(db))]
    return sorted(found, key=lambda t: (t.type != "soc", t.device))


def share_bar(share: float | None, width: int) -> str:
    """A stage's share of the control period as a text bar of ``width`` cells ('#' per 1/width, rounded)."""
    if share is None:
        return ""
    return "#" * max(0, min(width, round(share * width)))
