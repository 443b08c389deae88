"""Meta's signed_request, verified as the reference says, against the mistakes popular snippets make."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from filmroll.errors import SignedRequestError
from filmroll.platform.signed_request import verify
from filmroll.sandbox.delivery import sign_request
from filmroll.secret import Secret

NOW = 1_800_000_000.0
SECRET, META = "a" * 32, "m" * 32
PAYLOAD = {"algorithm": "HMAC-SHA256", "issued_at": int(NOW) - 10, "user_id": "17841400000000001",
           "expires": int(NOW) + 3600}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _check(value: str, *secrets: str):  # type: ignore[no-untyped-def]
    return verify(value, [Secret(s) for s in (secrets or (SECRET,))], now=NOW, max_age=86_400)


def test_a_request_signed_as_meta_signs_is_taken():
    found = _check(sign_request(PAYLOAD, SECRET))
    assert found.user_id == "17841400000000001" and found.issued_at == PAYLOAD["issued_at"]


def test_the_meta_app_secret_is_tried_too_and_an_empty_one_never():
    assert _check(sign_request(PAYLOAD, META), SECRET, META).user_id == PAYLOAD["user_id"]
    with pytest.raises(SignedRequestError):
        _check(sign_request(PAYLOAD, ""), SECRET, "")  # an unset secret must not verify an empty-key HMAC


def test_a_numeric_user_id_is_taken_as_its_digits():
    assert _check(sign_request({**PAYLOAD, "user_id": 218471}, SECRET)).user_id == "218471"


def _resigned(payload_segment: str) -> str:
    signature = hmac.new(SECRET.encode(), payload_segment.encode(), hashlib.sha256).digest()
    return f"{_b64(signature)}.{payload_segment}"


@pytest.mark.parametrize("case", [
    "other secret", "tampered payload", "third segment", "padded payload", "padded signature", "standard alphabet",
    "no dot", "empty", "algorithm", "no algorithm", "stale", "future", "no user", "user not digits", "user bool",
    "issued_at text", "payload not json", "payload a list", "short signature", "non-ascii", "too long"])
def test_every_bad_request_is_refused_with_one_message(case):
    good = sign_request(PAYLOAD, SECRET)
    signature, payload = good.split(".")
    encoded = {
        "other secret": sign_request(PAYLOAD, "b" * 32),
        "tampered payload": f"{signature}.{_b64(json.dumps({**PAYLOAD, 'user_id': '1'}).encode())}",
        "third segment": good + ".x",
        "padded payload": _resigned(payload + "=" * (-len(payload) % 4 or 4)),
        "padded signature": f"{signature}=.{payload}",
        "standard alphabet": f"{signature.replace('-', '+').replace('_', '/')}+.{payload}",
        "no dot": signature + payload,
        "empty": "",
        "algorithm": sign_request({**PAYLOAD, "algorithm": "HMAC-SHA1"}, SECRET),
        "no algorithm": sign_request({k: v for k, v in PAYLOAD.items() if k != "algorithm"}, SECRET),
        "stale": sign_request({**PAYLOAD, "issued_at": int(NOW) - 2 * 86_400}, SECRET),
        "future": sign_request({**PAYLOAD, "issued_at": int(NOW) + 3_600}, SECRET),
        "no user": sign_request({k: v for k, v in PAYLOAD.items() if k != "user_id"}, SECRET),
        "user not digits": sign_request({**PAYLOAD, "user_id": "12a"}, SECRET),
        "user bool": sign_request({**PAYLOAD, "user_id": True}, SECRET),
        "issued_at text": sign_request({**PAYLOAD, "issued_at": str(PAYLOAD["issued_at"])}, SECRET),
        "payload not json": _resigned(_b64(b"not json")),
        "payload a list": _resigned(_b64(b"[1,2]")),
        "short signature": f"{_b64(b'x' * 20)}.{payload}",
        "non-ascii": f"{signature}.{payload}é",
        "too long": _resigned(_b64(json.dumps({**PAYLOAD, "pad": "x" * 9000}).encode())),
    }[case]
    with pytest.raises(SignedRequestError) as refused:
        _check(encoded)
    assert str(refused.value) == "The signed request is not valid."


@given(st.text(max_size=300))
def test_no_input_raises_anything_but_the_one_error(value):
    with pytest.raises(SignedRequestError):
        _check(value)
