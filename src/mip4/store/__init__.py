"""Persistent stores behind the engines' table interfaces (:mod:`mip4.core.bindings`):
an I/O layer (it opens files), which the daemons hand to the engines they build."""

from __future__ import annotations

from .sqlite import (
    SCHEMA_VERSION,
    SYNCHRONOUS,
    SqliteBindingStore,
    SqliteStore,
    SqliteVisitorStore,
    StoreError,
    check_store_file,
)

__all__ = [
    "SCHEMA_VERSION",
    "SYNCHRONOUS",
    "SqliteBindingStore",
    "SqliteStore",
    "SqliteVisitorStore",
    "StoreError",
    "check_store_file",
]
