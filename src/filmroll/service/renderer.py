"""Variants are CPU work: rendered in a process pool, off the event loop, with a bound on how many pictures are in
flight (each holds a decoded image in memory: a 1440x1800 RGB frame is 7.8 MB, its ladder a few more)."""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import TypeVar

from filmroll.service import pictures

T = TypeVar("T")


def _die_with_parent() -> None:
    """A rendering process ends with the process that started it, even when that one is SIGKILLed (a worker killed
    by an orchestrator): otherwise it would live on, holding the worker's stdout and stderr open."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the line above ran
        os._exit(0)


def _poster(data: bytes, *, widths: tuple[int, ...], formats: tuple[str, ...], max_pixels: int,
            fallback_jpeg: bool) -> tuple[bytes, pictures.Rendered]:
    made = pictures.poster(data, max_pixels=max_pixels)
    return made, pictures.render(made, widths=widths, formats=formats, max_pixels=max_pixels,
                                 fallback_jpeg=fallback_jpeg)


class Renderer:
    def __init__(self, processes: int = 2, *, in_flight: int | None = None) -> None:
        self.processes = max(1, processes)
        self._pool: ProcessPoolExecutor | None = None
        self.in_flight = in_flight or 2 * self.processes
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # "spawn": a forked child would inherit the parent's event loop, sockets and threads.
            self._pool = ProcessPoolExecutor(self.processes, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_die_with_parent)
        return self._pool

    async def render(self, data: bytes, *, widths: Sequence[int], formats: Sequence[str], max_pixels: int,
                     fallback_jpeg: bool = False) -> pictures.Rendered:
        return await self._run(partial(pictures.render, data, widths=tuple(widths), formats=tuple(formats),
                                       max_pixels=max_pixels, fallback_jpeg=fallback_jpeg))

    async def poster(self, data: bytes, *, widths: Sequence[int], formats: Sequence[str], max_pixels: int,
                     fallback_jpeg: bool = False) -> tuple[bytes, pictures.Rendered]:
        """A video's poster made from its first frame, and that poster rendered: one trip to the pool."""
        return await self._run(partial(_poster, data, widths=tuple(widths), formats=tuple(formats),
                                       max_pixels=max_pixels, fallback_jpeg=fallback_jpeg))

    async def _run(self, job: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        if self._slots is None or self._slots[0] is not loop:  # the pool outlives a loop (a test's, the CLI's)
            self._slots = (loop, asyncio.Semaphore(self.in_flight))
        async with self._slots[1]:
            return await loop.run_in_executor(self._executor(), job)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
