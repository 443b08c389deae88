"""Meta's deauthorize and data-deletion callbacks, delivered by the sandbox over HTTP to filmroll on a socket, with
``signed_request`` signed as Meta signs it; the deletion then done by the worker's job."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from filmroll.runtime import deletion_job
from filmroll.runtime import storage as open_storage
from filmroll.service import feeds as feed_service
from filmroll.service.deletion import ERASED, Deleter
from filmroll.store import sources
from filmroll.store.database import Database
from filmroll.store.tables import Account, Alert, DeletionRequest, Event, FeedSource, MediaItem, Source, Token
from filmroll.vault import Keyring, Vault, parse_keys
from filmroll.worker import Worker
from tests import aio
from tests.e2e.test_database_outage import _read as _query
from tests.integration.web.conftest import snapshot
from tests.seeding import seed_accounts
from tests.webapp import running_filmroll


@pytest.fixture
def served(sandbox, database_url):  # type: ignore[no-untyped-def]
    with running_filmroll(sandbox, database_url) as app:  # a socket: the sandbox posts to it
        yield app


def _seed(settings, database_url: str, sandbox, count: int = 3) -> list[int]:  # type: ignore[no-untyped-def]
    async def run() -> list[int]:
        database = Database(database_url)
        try:
            vault = Vault(Keyring(parse_keys(settings.vault.keys.get_secret_value())))
            return await seed_accounts(database, vault, sandbox, count, due=False)
        finally:
            await database.dispose()

    return aio.run(run())


def test_deauthorize_revokes_the_account_destroys_its_token_and_alerts_once(served, sandbox, database_url):
    ids = _seed(served.settings, database_url, sandbox)
    url = served.base_url + "/meta/deauthorize"
    answer = sandbox.control.deliver_signed_request(url, kind="deauthorize", account=1)
    assert answer["status"] == 200, answer
    (status, reason), = _query(database_url, select(Account.status, Account.status_reason).where(Account.id == ids[1]))
    assert status == "revoked" and "removed" in reason
    assert _query(database_url, select(Token.account_id).where(Token.account_id == ids[1])) == []
    assert _query(database_url, select(Alert.kind).where(Alert.account_id == ids[1])) == [("account.revoked",)]
    others = _query(database_url, select(Account.status).where(Account.id != ids[1]))
    assert [s for s, in others] == ["active", "active"]
    before = snapshot(database_url)
    again = sandbox.control.deliver_signed_request(url, kind="deauthorize", account=1)  # Meta repeats itself
    assert again["status"] == 200 and snapshot(database_url) == before
    forged = sandbox.control.deliver_signed_request(url, kind="deauthorize", account=2, tamper=True)
    assert forged["status"] == 400 and '"invalid_signed_request"' in forged["body"]
    assert forged["content_type"] == "application/problem+json"
    stranger = sandbox.control.deliver_signed_request(url, kind="deauthorize", account=9)  # not connected here
    assert stranger["status"] == 200 and snapshot(database_url) == before


def test_a_data_deletion_request_is_answered_as_meta_expects_and_the_worker_deletes_everything(
        served, sandbox, database_url):
    ids = _seed(served.settings, database_url, sandbox)
    gone, kept = ids[1], ids[2]
    ((username,),) = _query(database_url, select(Account.username).where(Account.id == gone))

    async def stage() -> None:
        database = Database(database_url)
        storage = open_storage(served.settings.storage, database_url=database_url)
        try:
            now = datetime.now(UTC)
            async with database.transaction() as session:
                own = await sources.account_sources(session, [gone, kept])
                for account_id in (gone, kept):
                    session.add(MediaItem(source_id=own[account_id], ig_media_id=f"9{account_id}", children_count=0,
                                          first_seen_at=now, updated_at=now))
                    session.add(Event(at=now, kind="account.connected", message=f"connected @sandbox{account_id}",
                                      account_id=account_id, actor="admin"))
            await feed_service.create(database, feed_service.FeedSpec("Both", "both", (str(gone), str(kept))))
            for account_id in (gone, kept):  # under its source, and under the account (stored before sources)
                await storage.put(f"sources/{own[account_id]}/sha256/ab/cd/{'ab' * 32}.jpg", b"picture", "image/jpeg")
                await storage.put(f"accounts/{account_id}/sha256/ab/cd/{'cd' * 32}.jpg", b"picture", "image/jpeg")
        finally:
            await database.dispose()

    aio.run(stage())
    answer = sandbox.control.deliver_signed_request(served.base_url + "/meta/data-deletion", kind="data_deletion",
                                                    account=1)
    assert answer["status"] == 200 and answer["content_type"] == "application/json", answer
    body = json.loads(answer["body"])
    code = body["confirmation_code"]
    assert re.fullmatch(r"[0-9A-Z]{16}", code) and body["url"] == f"{served.base_url}/meta/data-deletion/status/{code}"
    with httpx.Client() as client:
        pending = client.get(body["url"])
        assert pending.status_code == 200 and "Deletion pending" in pending.text
        again = sandbox.control.deliver_signed_request(served.base_url + "/meta/data-deletion", kind="data_deletion",
                                                       account=1)
        assert json.loads(again["body"])["confirmation_code"] == code  # one pending request per owner

        async def work() -> dict[str, int]:
            database = Database(database_url)
            storage = open_storage(served.settings.storage, database_url=database_url)
            try:
                worker = Worker(database, [deletion_job(Deleter(database, storage, owner="w"))], owner="w",
                                idle_poll=0.01)
                stats = await worker.run(asyncio.Event(), until_idle=True)
                left = {account_id: len([o for prefix in (f"accounts/{account_id}/", f"sources/{account_id}/")
                                         async for o in storage.list(prefix)])
                        for account_id in (gone, kept)}  # seeded accounts' own sources have their ids
                return {**stats.outcomes, **{f"files {k}": v for k, v in left.items()}}
            finally:
                await database.dispose()

        result = aio.run(work())
        assert result == {"deleted": 1, f"files {gone}": 0, f"files {kept}": 2}, result
        done = client.get(body["url"])
        assert done.status_code == 200 and "Deletion completed" in done.text and code in done.text
        assert client.get(f"{served.base_url}/meta/data-deletion/status/NOSUCHCODE000000").status_code == 404
    assert _query(database_url, select(Account.id).where(Account.id == gone)) == []
    assert _query(database_url, select(func.count()).select_from(MediaItem)) == [(1,)]
    assert _query(database_url, select(Source.account_id).join(FeedSource, FeedSource.source_id == Source.id)) \
        == [(kept,)]
    messages = [m for m, in _query(database_url, select(Event.message))]
    assert f"connected @sandbox{gone}" not in messages and ERASED in messages
    assert f"connected @sandbox{kept}" in messages
    assert not any(f"sandbox{gone}" in m for m in messages)
    (row,) = _query(database_url, select(DeletionRequest.status, DeletionRequest.scoped_user_id,
                                         DeletionRequest.account_id))
    assert tuple(row) == ("completed", None, None)  # whose it was is forgotten
    if database_url.startswith("sqlite"):  # nor left in the file's free pages or in the write-ahead log
        path = Path(database_url.split("///", 1)[1])
        stored = b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
        assert username.encode() not in stored and f"@sandbox{gone}".encode() not in stored


def test_an_admin_deletes_an_account_from_its_page(filmroll, sandbox, database_url):
    from tests.integration.web.conftest import signed_in

    (first,) = _seed(filmroll.settings, database_url, sandbox, count=1)
    admin = signed_in(filmroll)
    page = admin.get(f"/accounts/{first}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    unconfirmed = admin.post(f"/accounts/{first}/delete", data={"csrf_token": token})
    assert unconfirmed.status_code == 400 and _query(database_url, select(DeletionRequest.id)) == []
    assert admin.post(f"/accounts/{first}/delete", data={"csrf_token": "forged", "confirm": "yes"}).status_code == 403
    assert admin.post("/accounts/999/delete", data={"csrf_token": token, "confirm": "yes"}).status_code == 404
    done = admin.post(f"/accounts/{first}/delete", data={"csrf_token": token, "confirm": "yes"})
    assert done.status_code == 303
    assert _query(database_url, select(DeletionRequest.status, DeletionRequest.account_id)) == [("pending", first)]
    admin.close()


@pytest.mark.parametrize("retention_days", [30, 0])
def test_accounts_left_disconnected_or_revoked_past_retention_are_deleted(sandbox, database_url, retention_days):
    from datetime import timedelta

    from sqlalchemy import update

    from filmroll.storage import open_storage as storage_at
    from tests.webapp import settings_for

    settings = settings_for(sandbox, database_url, "http://127.0.0.1:1")
    ids = _seed(settings, database_url, sandbox, count=4)
    long_ago, lately = datetime.now(UTC) - timedelta(days=31), datetime.now(UTC) - timedelta(days=5)

    async def run() -> tuple[list[int], dict[str, int]]:
        database = Database(database_url)
        storage = storage_at(settings.storage.url)
        try:
            async with database.transaction() as session:
                for account_id, status, when in ((ids[0], "disconnected", long_ago), (ids[1], "revoked", long_ago),
                                                 (ids[2], "disconnected", lately), (ids[3], "active", long_ago)):
                    await session.execute(update(Account).where(Account.id == account_id)
                                          .values(status=status, updated_at=when))
            retention = timedelta(days=retention_days) if retention_days else None
            deleter = Deleter(database, storage, owner="w", retention=retention)
            stats = await Worker(database, [deletion_job(deleter)], owner="w", idle_poll=0.01).run(
                asyncio.Event(), until_idle=True)
            async with database.read() as session:
                left = list((await session.execute(select(Account.id).order_by(Account.id))).scalars())
            return left, dict(stats.outcomes)
        finally:
            await database.dispose()

    left, outcomes = aio.run(run())
    if retention_days:
        assert left == ids[2:] and outcomes == {"deleted": 2}
    else:  # 0 keeps them
        assert left == ids and outcomes == {}


@pytest.fixture
def hooked(sandbox, database_url):  # type: ignore[no-untyped-def]
    with running_filmroll(sandbox, database_url, meta={"webhook_verify_token": "a-verify-token-of-ours"}) as app:
        yield app


def _canonical(value) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(value, sort_keys=True)


def test_the_webhook_subscription_check_echoes_only_for_the_right_token(hooked, sandbox):
    url = hooked.base_url + "/meta/webhook"
    confirmed = sandbox.control.verify_webhook(url, verify_token="a-verify-token-of-ours")
    assert confirmed["echoed"] and confirmed["content_type"].startswith("text/plain")
    wrong = sandbox.control.verify_webhook(url, verify_token="a-verify-token-of-someone")
    assert not wrong["echoed"] and wrong["status"] == 403
    reflected = sandbox.control.verify_webhook(url, verify_token="a-verify-token-of-ours", challenge="<script>")
    assert reflected["status"] == 403  # only a plain token is ever echoed


def test_webhook_deliveries_are_verified_stored_once_and_make_the_account_due(hooked, sandbox, database_url):
    from datetime import timedelta

    from sqlalchemy import update

    from filmroll.runtime import webhook_job
    from filmroll.service.webhooks import WebhookHandler
    from filmroll.store.tables import WebhookDelivery

    ids = _seed(hooked.settings, database_url, sandbox, count=2)
    later = datetime.now(UTC) + timedelta(hours=1)

    async def not_due() -> None:
        database = Database(database_url)
        try:
            async with database.transaction() as session:
                await session.execute(update(Source).values(next_sync_at=later))
        finally:
            await database.dispose()

    aio.run(not_due())
    url = hooked.base_url + "/meta/webhook"
    ig_id = sandbox.control.account(1)["ig_id"]
    payload = {"object": "instagram", "entry": [{"id": ig_id, "time": 1, "changes": [{"field": "comments",
                                                                                     "value": {"text": "hi"}}]}]}
    for signature, status in (("missing", 403), ("invalid", 403), ("sha1_only", 403)):
        refused = sandbox.control.deliver_webhook(url, account=1, signature=signature)
        assert refused["status"] == status, (signature, refused)
    assert _query(database_url, select(WebhookDelivery.id)) == []
    # Correctly signed, 3 000 deep: refused before the parser recurses (it was a RecursionError, a 500 Meta retries).
    deep = b'{"object": "instagram", "entry": ' + b"[" * 3000 + b"]" * 3000 + b"}"
    signature = hmac.new(hooked.settings.instagram.app_secret.get_secret_value().encode(), deep,
                         hashlib.sha256).hexdigest()
    nested = hooked.client().post("/meta/webhook", content=deep, headers={
        "X-Hub-Signature-256": f"sha256={signature}", "Content-Type": "application/json"})
    assert nested.status_code == 400 and nested.json()["code"] == "bad_json"
    assert _query(database_url, select(WebhookDelivery.id)) == []
    first = sandbox.control.deliver_webhook(url, account=1, payload=payload)
    again = sandbox.control.deliver_webhook(url, account=1, payload=payload)  # Meta's retry
    as_documented = sandbox.control.deliver_webhook(url, account=1, payload=[payload, {"object": "page"}])
    assert first["status"] == again["status"] == as_documented["status"] == 200
    assert len(_query(database_url, select(WebhookDelivery.id))) == 2

    async def work(receiver) -> dict[str, int]:  # type: ignore[no-untyped-def]
        import aiohttp

        from filmroll.secret import Secret
        from filmroll.service.alerts import Webhook
        from filmroll.service.policy import Backoff

        database = Database(database_url)
        hook = Webhook(Secret(receiver.url), Secret("operator-secret"), link_base="http://127.0.0.1",
                       retry=Backoff(base=timedelta(0), cap=timedelta(0), floor=timedelta(0)))
        try:
            async with aiohttp.ClientSession() as http:
                handler = WebhookHandler(database, owner="w", http=http, forward_to=hook)
                worker = Worker(database, [webhook_job(handler)], owner="w", idle_poll=0.01)
                return dict((await worker.run(asyncio.Event(), until_idle=True)).outcomes)
        finally:
            await database.dispose()

    from tests.webhooks import webhook_receiver

    with webhook_receiver() as receiver:
        receiver.statuses = [503]  # the operator's receiver fails once: the forward is retried, the sync not redone
        outcomes = aio.run(work(receiver))
    assert outcomes == {"webhook_handled": 2, "webhook_retry": 1}, outcomes
    forwarded = [d for d in receiver.deliveries if d.headers.get("x-filmroll-event") == "instagram.webhook"]
    assert len(forwarded) == 3 and all(d.signed_with("operator-secret") for d in forwarded)
    bodies = [d.json() for d in forwarded]
    assert {_canonical(b["delivery"]) for b in bodies} == {_canonical(payload),
                                                           _canonical([payload, {"object": "page"}])}
    assert all(b["accounts"] == ["@sandbox1"] for b in bodies)
    due = dict(_query(database_url, select(Source.account_id, Source.next_sync_at)))
    assert due[ids[1]] < later - timedelta(minutes=30) and due[ids[0]] == later  # only the account it named
    kinds = [k for k, in _query(database_url, select(Event.kind).where(Event.account_id == ids[1]))]
    assert kinds.count("instagram.webhook") == 2
    assert all(p for p, in _query(database_url, select(WebhookDelivery.processed_at)))


def _signed(payload: dict, secret: str) -> str:  # type: ignore[type-arg]
    from filmroll.sandbox.delivery import sign_request

    return sign_request(payload, secret)


def _signed_raw(payload: bytes, secret: str) -> str:
    """A signed_request over raw JSON text (one json.dumps could not even write)."""
    import base64

    body = base64.urlsafe_b64encode(payload).rstrip(b"=")
    signature = base64.urlsafe_b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).rstrip(b"=")
    return f"{signature.decode()}.{body.decode()}"


def _crafted(secret: str, user: str) -> tuple[str, dict[str, tuple[str, dict]]]:  # type: ignore[type-arg]
    """A valid signed request for ``user``, and name -> (method, request options) of callbacks Meta did not send."""
    import base64
    import time

    now = int(time.time())
    good = {"algorithm": "HMAC-SHA256", "issued_at": now, "user_id": user}
    valid = _signed(good, secret)
    signature, payload = valid.split(".")

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).decode().rstrip("=")

    def form(value: str) -> dict:  # type: ignore[type-arg]
        return {"data": {"signed_request": value}}

    other_user = b64(json.dumps({**good, "user_id": "999"}).encode())
    cases: dict[str, tuple[str, dict]] = {  # type: ignore[type-arg]
        "wrong secret": ("POST", form(_signed(good, "0" * 32))),
        "empty secret": ("POST", form(_signed(good, ""))),
        "swapped payload": ("POST", form(f"{signature}.{other_user}")),
        "swapped halves": ("POST", form(f"{payload}.{signature}")),
        "signature only": ("POST", form(signature)),
        "payload only": ("POST", form(f".{payload}")),
        "signature and dot": ("POST", form(f"{signature}.")),
        "third segment": ("POST", form(valid + ".extra")),
        "padded payload": ("POST", form(valid + "==")),
        "padded signature": ("POST", form(f"{signature}=.{payload}")),
        "standard base64 alphabet": ("POST", form(f"{signature}+/.{payload}")),
        "spaces": ("POST", form(f"{signature} .{payload}")),
        "not base64 at all": ("POST", form("%%%.%%%")),
        "truncated payload": ("POST", form(valid[:-5])),
        "truncated signature": ("POST", form(valid[5:])),
        "wrong algorithm": ("POST", form(_signed({**good, "algorithm": "HMAC-SHA1"}, secret))),
        "no algorithm": ("POST", form(_signed({k: v for k, v in good.items() if k != "algorithm"}, secret))),
        "algorithm none": ("POST", form(_signed({**good, "algorithm": "none"}, secret))),
        "old issued_at": ("POST", form(_signed({**good, "issued_at": now - 3 * 86_400}, secret))),
        "issued_at in the future": ("POST", form(_signed({**good, "issued_at": now + 86_400}, secret))),
        "issued_at missing": ("POST", form(_signed({k: v for k, v in good.items() if k != "issued_at"}, secret))),
        "user_id missing": ("POST", form(_signed({k: v for k, v in good.items() if k != "user_id"}, secret))),
        "user_id not digits": ("POST", form(_signed({**good, "user_id": "1 OR 1=1"}, secret))),
        "user_id a list": ("POST", form(_signed({**good, "user_id": [user]}, secret))),
        "payload not JSON": ("POST", form(f"{b64(b'x' * 32)}.{b64(b'not json')}")),
        "payload nested 2 000 deep": ("POST", form(_signed_raw(b'{"algorithm": "HMAC-SHA256", "x": '
                                                               + b"[" * 2000 + b"]" * 2000 + b"}", secret))),
        "non-ASCII": ("POST", form(valid + "é")),
        "empty value": ("POST", form("")),
        "no field": ("POST", {"data": {"other": valid}}),
        "value too long": ("POST", form(_signed({**good, "pad": "x" * 9_000}, secret))),
        "body over the limit": ("POST", {"content": b"signed_request=" + b"a" * 70_000,
                                         "headers": {"content-type": "application/x-www-form-urlencoded"}}),
        "JSON instead of a form": ("POST", {"json": {"signed_request": valid}}),
        "GET instead of POST": ("GET", {"params": {"signed_request": valid}}),
        "PUT": ("PUT", form(valid)),
    }
    return valid, cases


def test_crafted_callbacks_are_each_a_4xx_that_changes_nothing(filmroll, sandbox, database_url):
    from pathlib import Path

    ids = _seed(filmroll.settings, database_url, sandbox, count=2)
    (user,), = _query(database_url, select(Account.app_scoped_id).where(Account.id == ids[0]))
    media_dir = Path(filmroll.settings.storage.url.removeprefix("file:"))
    valid, cases = _crafted(filmroll.settings.instagram.app_secret.get_secret_value(), user)
    assert len(cases) >= 30
    before, files = snapshot(database_url), sorted(media_dir.rglob("*"))
    answers = {}
    with filmroll.client() as client:
        for path in ("/meta/deauthorize", "/meta/data-deletion"):
            for name, (method, options) in cases.items():
                response = client.request(method, path, **options)
                answers[(path, name)] = response.status_code
                assert 400 <= response.status_code < 500, (path, name, response.status_code, response.text[:200])
        assert snapshot(database_url) == before and sorted(media_dir.rglob("*")) == files
        # Nothing says which part failed: every verification failure reads the same.
        failures = [client.post("/meta/deauthorize", **cases[name][1]) for name in
                    ("wrong secret", "old issued_at", "wrong algorithm", "swapped payload")]
        assert {(r.status_code, r.json()["detail"]) for r in failures} == {(400, "The signed request is not valid.")}
        # The control: the same request, uncrafted, is taken.
        taken = client.post("/meta/deauthorize", data={"signed_request": valid})
    assert taken.status_code == 200
    assert _query(database_url, select(Account.status).where(Account.id == ids[0])) == [("revoked",)]
