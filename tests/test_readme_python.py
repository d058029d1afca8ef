"""The README's Python example runs as written (a real index, the bundled model, a fresh process)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from .conftest import ROOT, SAMPLE

pytestmark = pytest.mark.slow


def readme_python_example() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Python\n", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_readme_python_example_runs_as_written(tmp_path):
    shutil.copy(SAMPLE, tmp_path / "papers.jsonl")
    code = readme_python_example() + (
        "\nassert [h.paper.paper_id for h in related] and 'my-1' not in [h.paper.paper_id for h in related]"
        "\nassert deleted == ['my-1'] and unknown == []"
        "\nassert all(h.paper.year >= 2020 for h in recent)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "my-1" in done.stdout and "indexed 24" in done.stdout, done.stdout
