"""The hardware catalog: every file validates, every derived peak is recomputed from its clock, SM count and per-SM
rate, figures agree with the facts sheet, and look-ups, errors and user devices behave."""
from __future__ import annotations

import re
from importlib import resources

import pytest
import yaml
from device_fixture import BOARD as GOOD

from embodied_tui.data.hardware import (
    HardwareEntry,
    bandwidth_bytes_per_s,
    find_device,
    load_catalog,
    load_entry_file,
    parse_entry,
    parse_yaml_text,
    peak_flops,
)
from embodied_tui.errors import NotFound, RegistryError, UserError
from embodied_tui.services import hardware as svc

CATALOG_DIR = resources.files("embodied_tui.data") / "catalog"
CATALOG = load_catalog()
BY_ID = {e.id: e for e in CATALOG}

# Devices the catalog must hold (the brief's list).
REQUIRED = ["jetson-orin-nano-8gb", "jetson-orin-nano-8gb-super", "jetson-orin-nx-16gb", "jetson-agx-orin-64gb",
            "jetson-agx-orin-32gb", "jetson-xavier-nx", "hailo-8", "hailo-8l", "coral-edge-tpu-usb",
            "coral-edge-tpu-pcie", "raspberry-pi-4", "raspberry-pi-5", "intel-core-i7-12700k", "nvidia-t4",
            "nvidia-l4", "nvidia-a100-sxm-80gb", "nvidia-h100-sxm", "nvidia-h200-sxm", "nvidia-rtx-4090",
            "jetson-agx-thor", "jetson-orin-nx-8gb", "jetson-orin-nano-4gb", "raspberry-pi-5-hailo-8l"]

# Figures copied from /work/shared/hardware-facts.md (dense; TFLOPS, int8 TOPS; GB/s), at the named mode.
FACTS = [
    ("jetson-orin-nano-8gb", "15W", {"fp32": 1.28, "fp16": 10.2, "int8": 20.5}, 68),
    ("jetson-orin-nano-8gb-super", "MAXN_SUPER", {"fp32": 2.09, "fp16": 16.7, "int8": 33.4}, 102),
    ("jetson-orin-nx-16gb", "MAXN", {"fp32": 1.88, "fp16": 15.0, "int8": 30.1}, 102.4),
    ("jetson-agx-orin-64gb", "MAXN", {"fp32": 5.3, "fp16": 42.6, "int8": 85.2}, 204.8),
    ("jetson-agx-orin-32gb", "MAXN", {"fp32": 3.4, "fp16": 26.9, "int8": 53.8}, 204.8),
    ("jetson-xavier-nx", "20W", {"fp32": 0.84, "fp16": 6.8, "int8": 13.5}, 59.7),
    ("nvidia-h100-sxm", None, {"fp32": 66.9, "fp16": 989.4, "bf16": 989.4, "int8": 1979}, 3350),
    ("nvidia-h200-sxm", None, {"fp32": 66.9, "fp16": 989.4, "bf16": 989.4, "int8": 1979}, 4800),
    ("nvidia-a100-sxm-80gb", None, {"fp32": 19.5, "fp16": 312, "bf16": 312, "int8": 624}, 2039),
    ("nvidia-l4", None, {"fp32": 30.3, "fp16": 121, "int8": 242.5}, 300),
    ("nvidia-t4", None, {"fp32": 8.1, "fp16": 65, "int8": 130}, 320),
    ("nvidia-rtx-4090", None, {"fp32": 82.6, "fp16": 165.2, "int8": 660.6}, 1008),
    ("raspberry-pi-5", None, {"fp32": 0.154}, 17.1),
    ("hailo-8", None, {"int8": 26}, None),
    ("hailo-8l", None, {"int8": 13}, None),
    ("coral-edge-tpu-usb", None, {"int8": 4}, None),
]

