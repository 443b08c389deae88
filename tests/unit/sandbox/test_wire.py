import pytest

from filmroll.sandbox.state import Switches
from filmroll.sandbox.traffic import Traffic
from filmroll.sandbox.wire import parse_form, parse_query


def test_last_repeated_parameter_wins():
    assert parse_query(b"a=1&a=2&b=") == {"a": "2", "b": ""}


@pytest.mark.parametrize("raw", [b"a=%ff", b"a=%c3%28", b"x" * 20_000, "a=é".encode()])
def test_strict_query_decoding(raw):
    with pytest.raises(ValueError):
        parse_query(raw)


def test_form_decoding():
    assert parse_form(b"name=caf%C3%A9+ok") == {"name": "café ok"}
    with pytest.raises(ValueError):
        parse_form(b"\xff")


def test_switches_validate_before_changing_anything():
    switches = Switches()
    with pytest.raises(ValueError):
        switches.update({"token_response": "data", "latency_ms": -1})
    assert switches.token_response == "flat"
    switches.update({"token_response": "data", "latency_ms": 5})
    assert (switches.token_response, switches.latency_ms) == ("data", 5)


def _call(traffic, account, started, ended):
    traffic.record(started=started, ended=ended, sandbox_time=started, method="GET", endpoint="refresh",
                   account=account, app_id="a", status=200, outcome="ok")


def test_overlap_detection():
    traffic = Traffic(100, 0)
    _call(traffic, "1", 0.0, 1.0)
    _call(traffic, "1", 1.0, 2.0)  # touching, not overlapping
    _call(traffic, "2", 0.0, 5.0)
    _call(traffic, "2", 4.0, 4.5)  # inside the first
    _call(traffic, "2", 4.9, 6.0)  # still inside the first
    found = traffic.overlaps("refresh")
    assert [(o["account"], o["first"], o["second"]) for o in found] == [("2", 3, 4), ("2", 3, 5)]


def test_call_log_is_bounded():
    traffic = Traffic(10, 0)
    for i in range(25):
        _call(traffic, str(i), float(i), float(i))
    assert len(traffic.calls) == 10 and traffic.calls[0].id == 16
