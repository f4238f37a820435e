"""The hardware verbs: list, look up, add and remove devices. Returns plain data; never prints.

Devices come from two places: the package catalog (``embodied_tui/data/catalog/*.yaml``, read-only) and the user's
registry (table ``hardware``, one document per device: ``{"id", "origin", "added_at", "entry": {...HardwareEntry...}}``).
``origin`` says how a user device got there: ``user`` (``hw add``), an import source (``embodied-schemas``) or
``calibrate`` (the host measured by `embodied-ai calibrate` / a first `bench`, ``services.host``). A user device may not
reuse a catalog id or alias; two user devices may not share an id or alias either.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from embodied_tui.data.backend import RegistryBackend, open_registry
from embodied_tui.data.hardware import (
    DEVICE_TYPES,
    HardwareEntry,
    find_device,
    load_catalog,
    load_entry_file,
    parse_entry,
)
from embodied_tui.data.names import NAME_MAX, check_name, check_text
from embodied_tui.data.records import known_keys
from embodied_tui.data.store import Registry, now_iso
from embodied_tui.errors import NotFound, RegistryError, UserError

TABLE = "hardware"
FLAGS_TABLE = "hardware_flags"  # disagreements found by imports: {"id", "source", "flags": [...], "at"}
CATALOG = "catalog"
CALIBRATE = "calibrate"  # origin of the host device measured by `embodied-ai calibrate`


def registry(db: Registry | RegistryBackend | str | Path | None) -> RegistryBackend:
    """The registry ``db`` names: a TinyDB file, or a PostgreSQL database for a ``postgresql://`` URL."""
    return open_registry(db)


def catalog_devices() -> list[HardwareEntry]:
    return load_catalog()


def _user_docs(reg: Registry) -> list[dict[str, Any]]:
    return reg.table_all(TABLE)


def user_devices(db: Registry | str | Path | None) -> list[HardwareEntry]:
    """Devices the user added (``hw add``, ``hw import``), validated; sorted by id."""
    reg = registry(db)
    out = []
    for doc in _user_docs(reg):
        label = f"registry {reg.path}: hardware entry {doc.get('id')!r}"
        try:  # fields a newer embodied-ai added are ignored (and kept in the file)
            out.append(parse_entry(known_keys(HardwareEntry, doc.get("entry")), label))
        except UserError as exc:
            raise RegistryError(f"{exc}; remove it with `embodied-ai hw remove {doc.get('id')}`") from None
    return sorted(out, key=lambda e: e.id)


def origins(db: Registry | str | Path | None) -> dict[str, str]:
    """Device id -> where it came from: "catalog", "user" or an import source such as "embodied-schemas"."""
    out = {e.id: CATALOG for e in load_catalog()}
    for doc in _user_docs(registry(db)):
        out.setdefault(str(doc.get("id")), str(doc.get("origin", "user")))
    return out


def all_devices(db: Registry | str | Path | None) -> list[HardwareEntry]:
    """The catalog followed by the user's devices. A user device whose id the catalog now uses is an error."""
    catalog = load_catalog()
    users = user_devices(db)
    taken = names_of(catalog)
    for entry in users:
        clash = _clash(entry, taken)
        if clash:
            raise RegistryError(f"user device {entry.id!r} in {registry(db).path} uses the name {clash!r}, which the "
                                f"catalog now has; remove it with `embodied-ai hw remove {entry.id}`")
    return catalog + users


def get_device(db: Registry | str | Path | None, query: str) -> HardwareEntry:
    """The device ``query`` names (id, alias, name or a few words of it), from the catalog or the user's devices."""
    return find_device(query, all_devices(db))


def names_of(entries: list[HardwareEntry]) -> dict[str, str]:
    """casefolded id/alias -> owning id."""
    names: dict[str, str] = {}
    for e in entries:
        for n in (e.id, *e.aliases):
            names.setdefault(n.casefold(), e.id)
    return names


def _clash(entry: HardwareEntry, taken: dict[str, str]) -> str | None:
    for n in (entry.id, *entry.aliases):
        if n.casefold() in taken:
            return n
    return None


def add_user_device(db: Registry | str | Path | None, entry: HardwareEntry, *, origin: str = "user",
                    replace: bool = False) -> HardwareEntry:
    """Store ``entry`` in the registry. Its id and aliases must be new (``replace`` allows the same id again)."""
    reg = registry(db)
    catalog_names = names_of(load_catalog())
    for n in (entry.id, *entry.aliases):
        owner = catalog_names.get(n.casefold())
        if owner is not None:
            what = "id" if n == entry.id else "alias"
            raise UserError(f"device {entry.id!r}: {what} {n!r} is already the catalog device {owner}; "
                            f"choose another id/alias (catalog devices cannot be replaced)")
    others = [e for e in user_devices(reg) if e.id != entry.id]
    same = any(e.id == entry.id for e in user_devices(reg))
    if same and not replace:
        raise UserError(f"a user device {entry.id!r} is already in {reg.path}; pass --replace to overwrite it")
    user_names = names_of(others)
    for n in (entry.id, *entry.aliases):
        owner = user_names.get(n.casefold())
        if owner is not None:
            raise UserError(f"device {entry.id!r}: name {n!r} is already used by user device {owner}")
    doc = {"id": entry.id, "origin": origin, "added_at": now_iso(), "entry": entry.model_dump(mode="json")}
    reg.table_upsert(TABLE, doc, "id")
    return entry


