"""Storage behind a narrow interface: reads inside a transaction, and one write of a whole change set."""

from __future__ import annotations

from ..core.errors import StoreError
from .base import Store


def open_store(url: str, create: bool = False) -> Store:
    """Open the store a `--db` value names: a postgresql:// URL, or a SQLite file path (`:memory:` too)."""
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from .postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise StoreError(f"the PostgreSQL store is not available: {exc}") from None
        return PostgresStore(url, create=create)
    from .sqlite import SqliteStore

    return SqliteStore(url, create=create)
