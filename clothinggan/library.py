"""The persistent design library: saved designs that outlive a session and are shared within a team.

SQLAlchemy Core over one ``designs`` table: SQLite in the user cache by default (WAL + busy timeout,
so several app processes and threads can write at once), or PostgreSQL (psycopg 3) for a team server.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import threading
import time
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

import numpy as np
from sqlalchemy import (Column, Double, Index, Integer, LargeBinary, MetaData, String, Table, Text, create_engine,
                        delete, event, func, insert, inspect, select, text, update)
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (ArgumentError, DBAPIError, IntegrityError, OperationalError, ProgrammingError,
                            SQLAlchemyError)
from sqlalchemy.pool import StaticPool

from clothinggan import settings
from clothinggan.errors import ClothingGANError, LatentFormatError
from clothinggan.designs import Design, describe_provenance
from clothinggan.paths import cache_dir

log = logging.getLogger(__name__)

URL_ENV = settings.LIBRARY_URL
# Writers wait this long for another writer's lock instead of failing with "database is locked".
BUSY_TIMEOUT_S = 30.0
# Streamlit runs every session's script in its own thread; a rerun holds a connection for a few
# queries at most, so 8 kept open plus 16 on demand serve dozens of designers without queueing.
POOL_SIZE = 8
POOL_OVERFLOW = 16
POOL_TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5
RETRY_DELAY_S = 0.5
PAGE_SIZE = 24
# Any constant works: every clothinggan process takes this advisory lock to create the schema.
SCHEMA_LOCK_KEY = 0x636C6F7468  # "cloth"

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
# Each browser session's designs, kept so a reload or a server restart loses nothing (clothinggan.drafts).
drafts_table = Table(
    "drafts", metadata,
    Column("token", String(64), primary_key=True),
    Column("data", LargeBinary, nullable=False),         # clothinggan.drafts.encode_session
    Column("updated", Double, nullable=False, index=True),
    # Bumped by every write, which only lands on the revision its writer last saw (compare-and-swap):
    # two tabs of one session never overwrite each other's designs. Older libraries get it at start.
    Column("revision", Integer, nullable=False, server_default="0"),
)
DRAFT_MAX_AGE_S = 90 * 24 * 3600  # a draft nobody opened for 90 days is removed
# Listings page through the most recently saved first; libraries made before this index get it at start.
updated_index = Index("ix_designs_updated", designs_table.c.updated)


@dataclass(frozen=True)
class Draft:
    """A session draft as kept: its bytes and the revision a writer must name to replace them."""

    data: bytes
    revision: int


class LibraryUnavailableError(ClothingGANError):
    """The library's database could not be reached or refused the operation (server down, connection lost)."""


def default_url() -> str:
    """``CLOTHINGGAN_LIBRARY_URL`` if set, else a SQLite file in the user cache."""
    return settings.library_url() or f"sqlite:///{cache_dir() / 'library.sqlite'}"


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3, the driver the team setup installs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


@dataclass(frozen=True)
class LibraryEntry:
    """One saved design without its ws: what a library listing needs, cheap to fetch by the hundred.

    copy_of: set by ``save`` when the id was another author's design, so this one was saved beside it.
    """

    id: str
    model_id: str
    name: str
    shape: tuple[int, int]
    provenance: dict[str, Any] = field(hash=False)
    author: str | None
    created: float
    updated: float
    copy_of: str | None = None

    def describe(self) -> str:
        return describe_provenance(self.provenance)


@dataclass(frozen=True)
class SkippedRow:
    """A saved row that cannot be read, and why: listings skip it instead of failing."""

    id: str
    reason: str