# NVIDIA's GPU-only sparse INT8 per AGX Orin 64GB power mode (facts sheet, from NVIDIA's DLA README).
AGX_ORIN_GPU_SPARSE_INT8 = {"MAXN": 171, "50W": 109, "30W": 41, "15W": 14}

DERIVED = re.compile(r"^(?P<units>\d+) (?P<unit>SM|core) x (?P<rate>[\d.]+) (?P<kind>FLOP|OP)/clk x "
                     r"(?P<mhz>[\d.]+) MHz$")


def _catalog_files():
    return sorted(p for p in CATALOG_DIR.iterdir() if p.name.endswith(".yaml"))


# ---------------------------------------------------------------------------------------------------- files

def test_every_catalog_file_loads_and_is_named_for_its_id():
    files = _catalog_files()
    assert len(files) >= 20
    ids = []
    for path in files:
        entry = parse_yaml_text(path.read_text(encoding="utf-8"), f"catalog file {path.name}")
        assert path.name == f"{entry.id}.yaml"
        assert entry.sources, f"{entry.id} names no source"
        assert all(m.source.strip() for m in entry.power_modes)
        ids.append(entry.id)
    assert len(set(ids)) == len(ids) == len(CATALOG)
    assert sorted(ids) == [e.id for e in CATALOG]


def test_catalog_has_the_required_devices():
    missing = [d for d in REQUIRED if d not in BY_ID]
    assert not missing


def test_catalog_files_have_no_unknown_fields():
    """extra='forbid' everywhere: re-validating the raw YAML of each file must not drop anything."""
    for path in _catalog_files():
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        entry = HardwareEntry.model_validate(raw)
        dumped = entry.model_dump(exclude_unset=True)
        assert set(dumped) == set(raw), path.name


# ---------------------------------------------------------------------------------------------------- numbers

def test_every_derived_peak_is_recomputed_from_clock_sms_and_rate():
    checked = 0
    for entry in CATALOG:
        for mode in entry.power_modes:
            for precision, text in mode.derived.items():
                m = DERIVED.match(text)
                assert m, f"{entry.id}/{mode.name}/{precision}: cannot read derivation {text!r}"
                units, rate, mhz = int(m["units"]), float(m["rate"]), float(m["mhz"])
                if m["unit"] == "SM":
                    assert units == mode.active_sms and mhz == mode.gpu_clock_mhz, (entry.id, mode.name)
                else:
                    assert units == mode.cpu_cores and mhz == mode.cpu_clock_mhz, (entry.id, mode.name)
                assert rate == entry.ops_per_clock[precision], (entry.id, precision)
                assert m["kind"] == ("OP" if precision.startswith("int") else "FLOP")
                recomputed = units * rate * mhz * 1e6 / 1e12
                assert mode.peak_tflops[precision] == pytest.approx(recomputed, rel=0.01), \
                    f"{entry.id}/{mode.name}/{precision}: yaml {mode.peak_tflops[precision]} vs {recomputed}"
                checked += 1
    assert checked >= 100


def test_every_mode_with_clock_and_units_derives_every_rated_precision():
    """A precision with a per-SM/core rate must be derived in every mode that states clock and units."""
    for entry in CATALOG:
        for mode in entry.power_modes:
            gpu = mode.active_sms is not None and mode.gpu_clock_mhz is not None
            cpu = entry.type == "cpu" and mode.cpu_cores is not None and mode.cpu_clock_mhz is not None
            if gpu or cpu:
                assert set(entry.ops_per_clock) <= set(mode.derived), (entry.id, mode.name)


@pytest.mark.parametrize("device, mode, peaks, bandwidth", FACTS, ids=[f[0] for f in FACTS])
def test_figures_agree_with_the_facts_sheet(device, mode, peaks, bandwidth):
    entry = BY_ID[device]
    pm = entry.mode(mode)
    for precision, value in peaks.items():
        assert pm.peak_tflops[precision] == pytest.approx(value, rel=0.02), precision
    if bandwidth is None:
        assert pm.memory_bandwidth_gbps is None
    else:
        assert pm.memory_bandwidth_gbps == pytest.approx(bandwidth, rel=0.01)


