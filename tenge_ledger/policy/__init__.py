"""The policy language. (Being built: issue 3.)"""

from __future__ import annotations

from ..core.hooks import PolicyEngine


def load_engine(settings: dict) -> PolicyEngine | None:
    """The compiled engine of the policy set enabled in a ledger's settings; None when none is enabled."""
    return None