@dataclass(frozen=True)
class LibraryPage:
    """One page of a listing: its entries, how many rows match in all, and the unreadable rows skipped."""

    entries: list[LibraryEntry]
    total: int
    offset: int
    limit: int | None
    skipped: list[SkippedRow]

    @property
    def pages(self) -> int:
        return 1 if not self.limit else max(1, -(-self.total // self.limit))


def _is_sqlite_memory(url: str) -> bool:
    return url in ("sqlite://", "sqlite:///:memory:") or url.startswith("sqlite:///:memory:?")


def _make_engine(url: str, pool_size: int) -> Engine:
    if _is_sqlite_memory(url):
        # One shared connection: otherwise every pooled connection would see its own empty database.
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    elif url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S}, pool_size=pool_size,
                               max_overflow=POOL_OVERFLOW, pool_timeout=POOL_TIMEOUT_S)
    else:
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S} if url.startswith("postgresql+psycopg") else {}
        # pre_ping: a connection the server dropped (restart, idle timeout) is replaced at checkout.
        return create_engine(url, pool_pre_ping=True, pool_size=pool_size, max_overflow=POOL_OVERFLOW,
                             pool_timeout=POOL_TIMEOUT_S, pool_recycle=1800, connect_args=connect_args)

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


_SURROGATES = re.compile("[\ud800-\udfff]")


def _clean_text(value: str) -> str:
    """The text with lone surrogates replaced: no database driver can encode them."""
    return _SURROGATES.sub("\ufffd", value)


def _encode(design: Design, author: str | None, now: float) -> dict[str, Any]:
    return {"id": design.id, "model_id": design.model_id, "name": _clean_text(design.name),
            "ws": design.ws.astype("<f4").tobytes(), "shape": f"{design.num_ws},{design.w_dim}",
            "provenance": _clean_text(json.dumps(design.provenance, ensure_ascii=False)),
            "author": _clean_text(author) if author else None, "created": design.created, "updated": now}


def copy_id(design_id: str, author: str | None) -> str:
    """The id an author's own copy of someone else's design gets: the same on every re-save."""
    return hashlib.sha256(f"{design_id}\x00{author or ''}".encode("utf-8", "replace")).hexdigest()[:32]


def _parse_shape(text_: object, design_id: str) -> tuple[int, int]:
    try:
        num_ws, w_dim = (int(part) for part in str(text_).split(","))
    except ValueError:
        raise LatentFormatError(f"The saved design {design_id} is corrupt: shape {text_!r} is not "
                                f"'num_ws,w_dim'.") from None
    if num_ws < 1 or w_dim < 1:
        raise LatentFormatError(f"The saved design {design_id} is corrupt: shape {text_!r} is empty.")
    return num_ws, w_dim


def _parse_provenance(text_: object, design_id: str) -> dict[str, Any]:
    try:
        provenance = json.loads(text_)  # type: ignore[arg-type]
    except (TypeError, ValueError, RecursionError):
        raise LatentFormatError(f"The saved design {design_id} is corrupt: its provenance is not JSON.") from None
    if not isinstance(provenance, dict):
        raise LatentFormatError(f"The saved design {design_id} is corrupt: its provenance is not an object.")
    return provenance


def _parse_time(value: object, design_id: str, what: str) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number):
        raise LatentFormatError(f"The saved design {design_id} is corrupt: its {what} time is {value!r}.")
    return number


def _entry_from_row(row: Any) -> LibraryEntry:
    """A listing entry, checked as far as a listing can (everything but the ws values)."""
    design_id = str(row.id)
    shape = _parse_shape(row.shape, design_id)
    if row.ws_bytes is not None and int(row.ws_bytes) != 4 * shape[0] * shape[1]:
        raise LatentFormatError(f"The saved design {design_id} is corrupt: {row.ws_bytes} bytes of ws do not "
                                f"fit shape {shape}.")
    return LibraryEntry(id=design_id, model_id=str(row.model_id), name=str(row.name), shape=shape,
                        provenance=_parse_provenance(row.provenance, design_id),
                        author=None if row.author is None else str(row.author),
                        created=_parse_time(row.created, design_id, "creation"),
                        updated=_parse_time(row.updated, design_id, "save"))


T = TypeVar("T")


