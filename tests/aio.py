"""Run a coroutine to completion from synchronous test code, even where Playwright's loop owns this thread."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def with_database(url: str, body: Any) -> Any:
    """``await body(database)`` on a Database of its own for ``url``, disposed after: a test's direct read or
    write beside a running filmroll."""
    from filmroll.store.database import Database

    async def go() -> Any:
        database = Database(url)
        try:
            return await body(database)
        finally:
            await database.dispose()

    return run(go())
