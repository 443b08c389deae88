"""What happens to a request on its way through the sandbox: faults, latency, rate limits, and the call log.

* The **call log** keeps every Instagram-surface call (time, endpoint, account, outcome) in a bounded ring, so a
  test can count calls and find two refreshes of one account that overlapped in (wall-clock) time.
* **Faults** are rules matched by endpoint and account: an HTTP 5xx, a Graph error, extra latency, a connection
  reset, a body cut short (``truncate``: half of what the headers announce, then the connection drops), or a
  *hang* that holds the request until the test releases it (to force an exact interleaving).
* **Rate limits** follow Instagram's Business Use Case model per app + account (error 80002 with
  ``estimated_time_to_regain_access``) and the platform limit per app (error 4), reported in the
  ``X-Business-Use-Case-Usage`` and ``X-App-Usage`` headers. Calls made while throttled still count, as on Meta.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections import deque
from dataclasses import dataclass, field, fields
from typing import Any

from starlette.responses import Response

from filmroll.sandbox.wire import WireError, graph_error, json_response

THROTTLE_MESSAGES = {
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    613: "Calls to this api have exceeded the rate limit.",
    80002: "(#80002) There have been too many calls to this Instagram account. Wait a bit and try again. "
    "For more info, please refer to https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
}
TRANSIENT_MESSAGES = {
    1: "An unknown error has occurred.",
    2: "An unexpected error has occurred. Please retry your request later.",
}


class ConnectionReset(Exception):
    """Raised by a fault so the server aborts the TCP connection instead of answering."""


class CutShort(Exception):
    """Raised by a ``truncate`` fault: the answer announces its full length, sends ``keep`` of it (a fraction), and
    the connection drops (the CDN's failure mode; a client must not store the part it got)."""

    def __init__(self, keep: float) -> None:
        super().__init__(keep)
        self.keep = keep


@dataclass(slots=True)
class Call:
    id: int
    started: float  # wall clock; overlap detection must not depend on the (movable) sandbox clock
    ended: float
    sandbox_time: float
    method: str
    endpoint: str
    account: str | None
    app_id: str | None
    status: int
    outcome: str


@dataclass
class Fault:
    id: int
    kind: str  # status | graph_error | latency | reset | hang | body | truncate
    endpoint: str = "*"
    account: str | None = None
    remaining: int | None = None
    probability: float = 1.0
    status: int = 500
    code: int = 2
    subcode: int | None = None
    message: str | None = None
    latency_ms: int = 0
    hits: int = 0
    released: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def public(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "released"}
        data["held"] = self.kind == "hang" and not self.released.is_set()
        return data

    def matches(self, endpoint: str, account: str | None) -> bool:
        if self.remaining is not None and self.remaining <= 0:
            return False
        if self.endpoint != "*" and self.endpoint != endpoint:
            return False
        return self.account is None or self.account == account


@dataclass
class RateLimits:
    account_calls: int = 4800  # per window, per app + account (BUC "4800 x impressions")
    app_calls_per_user: int = 200  # per hour, per app, times the app's active users (platform limit)
    window: int = 86_400


class Traffic:
    def __init__(self, log_size: int, rng_seed: int) -> None:
        self.calls: deque[Call] = deque(maxlen=log_size)
        self._ids = itertools.count(1)
        self._fault_ids = itertools.count(1)
        self.faults: list[Fault] = []
        self.latency_ms = 0
        self.latency_jitter_ms = 0
        self.limits = RateLimits()
        self._rng = random.Random(rng_seed)
        self._account_usage: dict[tuple[str, str], deque[list[float]]] = {}
        self._app_usage: dict[str, deque[list[float]]] = {}
        self._throttles: dict[str, tuple[float, int]] = {}
        self._app_users: dict[str, int] = {}

    # ----- call log -----------------------------------------------------------------------------------------

    def record(self, **fields: Any) -> None:
        self.calls.append(Call(id=next(self._ids), **fields))

    def overlaps(self, endpoint: str) -> list[dict[str, Any]]:
        """Pairs of calls to ``endpoint`` for one account whose wall-clock spans intersect."""
        by_account: dict[str, list[Call]] = {}
        for call in self.calls:
            if call.endpoint == endpoint and call.account is not None:
                by_account.setdefault(call.account, []).append(call)
        found = []
        for account, calls in by_account.items():
            calls.sort(key=lambda c: c.started)
            latest = calls[0]
            for call in calls[1:]:
                if call.started < latest.ended:
                    found.append({"account": account, "first": latest.id, "second": call.id})
                if call.ended > latest.ended:
                    latest = call
        return found

    # ----- faults and latency --------------------------------------------------------------------------------

    def add_fault(self, **spec: Any) -> Fault:
        fault = Fault(id=next(self._fault_ids), **spec)
        self.faults.append(fault)
        return fault

    def release(self, fault_id: int) -> bool:
        for fault in self.faults:
            if fault.id == fault_id:
                fault.released.set()
                return True
        return False

    def clear_faults(self) -> None:
        for fault in self.faults:
            fault.released.set()
        self.faults.clear()

    async def gate(self, endpoint: str, account: str | None) -> None:
        """Apply global latency and the first matching fault; raises to answer with a failure instead."""
        delay = self.latency_ms + (self._rng.uniform(0, self.latency_jitter_ms) if self.latency_jitter_ms else 0)
        for fault in self.faults:
            if not fault.matches(endpoint, account):
                continue
            if fault.probability < 1.0 and self._rng.random() >= fault.probability:
                continue
            if fault.remaining is not None:
                fault.remaining -= 1
            fault.hits += 1
            if fault.kind == "latency":
                delay += fault.latency_ms
                continue
            if delay:
                await asyncio.sleep(delay / 1000)
            await self._apply(fault)
            return
        if delay:
            await asyncio.sleep(delay / 1000)

    async def _apply(self, fault: Fault) -> None:
        if fault.kind == "hang":
            await fault.released.wait()
        elif fault.kind == "reset":
            raise ConnectionReset
        elif fault.kind == "truncate":
            raise CutShort(0.5)
        elif fault.kind == "status":
            body = {"error": {"message": fault.message or TRANSIENT_MESSAGES.get(fault.code, "Service unavailable"),
                              "type": "OAuthException", "code": fault.code, "is_transient": True}}
            raise WireError(json_response(body, fault.status))
        elif fault.kind == "body":  # any status with any raw body: truncated JSON, HTML, a token-less success…
            raise WireError(Response(fault.message or "", fault.status, media_type="application/json"))
        elif fault.kind == "graph_error":
            message = fault.message or THROTTLE_MESSAGES.get(fault.code) or TRANSIENT_MESSAGES.get(fault.code)
            raise WireError(graph_error(message or "An unknown error has occurred.", fault.code,
                                        subcode=fault.subcode, status=fault.status))

    # ----- rate limits -----------------------------------------------------------------------------------------

    def throttle(self, account: str, until: float, code: int) -> None:
        self._throttles[account] = (until, code)

    def reset_usage(self) -> None:
        self._account_usage.clear()
        self._app_usage.clear()
        self._throttles.clear()
        self._app_users.clear()

    @staticmethod
    def _count(buckets: deque[list[float]], now: float, window: float) -> int:
        width = window / 24
        while buckets and buckets[0][0] <= now - window:
            buckets.popleft()
        if buckets and buckets[-1][0] > now - width:
            buckets[-1][1] += 1
        else:
            buckets.append([now, 1])
        return int(sum(b[1] for b in buckets))

    def account_call(self, app_id: str, account: str, now: float) -> dict[str, str]:
        """Count one Graph call; return the usage headers, or raise the throttling error."""
        limits = self.limits
        key = (app_id, account)
        usage = self._account_usage.get(key)
        if usage is None:
            usage = self._account_usage[key] = deque()
            self._app_users[app_id] = self._app_users.get(app_id, 0) + 1
        count = self._count(usage, now, limits.window)
        app_usage = self._app_usage.setdefault(app_id, deque())
        app_count = self._count(app_usage, now, 3600)
        app_budget = limits.app_calls_per_user * max(1, self._app_users.get(app_id, 0))

        regain = 0
        code = None
        manual = self._throttles.get(account)
        if manual is not None and manual[0] > now:
            regain, code = max(1, int((manual[0] - now + 59) // 60)), manual[1]
        elif count > limits.account_calls:
            regain, code = max(1, int((usage[0][0] + limits.window - now + 59) // 60)), 80002
        elif app_count > app_budget:
            regain, code = max(1, int((app_usage[0][0] + 3600 - now + 59) // 60)), 4

        account_pct = min(100 if code else 99, round(100 * count / limits.account_calls))
        app_pct = min(100, round(100 * app_count / app_budget))
        headers = {
            "X-App-Usage": json.dumps({"call_count": app_pct, "total_cputime": app_pct // 4,
                                       "total_time": app_pct // 3}),
            "X-Business-Use-Case-Usage": json.dumps({account: [{
                "type": "instagram", "call_count": 100 if code else account_pct,
                "total_cputime": account_pct // 4, "total_time": account_pct // 3,
                "estimated_time_to_regain_access": regain,
            }]}),
        }
        if code is not None:
            raise WireError(graph_error(THROTTLE_MESSAGES[code], code, headers=headers, is_transient=True))
        return headers
