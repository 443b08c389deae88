"""What counts as a database outage (to wait out) and what as a damaged database (to stop on): decided from the
error itself (store/database.py), never from its type alone far away."""

from __future__ import annotations

import errno
import socket
import sqlite3

from sqlalchemy import exc as sa_exc

from filmroll.store.database import is_damaged, is_unavailable


def test_only_a_network_failure_is_an_outage():
    assert is_unavailable(ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"))
    assert is_unavailable(ConnectionResetError(errno.ECONNRESET, "reset by peer"))
    assert is_unavailable(OSError(errno.EHOSTUNREACH, "No route to host"))
    assert is_unavailable(socket.gaierror(-2, "Name or service not known"))
    assert is_unavailable(TimeoutError())
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
