"""Meta's callbacks delivered by the sandbox: signed webhooks, hub verification, signed_request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def log_message(self, *args):
        pass

    def _record(self, body: bytes) -> None:
        self.received.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                              "body": body})

    def do_GET(self):
        self._record(b"")
        query = parse_qs(urlsplit(self.path).query)
        ok = query.get("hub.verify_token") == ["right-token"]
        reply = query["hub.challenge"][0].encode() if ok else b"forbidden"
        self.send_response(200 if ok else 403)
        self.end_headers()
        self.wfile.write(reply)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self._record(body)
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"url": "https://example.test/deletion?id=abc", "confirmation_code": "abc"}')


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    _Receiver.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", _Receiver.received
    server.shutdown()
    server.server_close()


def test_webhook_is_signed_over_the_raw_body(sandbox, receiver):
    url, received = receiver
    result = sandbox.control.deliver_webhook(url + "/hook", account=5, field="comments")
    assert result["status"] == 200
    request = received[0]
    expected = hmac.new(sandbox.app_secret.encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Hub-Signature-256"] == f"sha256={expected}"
    payload = json.loads(request["body"])
    assert payload["object"] == "instagram"
    assert payload["entry"][0]["id"] == sandbox.control.account(5)["ig_id"]
    assert payload["entry"][0]["changes"][0]["field"] == "comments"


@pytest.mark.parametrize("signature", ["invalid", "missing", "sha1_only"])
def test_webhook_with_broken_signatures_for_negative_tests(sandbox, receiver, signature):
    url, received = receiver
    sandbox.control.deliver_webhook(url, signature=signature)
    headers = received[0]["headers"]
    good = hmac.new(sandbox.app_secret.encode(), received[0]["body"], hashlib.sha256).hexdigest()
    assert headers.get("X-Hub-Signature-256") != f"sha256={good}"


def test_messages_webhook_uses_messaging(sandbox, receiver):
    url, received = receiver
    sandbox.control.deliver_webhook(url, field="messages")
    assert "messaging" in json.loads(received[0]["body"])["entry"][0]


def test_hub_verification(sandbox, receiver):
    url, _ = receiver
    good = sandbox.control.verify_webhook(url, "right-token", challenge="1158201444")
    assert good["echoed"] and good["body"] == "1158201444"
    bad = sandbox.control.verify_webhook(url, "wrong-token")
    assert not bad["echoed"] and bad["status"] == 403


def _decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@pytest.mark.parametrize("kind", ["deauthorize", "data_deletion"])
def test_signed_request_verifies_with_the_app_secret(sandbox, receiver, kind):
    url, received = receiver
    result = sandbox.control.deliver_signed_request(url, kind=kind, account=9)
    assert result["status"] == 200
    form = parse_qs(received[0]["body"].decode())
    signature, payload = form["signed_request"][0].split(".", 1)
    assert "=" not in signature + payload  # Meta strips padding
    expected = hmac.new(sandbox.app_secret.encode(), payload.encode(), hashlib.sha256).digest()
    assert hmac.compare_digest(_decode(signature), expected)
    data = json.loads(_decode(payload))
    assert data["algorithm"] == "HMAC-SHA256" and data["user_id"] == sandbox.control.account(9)["scoped_id"]


def test_tampered_signed_request_fails_verification(sandbox, receiver):
    url, received = receiver
    sandbox.control.deliver_signed_request(url, tamper=True)
    signature, payload = parse_qs(received[0]["body"].decode())["signed_request"][0].split(".", 1)
    expected = hmac.new(sandbox.app_secret.encode(), payload.encode(), hashlib.sha256).digest()
    assert not hmac.compare_digest(_decode(signature), expected)


def test_unreachable_target_is_reported_not_raised(sandbox):
    result = sandbox.control.deliver_webhook("http://127.0.0.1:9/nothing")
    assert result["delivered"] is False
