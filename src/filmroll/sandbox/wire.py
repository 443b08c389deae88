"""What Instagram's responses look like on the wire: the two error envelopes, and strict request parsing.

graph.instagram.com answers errors as ``{"error": {message, type, code, error_subcode?, fbtrace_id}}`` with HTTP
400; api.instagram.com's token endpoint answers them flat, ``{"error_type", "code", "error_message"}``.
Query strings are decoded strictly (invalid UTF-8 is an error, not a replacement character) and, as on Meta's
servers, a repeated parameter takes its last value.
"""

from __future__ import annotations

import json
import secrets
from typing import Any
from urllib.parse import parse_qsl

from starlette.responses import Response

MAX_QUERY_BYTES = 16_384


class WireError(Exception):
    """A request the sandbox refuses; carries the response Instagram would send."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def fbtrace_id() -> str:
    return secrets.token_urlsafe(17)[:23]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    try:
        payload = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    except UnicodeEncodeError:  # a lone surrogate (a caption a test gave): escaped, as Graph's JSON may carry it
        payload = json.dumps(body, separators=(",", ":")).encode()
    return Response(payload, status, headers=headers, media_type="application/json; charset=UTF-8")


def graph_error(message: str, code: int, *, subcode: int | None = None, error_type: str | None = None,
                status: int = 400, headers: dict[str, str] | None = None,
                is_transient: bool | None = None) -> Response:
    if error_type is None:
        error_type = "OAuthException" if code in (1, 2, 4, 17, 32, 101, 190, 613, 2500, 80002) else "IGApiException"
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if is_transient is not None:
        error["is_transient"] = is_transient
    error["fbtrace_id"] = fbtrace_id()
    headers = dict(headers or {})
    kind = "invalid_token" if code == 190 else "invalid_request"
    headers["WWW-Authenticate"] = f'OAuth "Facebook Platform" "{kind}" "{_header_safe(message)}"'
    return json_response({"error": error}, status, headers)


def flat_error(message: str, status: int = 400) -> Response:
    return json_response({"error_type": "OAuthException", "code": status, "error_message": message}, status)


def _header_safe(text: str) -> str:
    printable = "".join(c if 32 <= ord(c) < 127 and c != '"' else "?" for c in text)
    return printable[:200]


def parse_query(raw: bytes) -> dict[str, str]:
    """Decode a query string strictly; the last of repeated names wins. Raises ValueError with a reason."""
    if len(raw) > MAX_QUERY_BYTES:
        raise ValueError("request URI too long")
    try:
        text = raw.decode("ascii")
        pairs = parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise ValueError("invalid UTF-8 in the query string") from exc
    return dict(pairs)


def parse_form(raw: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError as exc:
        raise ValueError("invalid UTF-8 in the request body") from exc
    return dict(pairs)
