"""The persistent design library: saved designs that outlive a session and are shared within a team.

SQLAlchemy Core over one ``designs`` table, SQLite in the user cache by default (WAL + busy timeout,
so several app processes and threads can write at once) or any SQLAlchemy URL for a team server.
"""
from __future__ import annotations

import json
import os
import threading
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
from sqlalchemy import (Column, Double, LargeBinary, MetaData, String, Table, Text, create_engine, delete,
                        event, insert, inspect, select, update)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.pool import StaticPool

from clothinggan.errors import LatentFormatError
from clothinggan.latents import Design, describe_provenance
from clothinggan.paths import cache_dir

URL_ENV = "CLOTHINGGAN_LIBRARY_URL"
# Writers wait this long for another writer's lock instead of failing with "database is locked".
BUSY_TIMEOUT_S = 30.0

metadata = MetaData()
designs_table = Table(
    "designs", metadata,
    Column("id", String(64), primary_key=True),
    Column("model_id", String(128), nullable=False, index=True),
    Column("name", Text, nullable=False),
    Column("ws", LargeBinary, nullable=False),          # little-endian float32, row-major
    Column("shape", String(32), nullable=False),        # "num_ws,w_dim"
    Column("provenance", Text, nullable=False),         # JSON text: portable to every backend
    Column("author", Text, nullable=True),
    Column("created", Double, nullable=False),          # when the design was made (Design.created)
    Column("updated", Double, nullable=False),          # when it was last saved or renamed
)


def default_url() -> str:
    """``CLOTHINGGAN_LIBRARY_URL`` if set, else a SQLite file in the user cache."""
    return os.environ.get(URL_ENV) or f"sqlite:///{cache_dir() / 'library.sqlite'}"


@dataclass(frozen=True)
class LibraryEntry:
    """One saved design without its ws: what a library listing needs, cheap to fetch by the hundred."""

    id: str
    model_id: str
    name: str
    shape: tuple[int, int]
    provenance: dict[str, Any] = field(hash=False)
    author: str | None
    created: float
    updated: float

    def describe(self) -> str:
        return describe_provenance(self.provenance)


