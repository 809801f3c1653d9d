"""The privacy modes: one module per mode, each exporting a `Mode` record; a new mode is one module and one line
below (plus its rows of the visibility table)."""

from __future__ import annotations

from . import escrowed, payee_transparent, pseudonymous, selective, tiered, transparent
from .base import Mode

REGISTRY: dict[str, Mode] = {
    m.name: m
    for m in (
        transparent.MODE,
        pseudonymous.MODE,
        tiered.MODE,
        payee_transparent.MODE,
        escrowed.MODE,
        selective.MODE,
    )
}