def add_device_file(db: Registry | str | Path | None, path: str | Path, *, replace: bool = False) -> HardwareEntry:
    """Validate a device YAML file and store it (nothing is written when it is invalid). Its id follows the name rule
    of ``data/names.py`` (and the catalog's lowercase form); its name and aliases hold no control characters."""
    entry = load_entry_file(path)
    label = f"hardware file {path}"
    try:
        check_name(entry.id, "device id", hint="change id in the file")
        check_text(entry.name, "device name", limit=200)
        check_text(entry.vendor, "vendor", limit=200)
        for alias in entry.aliases:
            if not alias.strip():
                raise UserError("an alias is empty; remove it or give the name")
            check_text(alias, "alias", limit=NAME_MAX)
    except UserError as exc:
        raise UserError(f"{label}: {exc}") from None
    return add_user_device(db, entry, replace=replace)


def remove_user_device(db: Registry | str | Path | None, device_id: str) -> int:
    reg = registry(db)
    if device_id.casefold() in {e.id.casefold() for e in load_catalog()}:
        raise UserError(f"{device_id!r} is a catalog device; only devices you added can be removed")
    n = reg.table_remove(TABLE, "id", device_id)
    if not n:
        ids = ", ".join(e.id for e in user_devices(reg)) or "none"
        raise NotFound(f"no user device {device_id!r} in {reg.path}; user devices: {ids}")
    reg.table_remove(FLAGS_TABLE, "id", device_id)
    return n


def device_flags(db: Registry | str | Path | None, device_id: str) -> list[str]:
    """Disagreements recorded by imports for this device (e.g. another catalog's sparse figure)."""
    out: list[str] = []
    for doc in registry(db).table_all(FLAGS_TABLE):
        if doc.get("id") == device_id:
            out.extend(str(f) for f in doc.get("flags", []))
    return out


def record_flags(db: Registry | str | Path | None, device_id: str, source: str, flags: list[str]) -> None:
    reg = registry(db)
    key = f"{source}:{device_id}"
    reg.table_upsert(FLAGS_TABLE, {"key": key, "id": device_id, "source": source, "flags": flags, "at": now_iso()},
                     "key")


def device_summary(entry: HardwareEntry, origin: str = CATALOG) -> dict[str, Any]:
    """The JSON form of a device for `hw list/show --json`: every schema field, plus ``origin`` and the default
    mode's ``peak_tflops`` / ``memory_bandwidth_gbps`` / ``power_w`` at the top level."""
    data = entry.model_dump(mode="json")
    default = entry.default
    data["origin"] = origin
    data["peak_tflops"] = dict(default.peak_tflops)
    data["memory_bandwidth_gbps"] = default.memory_bandwidth_gbps
    data["power_w"] = default.power_w
    return data


def list_devices(db: Registry | str | Path | None, device_type: str | None = None) -> list[tuple[HardwareEntry, str]]:
    """(device, origin) for every device, optionally of one type; catalog first, each part sorted by id."""
    devices = all_devices(db)
    where = origins(db)
    if device_type is not None:
        if device_type not in DEVICE_TYPES:
            raise UserError(f"unknown device type {device_type!r}; valid: {', '.join(DEVICE_TYPES)}")
        devices = [d for d in devices if d.type == device_type]
    return [(d, where.get(d.id, "user")) for d in devices]


def top_peak(entry: HardwareEntry, precision: str) -> tuple[float, str] | None:
    """The highest dense peak of ``precision`` over the device's modes, with the mode's name."""
    best: tuple[float, str] | None = None
    for mode in entry.power_modes:
        value = mode.peak_tflops.get(precision)  # type: ignore[call-overload]
        if value is None:
            continue
        if best is None or value > best[0] or (value == best[0] and mode.name == entry.default_mode):
            best = (value, mode.name)
    return best


__all__ = ["CALIBRATE", "CATALOG", "TABLE", "add_device_file", "add_user_device", "all_devices", "catalog_devices",
           "device_flags", "device_summary", "get_device", "list_devices", "names_of", "origins", "record_flags",
           "registry", "remove_user_device", "top_peak", "user_devices"]
