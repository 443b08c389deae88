"""Fault points for crash tests: named steps where a process kills itself with SIGKILL when told to.

The edge (the worker command) builds :class:`FaultPoints` from ``FILMROLL_FAULT_POINTS`` (comma-separated names,
optionally ``name@probability``); library code only calls ``faults.hit("step")``. With no configuration this costs
one set lookup.
"""

from __future__ import annotations

import os
import random
import signal


class FaultPoints:
    def __init__(self, spec: str = "", seed: int | None = None) -> None:
        self._points: dict[str, float] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, _, probability = item.partition("@")
            self._points[name] = float(probability) if probability else 1.0
        self._rng = random.Random(seed)

    def hit(self, name: str) -> None:
        probability = self._points.get(name)
        if probability is not None and self._rng.random() < probability:
            os.kill(os.getpid(), signal.SIGKILL)


NO_FAULTS = FaultPoints()
