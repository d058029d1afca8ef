"""The package surface: what each package declares public resolves, and importing one stays cheap."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

from .conftest import ROOT


@pytest.mark.parametrize("package", ["models", "indexer", "search", "api"])
def test_every_public_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_importing_the_vocabulary_loads_no_heavy_library():
    code = ("import sys, models, models.config, models.errors, api; "
            "print(sorted(m for m in ('faiss', 'torch', 'fastapi', 'tantivy') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