def test_no_zero_bandwidth_anywhere_and_no_dram_is_none():
    for entry in CATALOG:
        for mode in entry.power_modes:
            assert mode.memory_bandwidth_gbps is None or mode.memory_bandwidth_gbps > 0
            assert all(v > 0 for v in mode.peak_tflops.values())
    for device in ("hailo-8", "hailo-8l", "coral-edge-tpu-usb", "coral-edge-tpu-pcie"):
        entry = BY_ID[device]
        assert all(m.memory_bandwidth_gbps is None for m in entry.power_modes)
        assert bandwidth_bytes_per_s(entry.default) is None
        assert entry.host_link_gbps and entry.host_link_gbps > 0
    assert BY_ID["coral-edge-tpu-usb"].onchip_memory_bytes == 8 * 1024 * 1024
    bad = {**GOOD, "power_modes": [{**GOOD["power_modes"][0], "memory_bandwidth_gbps": 0}]}
    with pytest.raises(UserError, match=r"power_modes\.0\.memory_bandwidth_gbps"):
        parse_entry(bad, "x.yaml")


def test_agx_orin_modes_match_nvidia_gpu_only_sparse_int8():
    entry = BY_ID["jetson-agx-orin-64gb"]
    assert {m.name for m in entry.power_modes} == set(AGX_ORIN_GPU_SPARSE_INT8)
    for mode_name, sparse in AGX_ORIN_GPU_SPARSE_INT8.items():
        mode = entry.mode(mode_name)
        dense = mode.active_sms * 4096 * mode.gpu_clock_mhz * 1e6 / 1e12
        assert 2 * dense == pytest.approx(sparse, rel=0.05), mode_name
        assert 2 * mode.peak_tflops["int8"] == pytest.approx(sparse, rel=0.05), mode_name
    # the 275 TOPS headline = GPU sparse at MAXN + 2 x the DLAs' dense 52.5
    maxn = entry.mode("MAXN")
    assert 2 * maxn.peak_tflops["int8"] + 2 * entry.dla_int8_tops == pytest.approx(entry.headline_tops, rel=0.02)


def _super_mode(mode) -> bool:
    """A JetPack 6.2 "Super" mode: faster than the original firmware its device's headline was quoted for."""
    return any("JetPack 6.2" in note for note in mode.notes)


def test_jetson_headline_is_not_the_dense_peak():
    jetsons = [e for e in CATALOG if e.id.startswith("jetson-") and e.type == "soc"]
    assert len(jetsons) >= 9
    for entry in jetsons:
        at = entry.headline_precision  # int8 "AI TOPS", fp4 for Thor
        best = max(m.peak_tflops[at] for m in entry.power_modes)
        best_fp16 = max(m.peak_tflops["fp16"] for m in entry.power_modes)
        best_fp32 = max(m.peak_tflops["fp32"] for m in entry.power_modes)
        assert entry.headline_tops > best * 1.2, entry.id
        # the catalog trap: FP16 = headline / 2 and FP32 = headline / 4
        assert best_fp16 < entry.headline_tops / 2 * 0.8, entry.id
        assert best_fp32 < entry.headline_tops / 4 * 0.5, entry.id
        if "orin" in entry.id or "thor" in entry.id:
            assert entry.headline_is_sparse
            rated = [m.peak_tflops[at] for m in entry.power_modes if not _super_mode(m)]
            assert 2 * max(rated) <= entry.headline_tops * 1.03  # GPU-only sparse cannot beat the headline
    assert BY_ID["jetson-orin-nx-16gb"].headline_includes_dla and not BY_ID["jetson-orin-nano-8gb"].headline_includes_dla


