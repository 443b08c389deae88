"""The access log: a line per request in filmroll's log form, written by its own thread, never a query string."""

from __future__ import annotations

import io
import re
import time

from filmroll.web.access import RequestLog


def _scope(path: str, query: bytes = b"") -> dict:
    return {"type": "http", "method": "GET", "path": path, "query_string": query}


def test_requests_are_written_by_the_thread_in_the_log_form_without_their_query_string():
    stream = io.StringIO()
    log = RequestLog(stream=stream, interval=0.01)
    log.start()
    try:
        started = time.monotonic()
        log.note(_scope("/callback", b"code=AQ-secret-code&state=s3cr3t"), 303, started)
        log.note(_scope("/feeds/bakery.json"), 200, started)
        deadline = time.monotonic() + 10
        while stream.getvalue().count("\n") < 2:  # written without a close: the thread's own round
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        log.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO filmroll\.access: GET (\S+) (\d{3}) \d+\.\dms"
    assert [re.fullmatch(pattern, line).groups() for line in lines] == [("/callback", "303"),
                                                                        ("/feeds/bakery.json", "200")]
    assert "secret" not in stream.getvalue() and "state" not in stream.getvalue()


def test_what_is_noted_before_close_is_written_and_a_disabled_log_writes_nothing():
    stream = io.StringIO()
    log = RequestLog(stream=stream, interval=3600)  # the thread would not wake before the close
    log.start()
    for _ in range(1000):
        log.note(_scope("/healthz"), 200, time.monotonic())
    log.close()
    assert stream.getvalue().count("GET /healthz 200") == 1000
    quiet = io.StringIO()
    off = RequestLog(enabled=False, stream=quiet)
    off.start()
    off.note(_scope("/healthz"), 200, time.monotonic())
    off.close()
    assert quiet.getvalue() == ""
