"""What counts as a database outage (to wait out) and what as a damaged database (to stop on): decided from the
error itself (store/database.py), never from its type alone far away."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import sqlite3

from sqlalchemy import exc as sa_exc

from filmroll.store.database import CancelledCheckin, is_damaged, is_unavailable


def test_only_a_network_failure_is_an_outage():
    assert is_unavailable(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    assert is_unavailable(ConnectionResetError(errno.ECONNRESET, "reset by peer"))
    assert is_unavailable(OSError(errno.EHOSTUNREACH, "No route to host"))
    assert is_unavailable(socket.gaierror(-2, "Name or service not known"))
    assert is_unavailable(TimeoutError())
    # asyncio's own words when every address of "localhost" (::1, 127.0.0.1) refused, with no errno of its own
    assert is_unavailable(OSError("Multiple exceptions: [Errno 111] Connect call failed ('::1', 5432, 0, 0), "
                                  "[Errno 111] Connect call failed ('127.0.0.1', 5432)"))
    # Pillow's "image file is truncated" is a bare OSError: once read as an outage, retried ~11 times a second.
    assert not is_unavailable(OSError("image file is truncated (6 bytes not processed)"))
    assert not is_unavailable(OSError(errno.ENOSPC, "No space left on device"))
    locked = sa_exc.OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))
    assert is_unavailable(locked) and not is_damaged(locked)


def test_a_broken_file_is_damaged_not_an_outage():
    for said in ("database disk image is malformed", "file is not a database"):
        broken = sa_exc.DatabaseError("SELECT 1", {}, sqlite3.DatabaseError(said))
        assert is_damaged(broken) and not is_unavailable(broken)
    assert not is_damaged(OSError(errno.ECONNREFUSED, "Connection refused"))


def test_only_a_cancelled_rollback_on_return_leaves_the_log():
    """A worker stopping on a damaged file cancels tasks that may be mid-transaction; the pool then logged 25 lines
    of traceback for the cancelled rollback (seen in CI). That record, and only that one, is dropped."""
    keep = CancelledCheckin()

    def record(name: str, error: BaseException) -> logging.LogRecord:
        return logging.LogRecord(name, logging.ERROR, __file__, 1, "Exception during reset or similar", None,
                                 (type(error), error, None))

    assert not keep.filter(record("sqlalchemy.pool.impl.AsyncAdaptedQueuePool", asyncio.CancelledError()))
    broken = sqlite3.DatabaseError("database disk image is malformed")
    assert keep.filter(record("sqlalchemy.pool.impl.AsyncAdaptedQueuePool", broken))
    assert keep.filter(record("filmroll.worker", asyncio.CancelledError()))
    assert keep.filter(logging.LogRecord("sqlalchemy.pool", logging.INFO, __file__, 1, "checkin", None, None))
    # uvloop's exception handler made a record whose exc_info was True: the filter crashed in the fuzz test.
    by_hand = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "Exception in callback", None, None)
    by_hand.exc_info = True  # type: ignore[assignment]
    assert keep.filter(by_hand)