class DesignLibrary:
    """Saved designs in a database: ``save``, ``search``/``list``, ``load``, ``rename``, ``delete``.

    url:       any SQLAlchemy URL; None → ``CLOTHINGGAN_LIBRARY_URL`` or ``cache_dir()/library.sqlite``;
               ``postgresql://user@host/db`` uses psycopg 3.
    pool_size: connections kept open (a Streamlit process serves every session from one library).

    Saving never replaces another author's design: a design whose id belongs to someone else is
    saved as the saver's own copy beside it (``LibraryEntry.copy_of``). Every write is one
    transaction; a lost connection is retried once, then raises ``LibraryUnavailableError``.
    """

    def __init__(self, url: str | None = None, pool_size: int = POOL_SIZE) -> None:
        self.url = normalise_url(url or default_url())
        try:
            self.engine = _make_engine(self.url, pool_size)
        except (ArgumentError, ImportError) as exc:
            raise LibraryUnavailableError(f"The design library URL {self._safe_url(self.url)} cannot be used: "
                                          f"{exc}.") from None
        # An in-memory library is one shared connection (StaticPool): two threads' transactions
        # would interleave on it ("cannot commit - no transaction is active"), so they take turns.
        self._turns = threading.Lock() if _is_sqlite_memory(self.url) else nullcontext()
        self._run("open", self._create_schema)

    @contextmanager
    def _connection(self, transaction: bool = False) -> Iterator[Connection]:
        """A pooled connection; with ``transaction`` it commits on success and rolls back on error."""
        with self._turns, (self.engine.begin() if transaction else self.engine.connect()) as conn:
            yield conn

    @staticmethod
    def _safe_url(url: str) -> str:
        try:
            return make_url(url).render_as_string(hide_password=True)
        except ArgumentError:
            return "(unparsable URL)"

    def _create_schema(self) -> None:
        if self.engine.dialect.name == "postgresql":
            # Concurrent CREATE TABLEs collide in pg_type even with IF NOT EXISTS: serialise them.
            with self._connection(transaction=True) as conn:
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
                metadata.create_all(conn)
                updated_index.create(conn, checkfirst=True)
                _add_draft_revision(conn)
            return
        try:
            metadata.create_all(self.engine)
        except (OperationalError, ProgrammingError):
            # Two processes opening a new library race to create the table; losing that race is fine.
            if not inspect(self.engine).has_table(designs_table.name):
                raise
        try:
            updated_index.create(self.engine, checkfirst=True)
        except (OperationalError, ProgrammingError):
            pass  # created by a concurrent opener; an index only speeds listings up
        try:
            with self._connection(transaction=True) as conn:
                _add_draft_revision(conn)
        except (OperationalError, ProgrammingError):
            with self._connection() as conn:  # "duplicate column": a concurrent opener added it first
                if not _has_draft_revision(conn):
                    raise

    def _run(self, what: str, operation: Callable[[], T]) -> T:
        """Run one database operation; retry once if the connection was lost, then fail in one sentence."""
        for attempt in (1, 2):
            try:
                return operation()
            except (OperationalError, DBAPIError) as exc:
                transient = isinstance(exc, OperationalError) or exc.connection_invalidated
                if attempt == 2 or not transient:
                    raise self._unavailable(what, exc) from None
                log.warning("design library: %s failed (%s); retrying once", what, exc.orig)
                time.sleep(RETRY_DELAY_S)
            except SQLAlchemyError as exc:  # pool exhausted, unusable schema, …
                raise self._unavailable(what, exc) from None
        raise AssertionError("unreachable")

    def _unavailable(self, what: str, exc: SQLAlchemyError) -> LibraryUnavailableError:
        cause = getattr(exc, "orig", None) or exc
        detail = " ".join(str(cause).split())[:200].rstrip(".") or type(cause).__name__
        log.warning("design library %s: %s failed: %s", self._safe_url(self.url), what, detail)
        return LibraryUnavailableError(
            f"The design library ({self._safe_url(self.url)}) could not {what} ({detail}); nothing was lost: "
            f"your designs are still in this session, try again in a moment")

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> DesignLibrary:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"DesignLibrary({self._safe_url(self.url)!r})"

    # -- writing ----------------------------------------------------------------------------------
    def _upsert_own(self, conn: Connection, row: dict[str, Any]) -> bool:
        """Insert the row, or replace the saved one if it has the same author and model; False if it has not."""
        t = designs_table
        same_owner = t.c.author.is_not_distinct_from(row["author"]) & (t.c.model_id == row["model_id"])
        dialect = conn.dialect.name
        if dialect in ("sqlite", "postgresql"):
            if dialect == "sqlite":
                from sqlalchemy.dialects.sqlite import insert as dialect_insert
            else:
                from sqlalchemy.dialects.postgresql import insert as dialect_insert
            stmt = dialect_insert(t).values(**row)
            changed = {k: stmt.excluded[k] for k in row if k not in ("id", "author", "model_id", "created")}
            # One statement, so a concurrent saver of the same id can neither interleave nor be overwritten.
            # RETURNING, not rowcount: drivers disagree on the rowcount of an upsert.
            result = conn.execute(stmt.on_conflict_do_update(index_elements=[t.c.id], set_=changed,
                                                             where=same_owner).returning(t.c.id))
            return result.first() is not None
        found = conn.execute(select(t.c.id).where(t.c.id == row["id"]).with_for_update()).first()
        if found is None:
            conn.execute(insert(t).values(**row))
            return True
        changed = {k: v for k, v in row.items() if k not in ("id", "author", "model_id", "created")}
        return conn.execute(update(t).where((t.c.id == row["id"]) & same_owner).values(**changed)).rowcount > 0

    def _save_rows(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        saved = []
        with self._connection(transaction=True) as conn:
            for row in rows:
                if self._upsert_own(conn, row):
                    saved.append(row)
                    continue
                copy = {**row, "id": copy_id(row["id"], row["author"]), "copy_of": row["id"]}
                stored = {k: v for k, v in copy.items() if k != "copy_of"}
                if not self._upsert_own(conn, stored):  # that id is taken too (another model): a fresh one
                    copy["id"] = stored["id"] = uuid.uuid4().hex
                    conn.execute(insert(designs_table).values(**stored))
                saved.append(copy)
        return saved

    def save(self, design: Design, author: str | None = None) -> LibraryEntry:
        """Save a design (insert, or update the saver's own one with the same id); returns its entry."""
        return self.save_many([design], author)[0]

    def save_many(self, designs: Iterable[Design], author: str | None = None) -> list[LibraryEntry]:
        """Save several designs in one transaction (all or none).

        A design whose id is saved by another author (or for another model) is saved as a copy
        under a new id (the same for every re-save by this author); its entry says ``copy_of``.
        """
        author = author.strip() if isinstance(author, str) and author.strip() else None
        now = time.time()
        rows = []
        for i, design in enumerate(designs):
            if not isinstance(design, Design):
                raise TypeError(f"the library saves Design objects, got {type(design).__name__}")
            # A microsecond apart, first newest: listings (newest first) keep the order they were given
            # in, where one shared time had left them in the order of their random ids.
            rows.append(_encode(design, author, now - i * 1e-6))
        saved = self._run("save", lambda: self._save_rows(rows))
        return [LibraryEntry(id=r["id"], model_id=r["model_id"], name=r["name"],
                             shape=_parse_shape(r["shape"], r["id"]), provenance=json.loads(r["provenance"]),
                             author=r["author"], created=r["created"], updated=r["updated"],
                             copy_of=r.get("copy_of")) for r in saved]

    def rename(self, design_id: str, name: str) -> None:
        """Rename a saved design (KeyError if the library has no such design)."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a design's name cannot be empty")

        def run() -> int:
            with self._connection(transaction=True) as conn:
                return conn.execute(update(designs_table).where(designs_table.c.id == design_id)
                                    .values(name=_clean_text(name.strip()), updated=time.time())).rowcount

        if self._run("rename a design", run) == 0:
            raise KeyError(f"no design with id {design_id!r} in the library")

    def delete(self, design_id: str) -> bool:
        """Delete a saved design; False if it was not there (e.g. a teammate deleted it first)."""
        def run() -> int:
            with self._connection(transaction=True) as conn:
                return conn.execute(delete(designs_table).where(designs_table.c.id == design_id)).rowcount

        return self._run("delete a design", run) > 0

    # -- session drafts -----------------------------------------------------------------------------
    def save_draft(self, token: str, data: bytes, revision: int | None) -> int | None:
        """Keep a session's draft (``clothinggan.drafts`` bytes) if the kept one is still at ``revision``.

        revision: the revision this writer last read or wrote; None means "there is none yet".
        Returns the new revision, or None when another writer (a second tab of the session, another
        replica) got there first: nothing was written, read the draft again and merge.
        """
        t = drafts_table

        def run() -> int | None:
            now = time.time()
            with self._connection(transaction=True) as conn:
                if revision is None:
                    return 1 if _insert_draft(conn, token, data, now) else None
                # One statement: the row's revision is checked and bumped under the row's write lock.
                done = conn.execute(update(t).where((t.c.token == token) & (t.c.revision == revision))
                                    .values(data=data, updated=now, revision=revision + 1)).rowcount
                return revision + 1 if done == 1 else None

        return self._run("keep this session's designs", run)

    def load_draft(self, token: str) -> Draft | None:
        """The session draft kept under ``token`` (None if there is none); old drafts are removed first."""
        t = drafts_table

        def run() -> Draft | None:
            with self._connection(transaction=True) as conn:
                conn.execute(delete(t).where(t.c.updated < time.time() - DRAFT_MAX_AGE_S))
                row = conn.execute(select(t.c.data, t.c.revision).where(t.c.token == token)).first()
            return None if row is None else Draft(data=bytes(row.data), revision=int(row.revision))

        return self._run("restore this session's designs", run)

    # -- reading ----------------------------------------------------------------------------------
    @staticmethod
    def _filters(model_id: str | None, text_: str | None, author: str | None) -> list[Any]:
        t = designs_table
        where = []
        if model_id is not None:
            where.append(t.c.model_id == model_id)
        if text_ and text_.strip():
            where.append(func.lower(t.c.name).contains(_clean_text(text_.strip().lower()), autoescape=True))
        if author is not None:
            where.append(t.c.author.is_(None) if author == "" else t.c.author == author)
        return where

    def search(self, model_id: str | None = None, text: str | None = None, author: str | None = None,
               offset: int = 0, limit: int | None = PAGE_SIZE) -> LibraryPage:
        """One page of saved designs, most recently saved first, without their ws.

        model_id: only this model's designs; text: names containing it (any case); author: only
        theirs ("" = anonymous). Unreadable rows are skipped and reported in ``skipped``.
        """
        t = designs_table
        where = self._filters(model_id, text, author)
        query = (select(t.c.id, t.c.model_id, t.c.name, t.c.shape, t.c.provenance, t.c.author, t.c.created,
                        t.c.updated, func.length(t.c.ws).label("ws_bytes"))
                 .where(*where).order_by(t.c.updated.desc(), t.c.id).offset(max(0, int(offset))))
        if limit is not None:
            query = query.limit(max(1, int(limit)))
        count = select(func.count()).select_from(t).where(*where)

        def run() -> tuple[list[Any], int]:
            with self._connection() as conn:
                return conn.execute(query).all(), int(conn.execute(count).scalar_one())

        rows, total = self._run("list designs", run)
        entries, skipped = [], []
        for row in rows:
            try:
                entries.append(_entry_from_row(row))
            except LatentFormatError as exc:
                log.warning("design library: skipped an unreadable row: %s", exc)
                skipped.append(SkippedRow(id=str(row.id), reason=str(exc)))
        return LibraryPage(entries=entries, total=total, offset=max(0, int(offset)), limit=limit, skipped=skipped)

    def list(self, model_id: str | None = None) -> list[LibraryEntry]:
        """Every readable saved design, most recently saved first; only one model's if given."""
        return self.search(model_id=model_id, limit=None).entries

    def authors(self, model_id: str | None = None) -> list[str]:
        """The names of everyone who saved a design (of this model), sorted; anonymous ones not included."""
        t = designs_table
        query = select(t.c.author).where(t.c.author.is_not(None), *self._filters(model_id, None, None)) \
            .distinct().order_by(t.c.author)

        def run() -> list[str]:
            with self._connection() as conn:
                return [str(a) for a in conn.execute(query).scalars()]

        return self._run("list authors", run)

    def __len__(self) -> int:
        def run() -> int:
            with self._connection() as conn:
                return int(conn.execute(select(func.count()).select_from(designs_table)).scalar_one())

        return self._run("count designs", run)

    def __contains__(self, design_id: object) -> bool:
        def run() -> bool:
            with self._connection() as conn:
                return conn.execute(select(designs_table.c.id).where(designs_table.c.id == design_id)).first() \
                    is not None

        return self._run("look up a design", run)

    def load(self, design_id: str) -> Design:
        """The saved design with this id (KeyError if absent, LatentFormatError if its row is corrupt)."""
        found = self.load_many([design_id])
        if design_id not in found:
            raise KeyError(f"no design with id {design_id!r} in the library")
        result = found[design_id]
        if isinstance(result, LatentFormatError):
            raise result
        return result

    def load_many(self, design_ids: Iterable[str]) -> dict[str, Design | LatentFormatError]:
        """The saved designs with these ids in one query (a listing page's thumbnails).

        Absent ids are left out; a corrupt row maps to its LatentFormatError, so one damaged design
        never hides the others.
        """
        ids = list(dict.fromkeys(design_ids))
        if not ids:
            return {}

        def run() -> list[Any]:
            with self._connection() as conn:
                return conn.execute(select(designs_table).where(designs_table.c.id.in_(ids))).all()

        found: dict[str, Design | LatentFormatError] = {}
        for row in self._run("load designs", run):
            try:
                found[str(row.id)] = _design_from_row(row)
            except LatentFormatError as exc:
                found[str(row.id)] = exc
        return found


def _insert_draft(conn: Connection, token: str, data: bytes, now: float) -> bool:
    """Insert a first draft under ``token``; False (and nothing written) if one is kept already."""
    t = drafts_table
    row = {"token": token, "data": data, "updated": now, "revision": 1}
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        if dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        else:
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        # RETURNING, not rowcount: drivers disagree on the rowcount of an upsert.
        stmt = dialect_insert(t).values(**row).on_conflict_do_nothing(index_elements=[t.c.token])
        return conn.execute(stmt.returning(t.c.token)).first() is not None
    try:
        with conn.begin_nested():  # a savepoint: the duplicate key leaves the transaction usable
            conn.execute(insert(t).values(**row))
    except IntegrityError:
        return False
    return True


def _has_draft_revision(conn: Connection) -> bool:
    return "revision" in {c["name"] for c in inspect(conn).get_columns(drafts_table.name)}


def _add_draft_revision(conn: Connection) -> None:
    """Give a library made before drafts had revisions its ``revision`` column (0 for kept drafts)."""
    if not _has_draft_revision(conn):
        conn.execute(text(f"ALTER TABLE {drafts_table.name} ADD COLUMN revision INTEGER NOT NULL DEFAULT 0"))


def _design_from_row(row: Any) -> Design:
    """A full saved row as a Design, every field checked; LatentFormatError names the row."""
    design_id = str(row.id)
    shape = _parse_shape(row.shape, design_id)
    blob = bytes(row.ws) if row.ws is not None else b""
    if len(blob) != 4 * shape[0] * shape[1]:
        raise LatentFormatError(f"The saved design {design_id} is corrupt: {len(blob)} bytes of ws do not "
                                f"fit shape {shape}.")
    ws = np.frombuffer(blob, dtype="<f4").reshape(shape)
    try:
        return Design(ws=ws, model_id=str(row.model_id), name=str(row.name),
                      provenance=_parse_provenance(row.provenance, design_id), id=design_id,
                      created=_parse_time(row.created, design_id, "creation"))
    except LatentFormatError as exc:
        if str(exc).startswith(f"The saved design {design_id}"):
            raise
        raise LatentFormatError(f"The saved design {design_id} is corrupt: {exc}") from None
