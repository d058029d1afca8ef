"""`papersearch serve` flags for the settings that models/config.py marks `serve_flag`.

Generated from the settings table, so a new server limit gets its flag, its environment variable and
its documentation line in one place.
"""

from __future__ import annotations

import argparse

from models.config import TABLE, parse_value


def add_serve_flags(parser: argparse.ArgumentParser) -> None:
    """One option per serve setting; the value is checked by the table's own parser and minimum."""
    for setting in TABLE:
        if not setting.flag:
            continue
        env = f"; ${setting.env}" if setting.env else ""
        default = setting.default_value()
        shown = ",".join(default) if isinstance(default, tuple) else default
        parser.add_argument(setting.flag, dest=setting.name, default=None, metavar="VALUE",
                            type=lambda text, s=setting: _parse(s, text),
                            help=f"{setting.doc} (default {shown}{env})")


def _parse(setting, text: str):
    try:
        return parse_value(setting, text, setting.flag)
    except Exception as exc:  # argparse turns this into a usage error (exit 2) naming the flag
        raise argparse.ArgumentTypeError(str(exc)) from None


def serve_overrides(args: argparse.Namespace) -> dict:
    """The serve settings given on the command line (None: not given, the environment or default holds)."""
    return {s.name: getattr(args, s.name, None) for s in TABLE if s.flag}
