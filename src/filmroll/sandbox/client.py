"""A small synchronous client for the sandbox's control API, for tests, benchmarks and scripts."""

from __future__ import annotations

import json
from typing import Any

import httpx


class SandboxControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"sandbox control API answered {status}: {message}")
        self.status = status


class SandboxControl:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url + "/_sandbox", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        # Encoded here, escaped to ASCII: a test may send text that is not valid Unicode (a lone surrogate).
        content = json.dumps(body).encode() if body is not None else None
        response = self._http.request(method, path, content=content, params={k: v for k, v in params.items()
                                                                             if v is not None},
                                      headers={"Content-Type": "application/json"} if content is not None else None)
        if response.status_code >= 400:
            try:
                message = response.json().get("error", response.text)
            except ValueError:
                message = response.text
            raise SandboxControlError(response.status_code, message)
        return response.json()

    # world and settings
    def summary(self) -> dict[str, Any]:
        return self._call("GET", "")

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/reset")

    def now(self) -> float:
        return self._call("GET", "/clock")["now"]

    def advance(self, seconds: float) -> float:
        return self._call("POST", "/clock", {"advance": seconds})["now"]

    def switches(self, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH", "/switches", changes) if changes else self._call("GET", "/switches")

    def add_redirect_uri(self, uri: str) -> list[str]:
        return self._call("POST", "/redirect-uris", {"uri": uri})["redirect_uris"]

    def account(self, ref: str | int, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH" if changes else "GET", f"/accounts/{ref}", changes or None)

    def accounts(self, offset: int = 0, limit: int = 20) -> dict[str, Any]:
        return self._call("GET", "/accounts", offset=offset, limit=limit)

    def media_ids(self, ref: str | int, limit: int = 50) -> list[str]:
        return self._call("GET", f"/accounts/{ref}/media", limit=limit)["ids"]

    def add_media(self, ref: str | int, **spec: Any) -> dict[str, Any]:
        return self._call("POST", f"/accounts/{ref}/media", spec)

    def media(self, media_id: str, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH" if changes else "GET", f"/media/{media_id}", changes or None)

    def delete_media(self, media_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/media/{media_id}")

    # tokens
    def revoke(self, ref: str | int, reason: str = "revoked") -> dict[str, Any]:
        return self._call("POST", f"/accounts/{ref}/revoke", {"reason": reason})

    def throttle(self, ref: str | int, minutes: float = 60, code: int = 80002) -> dict[str, Any]:
        return self._call("POST", f"/accounts/{ref}/throttle", {"minutes": minutes, "code": code})

    def mint_token(self, account: str | int = 0, **spec: Any) -> dict[str, Any]:
        return self._call("POST", "/tokens", {"account": account, **spec})["tokens"][0]

    def mint_tokens(self, **spec: Any) -> list[dict[str, Any]]:
        return self._call("POST", "/tokens", spec)["tokens"]

    def inspect(self, access_token: str) -> dict[str, Any]:
        return self._call("POST", "/tokens/inspect", {"access_token": access_token})

    def revoke_token(self, access_token: str) -> dict[str, Any]:
        return self._call("POST", "/tokens/revoke", {"access_token": access_token})

    def mint_code(self, account: str | int = 0, **spec: Any) -> dict[str, Any]:
        return self._call("POST", "/codes", {"account": account, **spec})

    # traffic
    def calls(self, endpoint: str | None = None, account: str | None = None, since_id: int = 0,
              limit: int = 200_000) -> list[dict[str, Any]]:
        return self._call("GET", "/calls", endpoint=endpoint, account=account, since_id=since_id,
                          limit=limit)["data"]

    def clear_calls(self) -> None:
        self._call("DELETE", "/calls")

    def overlaps(self, endpoint: str = "refresh") -> list[dict[str, Any]]:
        return self._call("GET", "/calls/overlaps", endpoint=endpoint)["overlaps"]

    def call_summary(self) -> dict[str, dict[str, int]]:
        return self._call("GET", "/calls/summary")

    def add_fault(self, kind: str, **spec: Any) -> dict[str, Any]:
        return self._call("POST", "/faults", {"kind": kind, **spec})

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "/faults")["data"]

    def release(self, fault_id: int) -> dict[str, Any]:
        return self._call("POST", f"/faults/{fault_id}/release")

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def rate_limits(self, **changes: Any) -> dict[str, Any]:
        return self._call("PATCH" if changes else "GET", "/rate-limits", changes or None)

    def reset_rate_usage(self) -> None:
        self._call("DELETE", "/rate-limits")

    # callbacks
    def deliver_webhook(self, url: str, **spec: Any) -> dict[str, Any]:
        return self._call("POST", "/deliver/webhook", {"url": url, **spec})

    def verify_webhook(self, url: str, verify_token: str, **spec: Any) -> dict[str, Any]:
        return self._call("POST", "/deliver/verify", {"url": url, "verify_token": verify_token, **spec})

    def deliver_signed_request(self, url: str, **spec: Any) -> dict[str, Any]:
        return self._call("POST", "/deliver/signed-request", {"url": url, **spec})
