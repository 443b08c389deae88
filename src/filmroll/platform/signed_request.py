"""Meta's ``signed_request`` (deauthorize and data-deletion callbacks), verified as the reference says
(shared/reference/meta-callbacks.md §2): ``<sig>.<payload>``, both base64url without padding; ``sig`` is the
HMAC-SHA256 of the payload segment exactly as received, keyed with the app secret. Split once; the alphabet checked
before decoding (no padding, no ``+/``); the HMAC compared in constant time against each configured secret (the
Instagram app secret, and the Meta app secret when set: sources disagree which one signs Instagram Login's
callbacks); ``algorithm`` must be HMAC-SHA256; ``issued_at`` neither stale nor in the future.

Every refusal is one :class:`~filmroll.errors.SignedRequestError` with one message: a caller learns nothing about
which part failed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from filmroll.errors import SignedRequestError
from filmroll.platform.wire import json_too_deep
from filmroll.secret import Secret

MAX_LENGTH = 8_192
_SEGMENT = re.compile(r"[A-Za-z0-9_-]+")
FUTURE_SLACK = 300.0  # seconds of clock difference tolerated


@dataclass(frozen=True)
class SignedRequest:
    user_id: str  # app-scoped: match it against both ids filmroll stores per account
    issued_at: int


def _decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def verify(value: str, secrets: Sequence[Secret], *, now: float, max_age: float) -> SignedRequest:
    refused = SignedRequestError()
    if not value or len(value) > MAX_LENGTH or not value.isascii():
        raise refused
    signature, dot, payload = value.partition(".")
    if not dot or not _SEGMENT.fullmatch(signature) or not _SEGMENT.fullmatch(payload):
        raise refused  # a third segment, padding or the standard alphabet fails here
    try:
        given = _decode(signature)
    except (binascii.Error, ValueError):
        raise refused from None
    if len(given) != hashlib.sha256().digest_size:
        raise refused
    keys = [s.reveal().encode() for s in secrets if s.reveal()]
    expected = [hmac.new(key, payload.encode(), hashlib.sha256).digest() for key in keys]
    if not any([hmac.compare_digest(given, digest) for digest in expected]):  # every key compared, whichever matches
        raise refused
    try:
        decoded = _decode(payload)
        if json_too_deep(decoded):
            raise refused
        data = json.loads(decoded)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise refused from None
    if not isinstance(data, dict) or str(data.get("algorithm", "")).upper() != "HMAC-SHA256":
        raise refused
    issued_at, user_id = data.get("issued_at"), data.get("user_id")
    if isinstance(user_id, int) and not isinstance(user_id, bool):
        user_id = str(user_id)
    if (not isinstance(issued_at, int) or isinstance(issued_at, bool) or not isinstance(user_id, str)
            or not user_id.isascii() or not user_id.isdigit() or len(user_id) > 32):
        raise refused
    if issued_at < now - max_age or issued_at > now + FUTURE_SLACK:
        raise refused
    return SignedRequest(user_id, issued_at)
