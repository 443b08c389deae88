"""Engines and transactions for SQLite (the default) and PostgreSQL.

SQLite runs in WAL mode with foreign keys on and ``synchronous=FULL`` (a stored token must survive a power cut),
and every write transaction starts with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes
fails at once with "database is locked" when another writer got in between, instead of waiting (busy_timeout does
not apply to that upgrade). Reads use a second engine whose transactions stay deferred, so readers never queue
behind writers.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from filmroll.clock import Clock
from filmroll.errors import ConfigError, DatabaseError

BUSY_TIMEOUT_MS = 30_000  # writers queue behind BEGIN IMMEDIATE; waiting beats failing (``?timeout=`` seconds)
# SQLSTATE classes of a server that went away or is not taking connections yet: connection exceptions (08) and
# operator intervention (57P01 admin shutdown / pg_terminate_backend, 57P02 crash shutdown, 57P03 starting up).
_UNAVAILABLE_SQLSTATES = ("08", "57P")
# A server that cannot be reached, as connect() and the sockets under a driver say it.
_NETWORK_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EHOSTUNREACH, errno.ENETUNREACH,
                   errno.ENETDOWN, errno.ETIMEDOUT, errno.EPIPE, errno.ENOTCONN, errno.EADDRNOTAVAIL}


def rowcount(result: Any) -> int:
    """How many rows an UPDATE or DELETE matched (typed: SQLAlchemy's generic ``Result`` does not declare it)."""
    return int(result.rowcount)


def dialect_insert(session: AsyncSession, table: Any) -> Any:
    """``INSERT`` in the session's dialect, so ``.on_conflict_do_update``/``_do_nothing`` are at hand (SQLite and
    PostgreSQL spell them alike)."""
    from sqlalchemy.dialects import postgresql, sqlite

    return (postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached, dropped the connection or stayed locked: an outage
    to wait out and retry, not a bug. Refused or reset connections surface as OSError (SQLAlchemy wraps only the
    driver's own errors), but only those with a network errno count: any other OSError (a picture Pillow finds
    truncated, a full disk) is someone else's failure, and taking it for an outage retried it for ever."""
    if isinstance(exc, (ConnectionError, TimeoutError, socket.gaierror, sa_exc.TimeoutError)):
        return True
    if isinstance(exc, OSError):
        # asyncio's connect to a name with several addresses (localhost: ::1 and 127.0.0.1) that all failed, with
        # different messages, raises one OSError without an errno that lists them.
        return exc.errno in _NETWORK_ERRNOS or (exc.errno is None and str(exc).startswith("Multiple exceptions: "))
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated or isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return True  # SQLite's "database is locked" past busy_timeout is an OperationalError too
        cause: BaseException | None = exc.orig
        while cause is not None:
            sqlstate = getattr(cause, "sqlstate", None)
            if isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES):
                return True
            cause = cause.__cause__
    return False


def is_damaged(exc: BaseException) -> bool:
    """Whether ``exc`` means the database file itself is broken (malformed, or not a database at all): no retry
    mends it, so a worker stops and says so once instead of retrying for ever."""
    if not isinstance(exc, sa_exc.DBAPIError) or exc.orig is None:
        return False
    said = str(exc.orig).lower()
    return "malformed" in said or "file is not a database" in said


class CancelledCheckin(logging.Filter):
    """Drops the pool's "Exception during reset or similar" traceback when what interrupted the rollback of a
    returned connection was a cancellation: a stopping worker cancels tasks that may be inside a transaction, the
    pool then discards that connection, and nothing is lost. Logged as an ERROR, it followed the one line a worker
    says as it stops (on a damaged database file, say) with 25 lines of traceback. Any other failure still shows."""

    def filter(self, record: logging.LogRecord) -> bool:
        # (exc_info is a (type, value, traceback) tuple, or what a caller put there by hand: True, None)
        error = record.exc_info[1] if isinstance(record.exc_info, tuple) else None
        cancelled = isinstance(error, asyncio.CancelledError)
        return not (cancelled and record.name.startswith("sqlalchemy.pool"))


def async_url(url: str) -> str:
    """Accept the URLs people write (``sqlite:///x.db``, ``postgresql://…``) and pick the async driver. The URL is
    never echoed back: it may carry a password."""
    try:
        parsed = make_url(url)
    except Exception:
        raise ConfigError("FILMROLL_DATABASE_URL is not a database URL; write sqlite:///PATH/filmroll.db or "
                          "postgresql://USER@HOST/DATABASE") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:" or parsed.database.startswith("file:"):
            raise ConfigError("FILMROLL_DATABASE_URL names no SQLite file (an in-memory database would lose every "
                              "token at exit); write sqlite:///PATH/filmroll.db")
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ConfigError(f"FILMROLL_DATABASE_URL: filmroll supports SQLite and PostgreSQL, not {backend[:20]!r}")


def shown_url(url: str) -> str:
    """Where a database is, for a person: the SQLite file, or the server and database without the password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"the database file {parsed.database}"
    shown = parsed.set(drivername="postgresql", password=None, query={}).render_as_string(hide_password=True)
    return f"the database {shown}"


def explain(exc: BaseException, url: str) -> DatabaseError | None:
    """A database failure in words a person can act on (what is wrong, where, that nothing was changed), or None
    when ``exc`` is not one. Never a password, a statement or its values."""
    where = shown_url(url)
    orig = exc.orig if isinstance(exc, sa_exc.DBAPIError) else None
    said = str(orig).splitlines()[0][:200] if orig is not None and str(orig) else ""
    lowered = said.lower()
    if "file is not a database" in lowered or "malformed" in lowered:
        return DatabaseError(f"{where} is damaged or is not a SQLite database ({said}); nothing was changed. "
                             "Restore it from a backup, or point FILMROLL_DATABASE_URL at filmroll's database")
    if "database is locked" in lowered:
        return DatabaseError(f"{where} stayed locked by another process ({said}); nothing was changed. Try again "
                             "when that process is done")
    if "unable to open database file" in lowered:
        return DatabaseError(f"{where} cannot be opened (does its directory exist, and may filmroll write to it?); "
                             "nothing was changed")
    if "readonly" in lowered or "read-only" in lowered:
        return DatabaseError(f"{where} is read-only for filmroll ({said}); nothing was changed")
    if "does not exist" in lowered or "authentication failed" in lowered or "no pg_hba.conf" in lowered:
        return DatabaseError(f"{where} refused the connection ({said}); nothing was changed. Check "
                             "FILMROLL_DATABASE_URL")
    if is_unavailable(exc):
        reason = said or (exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__)
        return DatabaseError(f"cannot reach {where} ({reason}); nothing was changed. Is the server running, and "
                             "is FILMROLL_DATABASE_URL right?")
    return None


def _busy_timeout_ms(url: str) -> int:
    """SQLite's wait for another process's write lock: the URL's ``timeout`` (seconds, SQLAlchemy's own spelling for
    SQLite), or 30 s."""
    given = make_url(url).query.get("timeout")
    if given is None:
        return BUSY_TIMEOUT_MS
    try:
        seconds = float(given if isinstance(given, str) else given[-1])
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= 3600:
        raise ConfigError(f"FILMROLL_DATABASE_URL: timeout={given!r} is not a number of seconds from 0 to 3600")
    return round(seconds * 1000)


def keep_private(path: str) -> None:
    """The database file holds admin hashes, token ciphertexts and events: create it readable by its owner only,
    and take group and other access away from an existing one and its ``-wal``/``-shm`` (SQLite creates those with
    the database file's own mode, so a private database keeps them private)."""
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    # Create it only if it is missing (O_EXCL): opening and closing a database file this process already has open
    # would drop every POSIX lock SQLite holds on it, whatever descriptor took them.
    with contextlib.suppress(OSError):  # it exists, or its directory does not (SQLite itself then says so)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for name in (path, f"{path}-wal", f"{path}-shm"):
        with contextlib.suppress(OSError):
            if os.stat(name).st_mode & 0o077:
                os.chmod(name, 0o600)


def _sqlite_pragmas(engine: AsyncEngine, begin: str, busy_timeout_ms: int, path: str, create: bool) -> None:
    @event.listens_for(engine.sync_engine, "do_connect")
    def _private(dialect: Any, record: Any, cargs: Any, cparams: Any) -> None:
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):  # said here: a failed connect leaves aiosqlite's thread behind the loop
            raise DatabaseError(f"the database file {path} cannot be opened: its directory {directory} does not "
                                "exist; nothing was changed")
        if not create and not os.path.exists(path):  # SQLite would create an empty file on connect
            raise DatabaseError(f"the database file {path} does not exist yet; run `filmroll db upgrade` to create "
                                "it (or point FILMROLL_DATABASE_URL at filmroll's database); nothing was changed")
        keep_private(path)

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        # secure_delete: a deleted row's bytes are overwritten, not left in free pages (a deleted account's username
        # was still in the file); see Database.purge for the WAL's copies.
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "synchronous=FULL", "secure_delete=ON",
                       f"busy_timeout={busy_timeout_ms}"):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        connection.exec_driver_sql(begin)


