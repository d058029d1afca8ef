"""The settings table: every setting documented, every limit a user can hit configurable in one place."""

from __future__ import annotations

import argparse
import re

import pytest

from api.serve_flags import add_serve_flags, serve_overrides
from models.config import TABLE, Settings, markdown_table
from models.errors import InvalidInput

from .conftest import ROOT


def test_the_configuration_page_is_the_table():
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert markdown_table() in page, "docs/configuration.md is stale: regenerate it from models.config.markdown_table()"


def test_every_setting_has_a_documentation_line_and_a_field():
    fields = set(Settings.__dataclass_fields__)
    assert fields == {s.name for s in TABLE}
    for setting in TABLE:
        assert setting.doc.strip().endswith((".", ")")), setting.name


def test_no_environment_variable_is_read_outside_the_table():
    """A PAPERSEARCH_* variable named in product code must be one of the table's."""
    known = {s.env for s in TABLE if s.env}
    for package in ("models", "indexer", "search", "api"):
        for path in (ROOT / package).rglob("*.py"):
            for name in re.findall(r"PAPERSEARCH_[A-Z_]+", path.read_text()):
                assert name in known, f"{path.relative_to(ROOT)} reads {name}, which is not in models/config.TABLE"


def test_environment_sets_and_checks_values(monkeypatch):
    monkeypatch.setenv("PAPERSEARCH_MAX_LIMIT", "25")
    monkeypatch.setenv("PAPERSEARCH_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = Settings.from_env(max_offset=50)
    assert (settings.max_limit, settings.max_offset) == (25, 50)
    assert settings.cors_origins == ("https://a.example", "https://b.example")
    monkeypatch.setenv("PAPERSEARCH_MAX_LIMIT", "0")
    with pytest.raises(InvalidInput, match=r"\$PAPERSEARCH_MAX_LIMIT must be at least 1"):
        Settings.from_env()
    monkeypatch.setenv("PAPERSEARCH_MAX_LIMIT", "many")
    with pytest.raises(InvalidInput, match="PAPERSEARCH_MAX_LIMIT='many' is not a valid max_limit"):
        Settings.from_env()


def test_serve_flags_come_from_the_table():
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_serve_flags(parser)
    args = parser.parse_args(["--max-limit", "7", "--write-queue-seconds", "2.5"])
    overrides = serve_overrides(args)
    assert overrides["max_limit"] == 7 and overrides["write_queue_seconds"] == 2.5
    assert overrides["max_body_bytes"] is None  # not given: the environment or the default holds
    with pytest.raises(argparse.ArgumentError, match="--max-limit must be at least 1"):
        parser.parse_args(["--max-limit", "0"])
