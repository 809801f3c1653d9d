"""The twelve example policy files with their specs.

This folder is installed as the package `tenge_ledger.policies` (see setup.py), so that `tenge demo`, `tenge
privacy matrix` and its report find the rules wherever tenge-ledger is installed, not only in a checkout."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def shipped_policies() -> Path:
    """The folder holding the shipped *.policy and *.spec.toml files (a real directory: wheels install unzipped)."""
    return Path(str(files(__name__)))
