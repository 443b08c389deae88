import pytest

from filmroll.sandbox.clock import SandboxClock
from filmroll.sandbox.graph import _cursor, _uncursor
from filmroll.sandbox.wire import WireError


def test_clock_moves_forward_only():
    clock = SandboxClock(start=1_000_000.0)
    assert 1_000_000 <= clock.now() < 1_000_010
    clock.advance(86_400)
    assert clock.now() >= 1_086_400
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set(0)


def test_cursor_round_trip_and_seed_binding():
    key = (-1_700_000_000, -17_900_000_000_000_123)
    cursor = _cursor(key, seed=9)
    assert cursor.startswith("QVFI")
    assert _uncursor(cursor, 9, "after") == key
    with pytest.raises(WireError):
        _uncursor(cursor, 10, "after")
