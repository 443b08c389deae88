"""Meta's callbacks to an app, sent on request: webhooks and ``signed_request`` deauthorize / data deletion.

* Webhook notifications are ``POST`` JSON with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw
  body)>``; the subscription check is a ``GET`` with ``hub.mode``, ``hub.challenge`` and ``hub.verify_token``.
* Deauthorize and data-deletion callbacks are form ``POST``s of ``signed_request = b64url(sig) + "." +
  b64url(payload)``, where ``sig = HMAC-SHA256(app secret, the still-encoded payload)`` and padding is stripped.

The control API answers with what the target replied, so a test can assert both sides.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any, Literal

import httpx
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from filmroll.sandbox import control
from filmroll.sandbox.wire import json_response

TIMEOUT = 10.0


class WebhookDelivery(control._Body):
    url: str = Field(min_length=8, max_length=2048)
    account: str | int = 0
    field: Literal["comments", "mentions", "messages", "story_insights"] = "comments"
    payload: dict[str, Any] | list[Any] | None = None  # a list: the documented batch shape; live traffic is one
    signature: Literal["valid", "invalid", "missing", "sha1_only"] = "valid"
    secret: str | None = None


class VerifyDelivery(control._Body):
    url: str = Field(min_length=8, max_length=2048)
    verify_token: str = Field(max_length=512)
    challenge: str | None = None


class SignedRequestDelivery(control._Body):
    url: str = Field(min_length=8, max_length=2048)
    kind: Literal["deauthorize", "data_deletion"] = "deauthorize"
    account: str | int = 0
    tamper: bool = False


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign_request(payload: dict[str, Any], secret: str) -> str:
    encoded = b64url(json.dumps(payload, separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), encoded.encode(), hashlib.sha256).digest()
    return f"{b64url(signature)}.{encoded}"


def _webhook_payload(ig_id: str, field: str, now: float) -> dict[str, Any]:
    if field == "messages":
        change: dict[str, Any] = {"messaging": [{
            "sender": {"id": str(secrets.randbelow(10**16))}, "recipient": {"id": ig_id},
            "timestamp": int(now * 1000), "message": {"mid": "aWdf" + secrets.token_urlsafe(30), "text": "hello"}}]}
    else:
        change = {"changes": [{"field": field, "value": {
            "id": str(17_900_000_000_000_000 + secrets.randbelow(10**14)), "text": "Lovely! 🌿",
            "from": {"id": str(secrets.randbelow(10**16)), "username": "a_follower"},
            "media": {"id": str(17_900_000_000_000_000 + secrets.randbelow(10**14)), "media_product_type": "FEED"},
        }}]}
    return {"object": "instagram", "entry": [{"id": ig_id, "time": int(now), **change}]}


async def _send(method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            response = await client.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        return {"delivered": False, "error": type(exc).__name__}
    return {"delivered": True, "status": response.status_code, "body": response.text[:4096],
            "content_type": response.headers.get("content-type")}


async def webhook(request: Request) -> Response:
    sandbox = control._sandbox(request)
    spec = await control._body(request, WebhookDelivery)
    account = control._account(sandbox, spec.account)
    payload = spec.payload or _webhook_payload(account.ig_id, spec.field, sandbox.now())
    body = json.dumps(payload, separators=(",", ":")).encode()
    secret = (spec.secret or sandbox.default_app.app_secret).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "facebookexternalua"}
    digest = hmac.new(secret, body, hashlib.sha256).hexdigest()
    if spec.signature == "valid":
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    elif spec.signature == "invalid":
        headers["X-Hub-Signature-256"] = f"sha256={hashlib.sha256(body).hexdigest()}"
    if spec.signature in ("valid", "sha1_only"):
        headers["X-Hub-Signature"] = "sha1=" + hmac.new(secret, body, hashlib.sha1).hexdigest()
    result = await _send("POST", spec.url, content=body, headers=headers)
    return json_response({**result, "payload": payload})


async def verify(request: Request) -> Response:
    spec = await control._body(request, VerifyDelivery)
    challenge = spec.challenge or str(secrets.randbelow(10**10))
    params = {"hub.mode": "subscribe", "hub.challenge": challenge, "hub.verify_token": spec.verify_token}
    result = await _send("GET", spec.url, params=params)
    result["challenge"] = challenge
    result["echoed"] = result.get("status") == 200 and result.get("body") == challenge
    return json_response(result)


async def signed_request(request: Request) -> Response:
    sandbox = control._sandbox(request)
    spec = await control._body(request, SignedRequestDelivery)
    account = control._account(sandbox, spec.account)
    now = int(sandbox.now())
    payload = {"algorithm": "HMAC-SHA256", "expires": now + 3600, "issued_at": now, "user_id": account.scoped_id}
    signed = sign_request(payload, sandbox.default_app.app_secret)
    if spec.tamper:
        signature, _, _encoded = signed.partition(".")
        signed = f"{signature}.{b64url(json.dumps({**payload, 'user_id': '1'}).encode())}"
    result = await _send("POST", spec.url, data={"signed_request": signed})
    return json_response({**result, "payload": payload})


routes = [
    Route("/deliver/webhook", webhook, methods=["POST"]),
    Route("/deliver/verify", verify, methods=["POST"]),
    Route("/deliver/signed-request", signed_request, methods=["POST"]),
]
