"""Fits computed by a forked helper process (``services.fit_fork``): the cases (tests/fork_cases.py) run in a fresh
pytest, a process with one thread, as the CLI is (a test worker may hold threads that earlier tests left: tqdm's
monitor, a hashing pool; the fork is refused beside any other thread)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(not hasattr(os, "fork") or len(os.sched_getaffinity(0)) < 2,
                    reason="a second process needs fork and two CPUs")
def test_fits_shared_with_a_forked_helper_are_the_fits_of_one():
    ran = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                          str(HERE / "fork_cases.py")], cwd=HERE.parent, capture_output=True, text=True, timeout=600)
    said = ran.stdout + ran.stderr
    assert ran.returncode == 0, said[-4000:]
    passed = re.search(r"(\d+) passed", said)
    assert passed and int(passed.group(1)) >= 5 and "skipped" not in said, said[-2000:]
