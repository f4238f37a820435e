"""`embodied-ai hw ...` through the real CLI (click's CliRunner) on real registry files in tmp dirs."""
from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner
from device_fixture import BOARD

from embodied_tui.cli import main
from embodied_tui.data.hardware import load_catalog

CATALOG_IDS = [e.id for e in load_catalog()]


def run(db, *args, columns: int = 80):
    result = CliRunner().invoke(main, ["--db", str(db), "hw", *args], env={"COLUMNS": str(columns)})
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def write_yaml(path, data):
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_list_json_contract(tmp_path):
    result = run(tmp_path / "reg.json", "list", "--json")
    assert result.exit_code == 0
    devices = json.loads(result.stdout)
    assert [d["id"] for d in devices] == CATALOG_IDS and len(devices) >= 20
    for d in devices:
        for key in ("id", "name", "vendor", "type", "power_modes", "peak_tflops", "default_mode", "origin",
                    "headline_tops", "headline_is_sparse", "memory_bandwidth_gbps"):
            assert key in d, key
        assert d["power_modes"], d["id"]
        for m in d["power_modes"]:
            for key in ("name", "power_w", "gpu_clock_mhz", "active_sms", "cpu_clock_mhz", "memory_bandwidth_gbps",
                        "peak_tflops", "derived", "source"):
                assert key in m, key
            assert m["memory_bandwidth_gbps"] is None or m["memory_bandwidth_gbps"] > 0
        default = next(m for m in d["power_modes"] if m["name"] == d["default_mode"])
        assert d["peak_tflops"] == default["peak_tflops"]
    nano = next(d for d in devices if d["id"] == "jetson-orin-nano-8gb")
    assert nano["peak_tflops"]["fp16"] == pytest.approx(8 * 2048 * 625e6 / 1e12, rel=0.01)
    assert nano["headline_tops"] == 40 and nano["headline_is_sparse"] is True


def test_list_type_filter_and_bad_type(tmp_path):
    result = run(tmp_path / "reg.json", "list", "--json", "--type", "npu")
    ids = [d["id"] for d in json.loads(result.stdout)]
    assert ids == ["hailo-8", "hailo-8l", "raspberry-pi-5-hailo-8l"]
    bad = run(tmp_path / "reg.json", "list", "--type", "fpga")
    assert bad.exit_code == 2 and "valid: gpu, soc, npu, tpu, cpu" in bad.stderr


def test_list_table_is_readable_at_80_columns(tmp_path):
    result = run(tmp_path / "reg.json", "list", columns=80)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for device_id in CATALOG_IDS:  # every id whole, not cut with an ellipsis
        assert any(line.startswith(device_id + " ") for line in lines), device_id
    row = next(line for line in lines if line.startswith("jetson-orin-nano-8gb-super "))
    assert "MAXN_SUPER" in row and "16.7" in row and "33.4" in row


def test_show_by_fuzzy_name_and_json(tmp_path):
    text = run(tmp_path / "reg.json", "show", "orin nano super", columns=80)
    assert text.exit_code == 0
    assert max(len(line) for line in text.stdout.splitlines()) <= 80
    assert "8 SM x 2048 FLOP/clk x 1020 MHz" in text.stdout and "67 TOPS (sparse)" in text.stdout
    data = json.loads(run(tmp_path / "reg.json", "show", "pi 5", "--json").stdout)
    assert data["id"] == "raspberry-pi-5" and data["flags"] == []
    hailo = run(tmp_path / "reg.json", "show", "hailo-8", columns=80).stdout
    assert "typical source:" in hailo and "no DRAM" in hailo  # "[typical]"-style text is not eaten as markup


def test_unknown_device_is_one_line_listing_the_ids(tmp_path):
    result = run(tmp_path / "reg.json", "show", "quantum-toaster")
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert err.startswith("error: no device 'quantum-toaster'") and "\n" not in err
    assert all(device_id in err for device_id in CATALOG_IDS)
    assert "Traceback" not in result.output


def test_add_with_a_misspelt_field_fails_and_leaves_the_registry_unchanged(tmp_path):
    db = tmp_path / "reg.json"
    assert run(db, "add", str(write_yaml(tmp_path / "ok.yaml", BOARD))).exit_code == 0
    before = db.read_bytes()
    bad = yaml.safe_load(yaml.safe_dump(BOARD))
    bad["id"] = "other-board"
    bad["aliases"] = []
    bad["power_modes"][0]["memory_bandwith_gbps"] = bad["power_modes"][0].pop("memory_bandwidth_gbps")
    path = write_yaml(tmp_path / "typo.yaml", bad)
    result = run(db, "add", str(path))
    assert result.exit_code != 0
    err = result.stderr.strip()
    assert "\n" not in err and "Traceback" not in result.output
    assert "typo.yaml" in err
    assert "power_modes.0.memory_bandwith_gbps: unknown field (did you mean memory_bandwidth_gbps?)" in err
    assert db.read_bytes() == before
    ids = [d["id"] for d in json.loads(run(db, "list", "--json").stdout)]
    assert "other-board" not in ids and "my-board" in ids


