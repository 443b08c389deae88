"""Canary: tokens carrying a marker go through connect → refresh → sync → mirror → export → disconnect, and a second
account through Instagram's webhooks and Meta's deauthorize and data-deletion callbacks and the worker's deletion,
with every logger at DEBUG; neither the marker, nor the Instagram app secret, the Meta app secret or the webhook
verify token, may turn up anywhere (database files, WAL, logs, captured output, HTTP responses, files written, the
export's members) but the explicit reveal."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest

from filmroll.sandbox import SandboxConfig, running_sandbox
from tests.integration.web.conftest import consent, signed_in, start_connect
from tests.seeding import let_time_pass
from tests.webapp import running_filmroll


def canary_forms(marker: str) -> list[bytes]:
    raw = marker.encode()
    forms = {raw, quote(marker).encode(), binascii.hexlify(raw), binascii.hexlify(raw).upper()}
    for shift in range(3):  # base64 of a substring depends on its alignment: try all three
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * shift + raw)[4:-4]
            if len(encoded) >= 12:
                forms.add(encoded)
    return sorted(forms)


def leaks(data: bytes, forms: list[bytes]) -> list[bytes]:
    return [form for form in forms if form in data]


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs():
    capture, root = Capture(), logging.getLogger()
    previous = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield capture
    root.removeHandler(capture)
    root.setLevel(previous)
    for name in list(logging.root.manager.loggerDict):
        logging.getLogger(name).setLevel(logging.NOTSET)


def _scanned(path: Path) -> bytes:
    """A file's bytes, and each member's too for a zip (deflated, a secret would not show in the raw bytes)."""
    data = path.read_bytes()
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            data += b"".join(archive.read(name) for name in archive.namelist())
    return data


def test_no_token_ever_leaks(database_url, tmp_path, debug_logs):
    marker = f"CANARY{uuid.uuid4().hex}"
    meta_secret, verify_token = f"METASECRET{uuid.uuid4().hex}", f"VERIFY{uuid.uuid4().hex}"
    forms = canary_forms(marker) + canary_forms(meta_secret) + canary_forms(verify_token)
    for prefix in (b"IGAA", b"IGAAx", b"IGAAxy"):  # the scanner itself must see every encoding of a token
        token = prefix + marker.encode() + b"tail0123456789"
        for encoded in (token, base64.b64encode(token), base64.urlsafe_b64encode(token), binascii.hexlify(token),
                        quote(token.decode()).encode()):
            assert leaks(encoded, forms), encoded
    responses: list[bytes] = []
    outputs: list[str] = []
    with running_sandbox(SandboxConfig(seed=77, accounts=50, token_marker=marker)) as sandbox, \
            running_filmroll(sandbox, database_url,
                             meta={"app_secret": meta_secret, "webhook_verify_token": verify_token}) as app:
        forms += canary_forms(sandbox.app_secret)
        admin = signed_in(app)
        admin.event_hooks["response"] = [lambda r: responses.append(r.read())]
        params = consent(sandbox, start_connect(admin), account=3)
        done = admin.get("/callback?" + urlencode(params))
        assert done.status_code == 303
        admin.get(done.headers["location"])
        admin.get("/accounts")
        settings = app.settings
        env = {**os.environ, "FILMROLL_DATABASE_URL": database_url, "FILMROLL_LOG_LEVEL": "DEBUG",
               "FILMROLL_INSTAGRAM__APP_ID": sandbox.app_id, "FILMROLL_INSTAGRAM__APP_SECRET": sandbox.app_secret,
               "FILMROLL_INSTAGRAM__REDIRECT_URI": settings.instagram.redirect_uri,
               "FILMROLL_INSTAGRAM__AUTHORIZE_URL": settings.instagram.authorize_url,
               "FILMROLL_INSTAGRAM__TOKEN_URL": settings.instagram.token_url,
               "FILMROLL_INSTAGRAM__GRAPH_URL": settings.instagram.graph_url,
               "FILMROLL_VAULT__KEYS": settings.vault.keys.get_secret_value(),
               "FILMROLL_META__APP_SECRET": meta_secret, "FILMROLL_META__WEBHOOK_VERIFY_TOKEN": verify_token,
               # The mirror too: its files land under tmp_path, which is scanned below.
               "FILMROLL_MIRROR__CDN_HOSTS": f'["{sandbox.base_url}"]', "FILMROLL_MIRROR__PROCESSES": "1",
               "FILMROLL_MIRROR__EAGER_POSTS": "2", "FILMROLL_STORAGE__URL": f"file:{tmp_path / 'media'}"}
        username = sandbox.control.account(3)["username"]

        def cli(*args: str) -> str:
            result = subprocess.run([sys.executable, "-m", "filmroll", *args], capture_output=True, text=True,
                                    env=env, cwd=tmp_path, timeout=120)
            assert result.returncode == 0, result.stderr
            return result.stdout + result.stderr

        # A second owner: webhooks, then they remove the app and ask for their data to be deleted.
        other = sandbox.control.account(4)["username"]
        connected = subprocess.run([sys.executable, "-m", "filmroll", "connect", "--token"], env=env, cwd=tmp_path,
                                   input=sandbox.control.mint_token(4, kind="long")["access_token"] + "\n",
                                   capture_output=True, text=True, timeout=120)
        assert connected.returncode == 0, connected.stderr
        outputs.append(connected.stdout + connected.stderr)
        outputs.append(cli("sync", other))
        outputs.append(cli("mirror", other))
        outputs.append(cli("export", other, "--to", str(tmp_path / "other.zip")))
        delivered = []
        delivered.append(sandbox.control.verify_webhook(app.base_url + "/meta/webhook", verify_token=verify_token))
        assert delivered[-1]["echoed"], delivered[-1]
        delivered.append(sandbox.control.deliver_webhook(app.base_url + "/meta/webhook", account=4))
        delivered.append(sandbox.control.deliver_webhook(app.base_url + "/meta/webhook", account=4,
                                                         signature="invalid"))
        outputs.append(cli("worker", "--until-idle"))
        delivered.append(sandbox.control.deliver_signed_request(app.base_url + "/meta/deauthorize",
                                                                kind="deauthorize", account=4))
        delivered.append(sandbox.control.deliver_signed_request(app.base_url + "/meta/deauthorize",
                                                                kind="deauthorize", account=4, tamper=True))
        delivered.append(sandbox.control.deliver_signed_request(app.base_url + "/meta/data-deletion",
                                                                kind="data_deletion", account=4))
        assert [d["status"] for d in delivered] == [200, 200, 403, 200, 400, 200], delivered
        responses.extend(json.dumps(d).encode() for d in delivered)
        outputs.append(cli("worker", "--until-idle"))
        status = admin.get(json.loads(delivered[-1]["body"])["url"])
        assert "Deletion completed" in status.text
        outputs.append(cli("accounts", "--json"))
        assert other not in outputs[-1]

        let_time_pass(sandbox, database_url, 2 * 86_400)  # (after the callbacks: Meta's issued_at is the sandbox's)
        outputs.append(cli("token", "refresh", username))
        outputs.append(cli("accounts", "--json"))
        outputs.append(cli("token", "show", username))
        revealed = cli("token", "show", username, "--reveal")  # the one allowed exception
        assert marker in revealed
        outputs.append(cli("sync", username))
        outputs.append(cli("mirror", username))
        outputs.append(cli("media", username, "--json"))
        outputs.append(cli("storage", "usage", "--json"))
        assert list((tmp_path / "media").rglob("*.jpg"))  # the pictures really were stored, and are scanned
        outputs.append(cli("export", username, "--to", str(tmp_path / "export.zip")))
        assert (tmp_path / "export.zip").stat().st_size > 1000
        outputs.append(cli("disconnect", username))
        outputs.append(cli("accounts"))

        admin.close()

    assert any("DEBUG" in line for line in debug_logs.lines)  # the logging really was at DEBUG
    found = {}
    for index, body in enumerate(responses):
        if hits := leaks(body, forms):
            found[f"response {index}"] = hits
    for index, text in enumerate(outputs):
        if hits := leaks(text.encode(), forms):
            found[f"cli output {index}"] = hits
    # filmroll's HTTP client is aiohttp: the httpx lines are this test's own client and the sandbox playing Meta,
    # whose subscription check carries the verify token in its URL by design.
    source = Path(__file__).resolve().parents[2] / "src" / "filmroll"
    assert not [p for p in source.rglob("*.py") if "sandbox" not in p.parts and "httpx" in p.read_text()]
    ours = [line for line in debug_logs.lines if not line.split(" ", 2)[1].startswith(("httpx", "httpcore"))]
    assert len(ours) > 100
    if hits := leaks("\n".join(ours).encode(), forms):
        found["logs"] = hits
    for path in tmp_path.rglob("*"):
        if path.is_file() and (hits := leaks(_scanned(path), forms)):
            found[str(path)] = hits
    if database_url.startswith("sqlite"):
        database_file = Path(database_url.removeprefix("sqlite:///"))
        scanned = [p for p in database_file.parent.glob(database_file.name + "*")]
        assert database_file in scanned
        for path in scanned:
            if hits := leaks(path.read_bytes(), forms):
                found[path.name] = hits
    else:
        dump = subprocess.run(["pg_dump", "--data-only", database_url], capture_output=True, timeout=120)
        assert dump.returncode == 0, dump.stderr
        assert b"COPY public.accounts" in dump.stdout
        if hits := leaks(dump.stdout, forms):
            found["pg_dump"] = hits
    assert found == {}, json.dumps({k: [h.decode() for h in v] for k, v in found.items()})
