"""Admin passwords: argon2id hashes, checked in constant time whether the user exists or not.

Below both the services (``filmroll admin create``) and the web tier (sign-in), so neither imports the other. The
dummy hash an unknown username is checked against is made on first use, not at import. :class:`PasswordChecker`
runs the checks of a server: in threads of its own (argon2 releases the GIL), a bounded number at a time, so
sign-ins never stall the event loop and a flood of them cannot take every core and gigabytes of memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Literal, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD = 12
MAX_PASSWORD = 256
T = TypeVar("T")
HASHER = PasswordHasher()  # argon2id; the library's defaults exceed OWASP's minimum (m=19 MiB, t=2)


def hash_password(password: str) -> str:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    return HASHER.hash(password)


@cache
def _dummy_hash() -> str:
    return HASHER.hash("filmroll-dummy-password-for-timing")


def verify(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches; an absent hash (unknown user) costs the same work, so timing reveals nothing."""
    try:
        HASHER.verify(password_hash or _dummy_hash(), password[:MAX_PASSWORD])
    except (VerificationError, InvalidHashError):
        return False
    return password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    return HASHER.check_needs_rehash(password_hash)


def _lower_priority(priority: str) -> None:
    """Run this thread (and the lane threads argon2 starts from it, which inherit it) below the event loop, which
    serves every other page and the feeds. ``idle`` (SCHED_IDLE at nice 19): any other thread that wakes up preempts
    it at once, yet it keeps a sliver of CPU, so sign-ins finish even on a saturated machine, slowly
    (bench/logins.py: p99 of other requests 131x idle with argon2 on the event loop, ~3.5x with ``idle``, ~4.3x
    with ``low``, nice 19 alone). Linux sets both per thread; elsewhere this is a no-op."""
    if priority == "normal":
        return
    thread = threading.get_native_id()
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, thread, 19)
    if priority == "idle":
        with contextlib.suppress(AttributeError, OSError):
            os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))


class Busy(Exception):
    """Too many sign-ins are waiting for a password check: answered 503 with a Retry-After."""


class PasswordChecker:
    def __init__(self, *, at_once: int, waiting: int | None = None,
                 priority: Literal["idle", "low", "normal"] = "idle") -> None:
        self._pool = ThreadPoolExecutor(max_workers=at_once, thread_name_prefix="filmroll-password",
                                        initializer=_lower_priority, initargs=(priority,))
        self._slots = asyncio.Semaphore(at_once)
        self._room = at_once + (waiting if waiting is not None else 8 * at_once)  # checking plus queued
        self._admitted = 0

    async def _in_pool(self, work: Callable[..., T], *args: object) -> T:
        if self._admitted >= self._room:
            raise Busy
        self._admitted += 1
        try:
            async with self._slots:
                return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        finally:
            self._admitted -= 1

    async def verify(self, password_hash: str | None, password: str) -> bool:
        return await self._in_pool(verify, password_hash, password)

    async def rehash(self, password: str) -> str:
        return await self._in_pool(hash_password, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