def _is_sqlite_memory(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:") or url.startswith("sqlite:///:memory:?")


def _make_engine(url: str) -> Engine:
    if _is_sqlite_memory(url):
        # One shared connection: otherwise every pooled connection would see its own empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
    else:
        return create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # busy_timeout first, so switching the journal mode also waits for other connections.
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # WAL: readers never block the writer and a crashed writer cannot corrupt the file.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # durable at checkpoints, safe with WAL
        cursor.close()

    return engine


def _encode(design: Design, author: str | None, now: float) -> dict[str, Any]:
    return {"id": design.id, "model_id": design.model_id, "name": design.name,
            "ws": design.ws.astype("<f4").tobytes(), "shape": f"{design.num_ws},{design.w_dim}",
            "provenance": json.dumps(design.provenance, ensure_ascii=False), "author": author,
            "created": design.created, "updated": now}


def _parse_shape(text: str, design_id: str) -> tuple[int, int]:
    try:
        num_ws, w_dim = (int(part) for part in str(text).split(","))
    except ValueError:
        raise LatentFormatError(f"The saved design {design_id} is corrupt: shape {text!r} is not "
                                f"'num_ws,w_dim'.") from None
    if num_ws < 1 or w_dim < 1:
        raise LatentFormatError(f"The saved design {design_id} is corrupt: shape {text!r} is empty.")
    return num_ws, w_dim


def _parse_provenance(text: str, design_id: str) -> dict[str, Any]:
    try:
        provenance = json.loads(text)
    except (TypeError, ValueError):
        raise LatentFormatError(f"The saved design {design_id} is corrupt: its provenance is not JSON.") from None
    if not isinstance(provenance, dict):
        raise LatentFormatError(f"The saved design {design_id} is corrupt: its provenance is not an object.")
    return provenance


class DesignLibrary:
    """Saved designs in a database: ``save`` (upsert), ``list``, ``load``, ``rename``, ``delete``.

    url: any SQLAlchemy URL; None → ``CLOTHINGGAN_LIBRARY_URL`` or ``cache_dir()/library.sqlite``.

    Every write is one statement in its own transaction, so concurrent SQLite writers only ever
    wait for the lock (busy timeout) and never hit a stale-snapshot failure.
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or default_url()
        self.engine = _make_engine(self.url)
        # An in-memory library is one shared connection (StaticPool): two threads' transactions
        # would interleave on it ("cannot commit - no transaction is active"), so they take turns.
        self._turns = threading.Lock() if _is_sqlite_memory(self.url) else nullcontext()
        self._create_schema()

    @contextmanager
    def _connection(self, transaction: bool) -> Iterator[Connection]:
        with self._turns, (self.engine.begin() if transaction else self.engine.connect()) as conn:
            yield conn

    def _create_schema(self) -> None:
        try:
            metadata.create_all(self.engine)
        except (OperationalError, ProgrammingError):
            # Two processes opening a new library race to create the table; losing that race is fine.
            if not inspect(self.engine).has_table(designs_table.name):
                raise

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> DesignLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DesignLibrary({self.engine.url.render_as_string(hide_password=True)!r})"

    # -- writing ----------------------------------------------------------------------------------
    def _upsert(self, conn: Connection, row: dict[str, Any]) -> None:
        """Insert or replace one row in a single statement where the backend has one."""
        keep_author = row["author"] is None  # re-saving without an author keeps the recorded one
        changed = {k: v for k, v in row.items() if k != "id" and not (k == "author" and keep_author)}
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            stmt = dialect_insert(designs_table).values(**row)
            conn.execute(stmt.on_conflict_do_update(index_elements=[designs_table.c.id],
                                                    set_={k: stmt.excluded[k] for k in changed}))
            return
        result = conn.execute(update(designs_table).where(designs_table.c.id == row["id"]).values(**changed))
        if result.rowcount == 0:
            conn.execute(insert(designs_table).values(**row))

    def save(self, design: Design, author: str | None = None) -> LibraryEntry:
        """Save a design (insert, or replace the one with the same id); returns its listing entry."""
        return self.save_many([design], author)[0]

    def save_many(self, designs: Iterable[Design], author: str | None = None) -> list[LibraryEntry]:
        """Save several designs in one transaction (all or none)."""
        now = time.time()
        rows = []
        for design in designs:
            if not isinstance(design, Design):
                raise TypeError(f"the library saves Design objects, got {type(design).__name__}")
            rows.append(_encode(design, author, now))
        with self._connection(transaction=True) as conn:
            for row in rows:
                self._upsert(conn, row)
        return [LibraryEntry(id=r["id"], model_id=r["model_id"], name=r["name"],
                             shape=_parse_shape(r["shape"], r["id"]), provenance=json.loads(r["provenance"]),
                             author=r["author"], created=r["created"], updated=r["updated"]) for r in rows]

    def rename(self, design_id: str, name: str) -> None:
        """Rename a saved design (KeyError if the library has no such design)."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a design's name cannot be empty")
        with self._connection(transaction=True) as conn:
            result = conn.execute(update(designs_table).where(designs_table.c.id == design_id)
                                  .values(name=name.strip(), updated=time.time()))
        if result.rowcount == 0:
            raise KeyError(f"no design with id {design_id!r} in the library")

    def delete(self, design_id: str) -> bool:
        """Delete a saved design; False if it was not there (e.g. a teammate deleted it first)."""
        with self._connection(transaction=True) as conn:
            result = conn.execute(delete(designs_table).where(designs_table.c.id == design_id))
        return result.rowcount > 0

    # -- reading ----------------------------------------------------------------------------------
    def list(self, model_id: str | None = None) -> list[LibraryEntry]:
        """Saved designs, most recently saved first, without their ws; only one model's if given."""
        t = designs_table
        query = select(t.c.id, t.c.model_id, t.c.name, t.c.shape, t.c.provenance, t.c.author, t.c.created,
                       t.c.updated).order_by(t.c.updated.desc(), t.c.id)
        if model_id is not None:
            query = query.where(t.c.model_id == model_id)
        with self._connection(transaction=False) as conn:
            rows = conn.execute(query).all()
        return [LibraryEntry(id=r.id, model_id=r.model_id, name=r.name, shape=_parse_shape(r.shape, r.id),
                             provenance=_parse_provenance(r.provenance, r.id), author=r.author,
                             created=float(r.created), updated=float(r.updated)) for r in rows]

    def __len__(self) -> int:
        from sqlalchemy import func

        with self._connection(transaction=False) as conn:
            return int(conn.execute(select(func.count()).select_from(designs_table)).scalar_one())

    def __contains__(self, design_id: object) -> bool:
        with self._connection(transaction=False) as conn:
            found = conn.execute(select(designs_table.c.id).where(designs_table.c.id == design_id)).first()
        return found is not None

    def load(self, design_id: str) -> Design:
        """The saved design with this id (KeyError if absent, LatentFormatError if its row is corrupt)."""
        with self._connection(transaction=False) as conn:
            row = conn.execute(select(designs_table).where(designs_table.c.id == design_id)).first()
        if row is None:
            raise KeyError(f"no design with id {design_id!r} in the library")
        shape = _parse_shape(row.shape, design_id)
        blob = bytes(row.ws) if row.ws is not None else b""
        if len(blob) != 4 * shape[0] * shape[1]:
            raise LatentFormatError(f"The saved design {design_id} is corrupt: {len(blob)} bytes of ws do not "
                                    f"fit shape {shape}.")
        ws = np.frombuffer(blob, dtype="<f4").reshape(shape)
        try:
            return Design(ws=ws, model_id=row.model_id, name=row.name,
                          provenance=_parse_provenance(row.provenance, design_id), id=row.id,
                          created=row.created)
        except LatentFormatError as exc:
            raise LatentFormatError(f"The saved design {design_id} is corrupt: {exc}") from None
