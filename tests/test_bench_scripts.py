"""The benchmark scripts run as the README writes them, including by path."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_no_benchmark_module_shadows_the_standard_library():
    # A script run by path puts benchmarks/ first on sys.path: benchmarks/http.py once hid `http`.
    names = {path.stem for path in (ROOT / "benchmarks").glob("*.py")}
    assert not names & set(sys.stdlib_module_names), names & set(sys.stdlib_module_names)


def test_load_script_runs_by_path():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "benchmarks/load.py", "--help"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "usage: load.py" in done.stdout
