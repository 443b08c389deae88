"""Every filmroll process runs on the loop eventloop.run picks: uvloop where installed, asyncio's own on request."""

from __future__ import annotations

import asyncio

import pytest

from filmroll import eventloop


async def _loop_module() -> str:
    await asyncio.sleep(0)
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_is_the_loop_where_it_is_installed():
    # uvicorn[standard] is a dependency and brings uvloop on Linux: the worker runs on the loop serve runs on.
    assert eventloop.run(_loop_module()).startswith("uvloop")


def test_asyncio_loop_on_request():
    assert eventloop.run(_loop_module(), prefer_uvloop=False).startswith("asyncio")


def test_the_coroutine_result_and_its_exception_come_back():
    async def fails() -> None:
        raise LookupError("from inside the loop")

    assert eventloop.run(asyncio.sleep(0, result=42)) == 42
    with pytest.raises(LookupError, match="from inside the loop"):
        eventloop.run(fails())
