"""A bug in a handler answers 500 in its mount's own form, inside the security headers and the access log (which
records 500, not the 0 it wrote when Starlette's outermost catch-all answered)."""

from __future__ import annotations

import logging

import httpx
import pytest

from filmroll.web.app import create_app
from tests import aio
from tests.webapp import _add_admin, _AppThread, settings_for


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_unexpected_error_is_a_500_in_its_mounts_form(sandbox, database_url, caplog, capsys):
    caplog.set_level(logging.INFO, logger="filmroll.access")  # as `filmroll serve` logs
    aio.run(_add_admin(database_url))
    app = create_app(settings_for(sandbox, database_url, "http://127.0.0.1:8000"))

    async def broken() -> None:
        raise RuntimeError("a bug, with no request data in it")

    app.add_api_route("/broken", broken)  # an admin page, by its path
    app.add_api_route("/feeds/broken/now", broken)  # a public one
    transport = _AppThread(app)
    transport.start()
    try:
        with httpx.Client(transport=transport, base_url="http://127.0.0.1:8000") as client:
            page = client.get("/broken")
            public = client.get("/feeds/broken/now")
    finally:
        transport.stop()
    assert page.status_code == 500 and 'id="problem-code">internal_error<' in page.text
    assert "content-security-policy" in page.headers and page.headers["cache-control"] == "no-store"
    assert public.status_code == 500 and public.json()["code"] == "internal_error"
    assert public.headers["content-type"] == "application/problem+json"
    assert public.headers["x-content-type-options"] == "nosniff"
    logged = [line.split("filmroll.access: ", 1)[1] for line in capsys.readouterr().err.splitlines()
              if "filmroll.access: " in line]  # written by the access log's thread, flushed as the app stopped
    assert any(m.startswith("GET /broken 500") for m in logged), logged
    assert any(r.name == "filmroll.web" and r.levelno == logging.ERROR for r in caplog.records)