def test_orin_nx_low_modes_power_half_the_sms():
    entry = BY_ID["jetson-orin-nx-16gb"]
    assert entry.mode("10W").active_sms == entry.mode("15W").active_sms == 4
    assert entry.mode("MAXN_SUPER").active_sms == 8


def test_default_mode_is_the_fastest():
    for entry in CATALOG:
        for precision in entry.default.peak_tflops:
            best = max(m.peak_tflops.get(precision, 0) for m in entry.power_modes)
            assert entry.default.peak_tflops[precision] == best, (entry.id, precision)


def test_peak_and_bandwidth_helpers():
    nano = BY_ID["jetson-orin-nano-8gb"].mode("15W")
    assert peak_flops(nano, "fp16") == pytest.approx(8 * 2048 * 625e6)
    assert peak_flops(nano, "int8") == pytest.approx(8 * 4096 * 625e6)
    assert peak_flops(BY_ID["hailo-8"].default, "fp16") is None
    assert bandwidth_bytes_per_s(nano) == pytest.approx(68e9)


# ---------------------------------------------------------------------------------------------------- look-up

@pytest.mark.parametrize("query, expected", [
    ("orin nano super", "jetson-orin-nano-8gb-super"),
    ("Orin Nano Super", "jetson-orin-nano-8gb-super"),
    ("pi 5", "raspberry-pi-5"),
    ("rpi5", "raspberry-pi-5"),
    ("nvidia_jetson_agx_orin_64gb", "jetson-agx-orin-64gb"),  # embodied-schemas id kept as an alias
    ("H100", "nvidia-h100-sxm"),
    ("jetson-orin-nano-8gb", "jetson-orin-nano-8gb"),  # an id that is a prefix of another id
    ("hailo 8l", "hailo-8l"),
])
def test_find_device(query, expected):
    assert find_device(query, CATALOG).id == expected


def test_unknown_or_ambiguous_device_lists_the_choices():
    with pytest.raises(NotFound) as err:
        find_device("tpu v9000", CATALOG)
    assert all(e.id in str(err.value) for e in CATALOG)
    with pytest.raises(NotFound) as err:
        find_device("orin nano", CATALOG)
    assert "jetson-orin-nano-8gb" in str(err.value) and "jetson-orin-nano-8gb-super" in str(err.value)
    with pytest.raises(NotFound, match="did you mean jetson-orin-nano-8gb-super"):
        find_device("orin-nano-supr", CATALOG)


def test_mode_lookup_is_case_insensitive_and_lists_valid_modes():
    nano = BY_ID["jetson-orin-nano-8gb-super"]
    assert nano.mode("15w").name == nano.mode("15W").name == "15W"
    assert nano.mode("maxn super").name == "MAXN_SUPER"
    assert BY_ID["jetson-agx-orin-64gb"].mode("maxn").name == "MAXN"
    assert nano.mode(None).name == nano.default_mode
    with pytest.raises(NotFound) as err:
        nano.mode("99W")
    assert all(m.name in str(err.value) for m in nano.power_modes)


# ---------------------------------------------------------------------------------------------------- validation

def test_misspelt_field_names_the_file_and_the_field():
    data = yaml.safe_load(yaml.safe_dump(GOOD))
    mode = data["power_modes"][0]
    mode["memory_bandwith_gbps"] = mode.pop("memory_bandwidth_gbps")
    with pytest.raises(UserError) as err:
        parse_yaml_text(yaml.safe_dump(data), "catalog file foo.yaml")
    msg = str(err.value)
    assert msg == ("catalog file foo.yaml: power_modes.0.memory_bandwith_gbps: unknown field "
                   "(did you mean memory_bandwidth_gbps?)")
    top = dict(GOOD, defualt_mode="10W")
    del top["default_mode"]
    with pytest.raises(UserError) as err:
        parse_entry(top, "f.yaml")
    assert str(err.value) == "f.yaml: defualt_mode: unknown field (did you mean default_mode?)"
    assert "\n" not in str(err.value)