class Database:
    """The engines of one database. ``transaction()`` for anything that may write, ``read()`` for the rest."""

    def __init__(self, url: str, *, echo: bool = False, clock: Clock | None = None, create: bool = True) -> None:
        """``create=False``: a SQLite file that does not exist is an error instead of a new empty database (every
        command but the four that migrate)."""
        self.url = async_url(url)
        self.clock = clock or Clock()
        self.is_sqlite = self.url.startswith("sqlite")
        # hide_parameters: a database error's message would otherwise carry the statement's values (a username typed
        # at sign-in, where a password typed in the wrong field lands), and such errors reach the log.
        options: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        if not self.is_sqlite:
            # Transactions here are short (no network call inside one), so a small pool serves a busy worker; many
            # processes share one server, whose default limit is 100 connections.
            options.update(pool_size=5, max_overflow=10, pool_timeout=60, pool_pre_ping=True)
        if self.is_sqlite:
            # One write connection per process: SQLite has one writer anyway, and queueing for the pool is an
            # asyncio wait, whereas connections contending for the write lock sleep in SQLite's busy handler
            # (up to 100 ms a try). Other processes still queue through busy_timeout.
            busy_timeout_ms = _busy_timeout_ms(self.url)
            self.engine = create_async_engine(self.url, pool_size=1, max_overflow=0, pool_timeout=120, **options)
            path = make_url(self.url).database or ""
            _sqlite_pragmas(self.engine, "BEGIN IMMEDIATE", busy_timeout_ms, path, create)
            self.read_engine = create_async_engine(self.url, **options)
            _sqlite_pragmas(self.read_engine, "BEGIN", busy_timeout_ms, path, create)
        else:
            self.engine = create_async_engine(self.url, **options)
            self.read_engine = self.engine
        self._writes = async_sessionmaker(self.engine, expire_on_commit=False)
        self._reads = async_sessionmaker(self.read_engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One write transaction: committed on success, rolled back on any exception."""
        async with self._writes() as session, session.begin():
            yield session

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._reads() as session, session.begin():
            yield session

    async def now(self) -> datetime:
        """The database's clock: every process that shares this database agrees on it (leases, due times)."""
        if self.is_sqlite:
            return self.clock.now()  # one machine, one clock
        before = self.clock.wall()
        async with self.read() as session:
            server: datetime = (await session.execute(text("SELECT now()"))).scalar_one().astimezone(UTC)
        # Correct this machine's clock towards the server's (see clock.py), taking the middle of the round trip.
        self.clock.correction = server - (before + (self.clock.wall() - before) / 2)
        return server + self.clock.offset

    async def purge(self) -> None:
        """After a deletion: on SQLite, copy the write-ahead log into the database (whose freed pages
        ``secure_delete`` zeroed) and truncate it, so no earlier copy of a deleted row stays in the ``-wal`` file.
        Readers on an older snapshot make it wait (busy_timeout), never fail; on PostgreSQL, nothing to do here."""
        if not self.is_sqlite:
            return
        async with self.engine.connect() as connection:
            # On the driver's connection: SQLAlchemy would begin a transaction first, inside which SQLite refuses
            # to checkpoint.
            raw = await connection.get_raw_connection()
            await raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()
