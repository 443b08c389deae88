"""The event loop every filmroll process runs on.

uvloop where it is installed (``uvicorn[standard]`` brings it on Linux and macOS, and ``filmroll serve`` runs on it
through Granian, which takes uvloop when it is there), so a standalone ``filmroll worker`` spends the same CPU per
sync as the worker embedded in ``serve`` (measured in ``docs/benchmarks.md``); asyncio's own loop where uvloop is
missing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory(prefer_uvloop: bool = True) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not prefer_uvloop:
        return None
    try:
        import uvloop
    except ImportError:  # Windows, or an install without uvicorn's [standard] extra
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], *, prefer_uvloop: bool = True) -> T:
    with asyncio.Runner(loop_factory=loop_factory(prefer_uvloop)) as runner:
        return runner.run(main)
