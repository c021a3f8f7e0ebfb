"""One factory per vector store, for the contract test (tests/test_vector_store_contract.py).

A factory takes a fresh temporary directory and is a context manager yielding an empty store kept
there (or, for a server, in a database of its own), closing it afterwards. Add a store by adding
its factory to FACTORIES. A store whose optional package is missing fails the contract, never
skips it: the packages are in setup.cfg's test extra.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from rig_sync.vector_store import InMemoryVectorStore

StoreFactory = Callable[[Path], AbstractContextManager[Any]]


@contextmanager
def in_memory(directory: Path) -> Iterator[Any]:
    store: InMemoryVectorStore[Any] = InMemoryVectorStore()
    try:
        yield store
    finally:
        store.close()


@contextmanager
def sqlite(directory: Path) -> Iterator[Any]:
    from rig_sync.vector_stores.sqlite import SQLiteVectorStore

    store: SQLiteVectorStore[Any] = SQLiteVectorStore(directory / "store.db")
    try:
        yield store
    finally:
        store.close()


@contextmanager
def pgvector(directory: Path) -> Iterator[Any]:
    """A table of its own in the database the session's PostgreSQL keeps for factories."""
    from pg_support import drop_store_tables, factory_database

    from rig_sync.vector_stores.pgvector import PgVectorStore

    dsn, table = factory_database(), f"store_{uuid.uuid4().hex[:16]}"
    store: PgVectorStore[Any] = PgVectorStore(dsn, table)
    try:
        yield store
    finally:
        store.close()
        drop_store_tables(dsn, table)


@contextmanager
def lancedb(directory: Path) -> Iterator[Any]:
    from rig_sync.vector_stores.lancedb import LanceDBVectorStore

    store: LanceDBVectorStore[Any] = LanceDBVectorStore(directory / "lance")
    try:
        yield store
    finally:
        store.close()


FACTORIES: dict[str, StoreFactory] = {
    "memory": in_memory,
    "sqlite": sqlite,
    "pgvector": pgvector,
    "lancedb": lancedb,
}