def test_add_show_replace_and_remove_a_user_device(tmp_path):
    db = tmp_path / "reg.json"
    path = write_yaml(tmp_path / "board.yaml", BOARD)
    added = run(db, "add", str(path))
    assert added.exit_code == 0 and "added my-board" in added.stdout
    devices = json.loads(run(db, "list", "--json").stdout)
    mine = next(d for d in devices if d["id"] == "my-board")
    assert mine["origin"] == "user" and mine["peak_tflops"] == {"fp16": 2.048}
    assert json.loads(run(db, "show", "myboard", "--json").stdout)["id"] == "my-board"
    again = run(db, "add", str(path))
    assert again.exit_code == 2 and "--replace" in again.stderr
    assert run(db, "add", "--replace", str(path)).exit_code == 0
    table = run(db, "list").stdout
    assert "my-board*" in table and "your devices" in table
    clash = write_yaml(tmp_path / "clash.yaml", {**BOARD, "id": "nvidia-t4", "aliases": []})
    result = run(db, "add", str(clash))
    assert result.exit_code == 2 and "catalog device nvidia-t4" in result.stderr
    assert run(db, "remove", "my-board").exit_code == 0
    assert "my-board" not in [d["id"] for d in json.loads(run(db, "list", "--json").stdout)]
    assert run(db, "remove", "nvidia-t4").exit_code == 2


def test_import_embodied_schemas_flags_disagreements(tmp_path):
    pytest.importorskip("embodied_schemas")
    db = tmp_path / "reg.json"
    result = run(db, "import", "embodied-schemas", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["imported"] and report["flags"]
    # their Orin Nano GPU entry gives FP16 = the 40 TOPS sparse headline / 2; our dense derived FP16 is 10.2
    nano = [f for f in report["flags"] if f.startswith("jetson-orin-nano-8gb: embodied-schemas fp16 20 TFLOPS")]
    assert nano and "headline int8 / 2" in nano[0] and "our dense derived 10.2" in nano[0]
    assert any("zero is not a bandwidth" in f for f in report["flags"])  # their Hailo-8 lists 0 GB/s
    assert report["matched"]["nvidia_jetson_agx_orin_64gb"] == "jetson-agx-orin-64gb"
    devices = json.loads(run(db, "list", "--json").stdout)
    by_id = {d["id"]: d for d in devices}
    assert set(CATALOG_IDS) <= set(by_id)
    assert all(by_id[i]["origin"] == "embodied-schemas" for i in report["imported"])
    tx2 = next(d for d in devices if "nvidia_jetson_tx2_8gb" in d["aliases"])
    assert tx2["origin"] == "embodied-schemas"
    for d in devices:  # nothing imported carries a zero bandwidth or a zero peak
        for m in d["power_modes"]:
            assert m["memory_bandwidth_gbps"] is None or m["memory_bandwidth_gbps"] > 0
            assert all(v > 0 for v in m["peak_tflops"].values())
    shown = json.loads(run(db, "show", "jetson-orin-nano-8gb", "--json").stdout)
    assert any("headline int8 / 2" in f for f in shown["flags"])
    # a second import replaces what the first one added; nothing is duplicated
    second = json.loads(run(db, "import", "embodied-schemas", "--json").stdout)
    assert second["imported"] == [] and sorted(second["updated"]) == sorted(report["imported"])
    assert len(json.loads(run(db, "list", "--json").stdout)) == len(devices)
    text = run(db, "list", columns=80).stdout
    assert max(len(line) for line in text.splitlines()) <= 80


def test_new_devices_at_80_columns(tmp_path):
    """Thor (Blackwell, fp8/fp4), Orin NX 8GB, Orin Nano 4GB and the Pi 5 + Hailo-8L pair in `hw list` and
    `hw show`; every figure checked is recomputed here from SMs x rate x clock."""
    from embodied_tui import units as fmt

    lines = run(tmp_path / "reg.json", "list", columns=80).stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    rows = {line.split()[0]: line.split() for line in lines if line.split()}
    thor = rows["jetson-agx-thor"]
    assert thor[1:4] == ["soc", "MAXN", "130"]
    assert thor[5] == fmt.number(20 * 8192 * 1575e6 / 1e12) and thor[6] == fmt.NA  # fp16 258; no int8 published
    assert rows["jetson-orin-nx-8gb"][5] == fmt.number(8 * 2048 * 1173e6 / 1e12)
    assert rows["jetson-orin-nano-4gb"][6] == fmt.number(4 * 4096 * 625e6 / 1e12)
    assert rows["raspberry-pi-5-hailo-8l"][1] == "npu" and "none" in rows["raspberry-pi-5-hailo-8l"]

    show = run(tmp_path / "reg.json", "show", "jetson-agx-thor", columns=80).stdout
    assert max(len(line) for line in show.splitlines()) <= 80
    assert "headline 2070 TFLOPS fp4 (sparse)" in show
    header = next(line for line in show.splitlines() if line.startswith("mode"))
    assert header.split()[-2:] == ["fp8", "fp4"]
    assert "fp4 at MAXN = 20 SM x 32768 FLOP/clk x 1575 MHz" in show
    pair = run(tmp_path / "reg.json", "show", "pi5-hailo-8l", columns=80).stdout
    assert "paired with host raspberry-pi-5 over 0.985 GB/s" in " ".join(pair.split())
    assert "headline 13 TOPS" in pair and "memory: no DRAM" in pair