def test_calibration_small_kernel_terms_default_to_zero_and_reject_negatives():
    cal = {"precision": "fp32", "runtime": "onnxruntime", "eta_compute": 0.5, "source": "test"}
    entry = parse_entry(dict(GOOD, calibration=[cal]), "f.yaml")
    assert (entry.calibration[0].op_overhead_ms, entry.calibration[0].macs_per_output_half) == (0.0, 0.0)
    with pytest.raises(UserError) as err:
        parse_entry(dict(GOOD, calibration=[dict(cal, op_overhead_ms=-0.001)]), "f.yaml")
    assert str(err.value).startswith("f.yaml: calibration.0.op_overhead_ms:")


def test_missing_field_bad_yaml_and_bad_default_mode(tmp_path):
    no_modes = {k: v for k, v in GOOD.items() if k != "power_modes"}
    with pytest.raises(UserError, match=r"^f\.yaml: power_modes: missing field"):
        parse_entry(no_modes, "f.yaml")
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\nname: [unclosed\n")
    with pytest.raises(UserError, match=r"broken\.yaml: line \d+"):
        load_entry_file(path)
    with pytest.raises(UserError, match="no such file"):
        load_entry_file(tmp_path / "absent.yaml")
    with pytest.raises(UserError, match="default_mode 'MAXN' is not one of the power modes: 10W"):
        parse_entry(dict(GOOD, default_mode="MAXN"), "f.yaml")
    with pytest.raises(UserError, match="derived given for int8"):
        parse_entry({**GOOD, "power_modes": [{**GOOD["power_modes"][0], "derived": {"int8": "x"}}]}, "f.yaml")


# ---------------------------------------------------------------------------------------------------- user devices

def test_user_devices_live_in_the_registry_and_never_shadow_the_catalog(tmp_path):
    db = tmp_path / "reg.json"
    entry = parse_entry(GOOD, "good")
    svc.add_user_device(db, entry)
    assert [e.id for e in svc.user_devices(db)] == ["my-board"]
    everything = svc.all_devices(db)
    assert len(everything) == len(CATALOG) + 1
    assert svc.get_device(db, "myboard").id == "my-board"
    assert svc.origins(db)["my-board"] == "user" and svc.origins(db)["hailo-8"] == "catalog"
    with pytest.raises(UserError, match="already in"):
        svc.add_user_device(db, entry)
    svc.add_user_device(db, entry, replace=True)
    assert len(svc.user_devices(db)) == 1
    for clash in ({"id": "hailo-8"}, {"aliases": ["rpi5"]}):
        with pytest.raises(UserError, match="catalog device"):
            svc.add_user_device(db, parse_entry({**GOOD, **clash}, "clash"))
    other = parse_entry({**GOOD, "id": "other-board", "aliases": ["MyBoard"]}, "other")
    with pytest.raises(UserError, match="already used by user device my-board"):
        svc.add_user_device(db, other)
    with pytest.raises(UserError, match="catalog device"):
        svc.remove_user_device(db, "hailo-8")
    assert svc.remove_user_device(db, "my-board") == 1
    with pytest.raises(NotFound):
        svc.remove_user_device(db, "my-board")
    assert svc.all_devices(db) == CATALOG


def test_a_stored_device_that_no_longer_validates_is_a_registry_error(tmp_path):
    db = tmp_path / "reg.json"
    svc.add_user_device(db, parse_entry(GOOD, "good"))
    reg = svc.registry(db)
    reg.table_upsert(svc.TABLE, {"id": "my-board", "origin": "user", "entry": {**GOOD, "power_modes": []}}, "id")
    with pytest.raises(RegistryError, match="hw remove my-board"):
        svc.all_devices(db)


def test_device_without_dram_or_stated_power_is_valid():
    entry = parse_entry({**GOOD, "power_modes": [{"name": "on", "memory_bandwidth_gbps": None,
                                                  "peak_tflops": {"int8": 2.0}, "source": "me"}],
                         "default_mode": "on", "ops_per_clock": {}}, "npu")
    assert entry.default.power_w is None and entry.default.bandwidth_bytes_per_s() is None


def test_device_summary_carries_the_default_mode_at_top_level():
    entry = BY_ID["jetson-orin-nano-8gb-super"]
    data = svc.device_summary(entry)
    assert data["peak_tflops"] == entry.mode("MAXN_SUPER").peak_tflops
    assert data["memory_bandwidth_gbps"] == 102.0 and data["origin"] == "catalog"
    assert [m["name"] for m in data["power_modes"]] == ["7W", "15W", "25W", "MAXN_SUPER"]


def test_a_measured_cache_level_is_optional_and_needs_its_size():
    mode = {**GOOD["power_modes"][0], "cache_bandwidth_gbps": 80.0}
    entry = parse_entry({**GOOD, "cache_bytes": 32 * 1024 ** 2, "power_modes": [mode]}, "cached")
    assert entry.cache_bytes == 32 * 1024 ** 2 and entry.default.cache_bandwidth_gbps == 80.0
    assert parse_entry(GOOD, "good").cache_bytes is None  # the catalog states no cache level
    with pytest.raises(UserError, match="states cache_bandwidth_gbps but the device has no cache_bytes"):
        parse_entry({**GOOD, "power_modes": [mode]}, "half a cache")
    with pytest.raises(UserError, match="cache_bytes"):
        parse_entry({**GOOD, "cache_bytes": 0}, "zero cache")
    with pytest.raises(UserError, match="did you mean cache_bandwidth_gbps"):
        parse_entry({**GOOD, "cache_bytes": 1024,
                     "power_modes": [{**GOOD["power_modes"][0], "cache_bandwith_gbps": 80.0}]}, "misspelt")


# ---------------------------------------------------------------------------------------------------- new devices

def test_jetson_agx_thor_dense_peaks_are_half_the_sparse_fp4_and_fp8_figures():
    """NVIDIA quotes T5000 as 2070 FP4 / 1035 FP8 TFLOPS with 2:4 sparsity, at 1.575 GHz on 20 SMs (2560 cores)."""
    thor = BY_ID["jetson-agx-thor"]
    maxn = thor.mode("MAXN")
    assert thor.headline_tops == 2070 and thor.headline_is_sparse and thor.headline_precision == "fp4"
    assert not thor.headline_includes_dla and thor.dla_int8_tops is None  # Thor has no DLA
    assert maxn.active_sms * 128 == 2560 and maxn.gpu_clock_mhz == 1575
    assert maxn.peak_tflops["fp4"] == pytest.approx(2070 / 2, rel=0.01)  # dense = sparse / 2
    assert maxn.peak_tflops["fp8"] == pytest.approx(1035 / 2, rel=0.01)
    assert maxn.peak_tflops["fp16"] == pytest.approx(maxn.peak_tflops["fp8"] / 2)
    assert maxn.peak_tflops["fp32"] == pytest.approx(2560 * 2 * 1575e6 / 1e12)  # 2 FLOP per core per clock (FMA)
    assert all(v < thor.headline_tops for v in maxn.peak_tflops.values())
    assert "int8" not in maxn.peak_tflops and "tf32" not in maxn.peak_tflops  # not published: left out
    assert maxn.memory_bandwidth_gbps == 273 and thor.memory_bytes == 128 * 2 ** 30
    assert maxn.power_w == 130


def test_orin_nx_8gb_has_eight_sms_and_halves_them_at_10_and_15w():
    nx = BY_ID["jetson-orin-nx-8gb"]
    assert max(m.active_sms for m in nx.power_modes) * 128 == 1024  # 1024 CUDA cores: 8 SMs, not 6
    assert nx.mode("10W").active_sms == nx.mode("15W").active_sms == 4
    assert nx.mode("40W").gpu_clock_mhz == 1173 and nx.default_mode == "40W"
    # EMC capped at 2133 MHz in 10W: 2133e6 x 2 transfers x 16 bytes (128-bit)
    assert nx.mode("10W").memory_bandwidth_gbps == pytest.approx(2133e6 * 2 * 16 / 1e9, rel=0.005)
    assert nx.headline_tops == 70 and nx.headline_is_sparse and nx.headline_includes_dla


def test_orin_nano_4gb_is_half_an_orin_nano_8gb():
    nano4, nano8 = BY_ID["jetson-orin-nano-4gb"], BY_ID["jetson-orin-nano-8gb"]
    top = nano4.mode("10W")
    assert top.active_sms * 128 == 512 and top.gpu_clock_mhz == 625
    assert top.memory_bandwidth_gbps == pytest.approx(2133e6 * 2 * 8 / 1e9, rel=0.005)  # 64-bit LPDDR5
    assert top.peak_tflops["int8"] == pytest.approx(10, rel=0.03)  # the data sheet: 10 dense, 20 sparse
    assert 2 * top.peak_tflops["int8"] == pytest.approx(nano4.headline_tops, rel=0.03)
    assert top.peak_tflops["fp16"] == pytest.approx(nano8.mode("15W").peak_tflops["fp16"] / 2)
    assert {m.name for m in nano4.power_modes} == {"7W_CPU", "7W_AI", "10W"}


def test_the_pi5_hailo_pair_names_its_host_and_is_limited_by_the_link():
    pair, host, npu = BY_ID["raspberry-pi-5-hailo-8l"], BY_ID["raspberry-pi-5"], BY_ID["hailo-8l"]
    assert pair.host == host.id and host.type == "cpu"
    assert pair.host_link_gbps == pytest.approx(8e9 * 128 / 130 / 8 / 1e9, rel=0.001)  # PCIe Gen3 x1
    assert pair.default.memory_bandwidth_gbps is None and bandwidth_bytes_per_s(pair.default) is None
    assert pair.default.peak_tflops == npu.default.peak_tflops
    assert not set(pair.aliases) & set(npu.aliases)


def test_a_host_needs_its_link_and_cannot_be_the_device_itself():
    with pytest.raises(UserError, match="host 'raspberry-pi-5' is given without host_link_gbps"):
        parse_entry({**GOOD, "host": "raspberry-pi-5"}, "pair.yaml")
    with pytest.raises(UserError, match="host names the device itself"):
        parse_entry({**GOOD, "host": GOOD["id"], "host_link_gbps": 1.0}, "pair.yaml")
    with pytest.raises(UserError, match="host"):
        parse_entry({**GOOD, "host": "Not An Id", "host_link_gbps": 1.0}, "pair.yaml")
    assert parse_entry(GOOD, "b.yaml").host is None and parse_entry(GOOD, "b.yaml").headline_precision == "int8"


def test_fp8_and_fp4_are_floating_point_precisions_in_tflops():
    from embodied_tui.data.hardware import INTEGER_PRECISIONS, PRECISIONS

    assert {"fp8", "fp4"} <= set(PRECISIONS) and not {"fp8", "fp4"} & set(INTEGER_PRECISIONS)
    board = {**GOOD, "ops_per_clock": {"fp8": 4096},
             "power_modes": [{**GOOD["power_modes"][0], "peak_tflops": {"fp8": 4.096},
                              "derived": {"fp8": "2 SM x 4096 FLOP/clk x 500 MHz"}}]}
    entry = parse_entry(board, "fp8.yaml")
    assert peak_flops(entry.default, "fp8") == pytest.approx(2 * 4096 * 500e6)
    with pytest.raises(UserError, match="fp6"):
        parse_entry({**board, "ops_per_clock": {"fp6": 1}}, "fp6.yaml")
