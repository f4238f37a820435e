"""Many processes writing one registry, and processes killed while writing: nothing lost, nothing torn."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

from embodied_tui.data import store
from embodied_tui.data.store import Registry

# A child process: wait for the start file, then register one record (built from an Analysis, no model file needed)
# and add one row to a generic table.
WRITER = r"""
import hashlib, os, sys, time
from pathlib import Path
from embodied_tui.data.records import Analysis, Architecture, CensusNode
from embodied_tui.data.store import Registry

db, i, go = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
while not go.exists():
    time.sleep(0.005)
a = Analysis(path=f"/m/{i}.pt", format="torchscript", sha256=hashlib.sha256(str(i).encode()).hexdigest(),
             size_bytes=i, params=i, macs=i, flops=2 * i, other_flops=0, weight_bytes=4 * i, activation_bytes=i,
             architecture=Architecture(family=f"f{i}"), census=[CensusNode(path="", type="Net", params=i)])
record, status = Registry(db).add(a, f"model-{i}", {"worker": str(i)})
assert status == "added", status
Registry(db).table_insert("measurements", {"worker": i})
"""

# A child that dies (SIGKILL, no cleanup) after writing the temp file and before moving it over the registry.
DIE_BEFORE_REPLACE = r"""
import os, signal, sys
from embodied_tui.data import store
from embodied_tui.data.store import Registry

def die(src, dst):
    assert os.path.getsize(src) > 0  # the new registry is fully written and fsynced at this point
    os.kill(os.getpid(), signal.SIGKILL)

store.os.replace = die
Registry(sys.argv[1]).table_insert("measurements", {"doomed": True})
"""

# A child that writes in a loop until it is killed.
WRITE_LOOP = r"""
import sys
from embodied_tui.data.store import Registry
reg = Registry(sys.argv[1])
n = 0
while True:
    reg.table_insert("measurements", {"child": int(sys.argv[2]), "n": n, "pad": "x" * 2000})
    n += 1
"""


def spawn(script: str, *args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_sixteen_processes_lose_nothing(db, tmp_path):
    go = tmp_path / "go"
    children = [spawn(WRITER, db, i, go) for i in range(16)]
    time.sleep(0.5)  # let them import and wait at the start line
    go.touch()
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    data = json.loads(db.read_bytes())  # valid JSON
    assert store._sealed(db.read_bytes())
    records = Registry(db).list_models()
    assert sorted(r.name for r in records) == sorted(f"model-{i}" for i in range(16))
    assert all(r.tags == {"worker": r.name.split("-")[1]} and r.version == 1 for r in records)
    assert sorted(d["worker"] for d in Registry(db).table_all("measurements")) == list(range(16))
    assert len(data["models"]) == 16
    assert all(Registry(db).details(r).census[0].params == r.params for r in records)
    assert [p.name for p in db.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_killed_between_temp_write_and_replace_keeps_the_old_file(db):
    reg = Registry(db)
    reg.table_insert("measurements", {"kept": True})
    before = db.read_bytes()
    child = spawn(DIE_BEFORE_REPLACE, db)
    child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL
    assert db.read_bytes() == before  # the previous registry, byte for byte
    leftovers = [p for p in db.parent.iterdir() if p.name.endswith(".tmp")]
    assert len(leftovers) == 1 and json.loads(leftovers[0].read_bytes())["measurements"]  # it died after the temp
    # the dead process's lock is gone with it: the next writer goes ahead at once
    start = time.monotonic()
    reg.table_insert("measurements", {"after": True})
    assert time.monotonic() - start < store.LOCK_TIMEOUT_S
    assert reg.table_all("measurements") == [{"kept": True}, {"after": True}]


def test_killed_at_random_moments_the_file_always_parses(db):
    rng = random.Random(7)
    Registry(db).table_insert("measurements", {"n": -1})
    count = 1
    for k in range(6):
        child = spawn(WRITE_LOOP, db, k)
        deadline = time.monotonic() + 60
        while len(Registry(db).table_all("measurements")) == count and time.monotonic() < deadline:
            time.sleep(0.01)  # until its first write lands
        time.sleep(rng.random() * 0.2)  # then kill it wherever it is in its loop
        os.kill(child.pid, signal.SIGKILL)
        child.communicate(timeout=60)
        rows = Registry(db).table_all("measurements")  # parses and validates, every time
        assert len(rows) > count
        mine = [r["n"] for r in rows if r.get("child") == k]
        assert mine == list(range(len(mine)))  # every write that landed, in order, none lost in between
        count = len(rows)
