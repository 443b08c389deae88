"""Webhook alerts: raised with the state change, signed, retried, never sent twice, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select, update

from filmroll.store import alerts
from filmroll.store.tables import Account, Event, ReconnectLink, Token
from tests.harness import LINK_BASE, WEBHOOK_SECRET
from tests.seeding import seed_accounts
from tests.webhooks import Receiver, webhook_receiver

pytestmark = pytest.mark.anyio



@pytest.fixture
def receiver(harness) -> Iterator[Receiver]:
    with webhook_receiver() as receiver:
        harness.receiver = receiver
        yield receiver


async def test_a_dead_token_sends_one_signed_alert_with_a_working_link(harness, sandbox, receiver):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 3)
    sandbox.control.revoke(1, "password_changed")
    outcomes = await harness.run_worker()
    assert outcomes == {"refreshed": 2, "needs_reauth": 1, "alert_sent": 1}
    (delivery,) = receiver.deliveries
    assert delivery.signed_with(WEBHOOK_SECRET) and not delivery.signed_with(WEBHOOK_SECRET + "x")
    assert delivery.headers["content-type"] == "application/json"
    assert delivery.headers["x-filmroll-event"] == "account.needs_reauth"
    body = delivery.json()
    account = sandbox.control.account(1)
    assert body["type"] == "account.needs_reauth" and body["attempt"] == 1
    assert body["account"] == {"id": ids[1], "ig_user_id": account["ig_id"], "username": "sandbox1",
                               "custom_id": None}
    assert "password" in body["reason"]
    assert body["reconnect_url"].startswith(LINK_BASE + "/reconnect?link=")
    assert await harness.link_state(body["reconnect_url"]) == "usable"
    (alert,) = await harness.alerts()
    assert alert.status == "sent" and alert.attempts == 1 and alert.account_id == ids[1]
    assert len(await harness.events("alert.sent")) == 1
    # The account stays dead; the alert is not sent again, however often the worker runs.
    await harness.run_worker()
    assert len(receiver.deliveries) == 1


async def test_failed_deliveries_are_retried_later_and_their_links_never_work(harness, sandbox, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    await seed_accounts(harness.database, harness.vault, sandbox, 1)
    sandbox.control.revoke(0)
    receiver.statuses = [500, 302]  # a server error, then a redirect (never followed)
    assert await harness.run_worker() == {"needs_reauth": 1, "alert_retry": 1}
    (alert,) = await harness.alerts()
    now = harness.database.clock.now()
    assert alert.status == "pending" and alert.attempts == 1 and alert.last_error == "HTTP 500"
    assert now + timedelta(seconds=10) < alert.next_attempt_at <= now + timedelta(seconds=31)
    assert await harness.run_worker() == {}  # not due yet: nothing is sent
    harness.database.clock.advance(timedelta(minutes=2))
    assert await harness.run_worker() == {"alert_retry": 1}
    assert (await harness.alerts())[0].last_error == "HTTP 302"
    harness.database.clock.advance(timedelta(minutes=5))
    assert await harness.run_worker() == {"alert_sent": 1}
    assert [d.json()["attempt"] for d in receiver.deliveries] == [1, 2, 3]
    assert len(receiver.deliveries) == 3 and all(d.signed_with(WEBHOOK_SECRET) for d in receiver.deliveries)
    urls = [d.json()["reconnect_url"] for d in receiver.deliveries]
    assert len(set(urls)) == 3
    assert [await harness.link_state(url) for url in urls] == ["unknown_link", "unknown_link", "usable"]
    # Neither the webhook URL (it may be a credential) nor its secret nor a link reaches a log.
    logged = caplog.text
    assert "alert 1 for @sandbox0 not delivered (HTTP 500); retrying" in logged  # named as the operator knows it
    assert "filmroll-hook-path-secret" not in logged and WEBHOOK_SECRET not in logged
    assert all(parse_qs(urlsplit(url).query)["link"][0] not in logged for url in urls)


async def test_an_unreachable_receiver_is_retried_then_given_up_on(harness, sandbox, receiver):
    await seed_accounts(harness.database, harness.vault, sandbox, 1)
    sandbox.control.revoke(0)
    receiver.server.shutdown()
    receiver.server.server_close()  # nothing listens on that port any more
    webhook = harness.webhook(max_attempts=2)
    assert await harness.run_worker(webhook=webhook) == {"needs_reauth": 1, "alert_retry": 1}
    harness.database.clock.advance(timedelta(minutes=2))
    assert await harness.run_worker(webhook=webhook) == {"alert_failed": 1}
    (alert,) = await harness.alerts()
    assert alert.status == "failed" and alert.attempts == 2 and "Connect" in alert.last_error
    (failed,) = await harness.events("alert.failed")
    assert "after 2 attempts" in failed.message
    async with harness.database.read() as session:
        assert (await session.execute(select(ReconnectLink))).first() is None  # no undelivered link works


async def test_an_alert_for_an_account_that_recovered_is_not_sent(harness, sandbox, receiver):
    (account_id,) = await seed_accounts(harness.database, harness.vault, sandbox, 1, due=False)
    now = harness.database.clock.now()
    async with harness.database.transaction() as session:
        await session.execute(update(Account).values(status="needs_reauth", status_reason="revoked"))
        await alerts.raise_alert(session, account_id=account_id, kind=alerts.NEEDS_REAUTH, reason="revoked", now=now)
        await alerts.raise_alert(session, account_id=account_id, kind=alerts.NEEDS_REAUTH, reason="again", now=now)
    async with harness.database.transaction() as session:  # reconnected before the worker got to it
        await session.execute(update(Account).values(status="active", status_reason=None))
    assert await harness.run_worker() == {"alert_obsolete": 1}
    assert receiver.deliveries == [] and [a.status for a in await harness.alerts()] == ["obsolete"]


async def test_a_token_that_cannot_be_refreshed_alerts_a_week_before_expiry(harness, sandbox, receiver):
    # Issued 54 days ago: 6 days left. Account 0's refreshes fail; account 1's succeed.
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 2, age_seconds=54 * 86_400)
    sandbox.control.add_fault("status", endpoint="refresh", account=sandbox.control.account(0)["ig_id"], status=503)
    outcomes = await harness.run_worker()
    assert outcomes == {"refreshed": 1, "retry": 1}  # a first refresh still under way alerts nobody
    harness.database.clock.advance(timedelta(hours=7))
    outcomes = await harness.run_worker()
    assert outcomes["retry"] == 1 and outcomes["alert_sent"] == 1
    sent = [d.json() for d in receiver.deliveries]
    assert [(b["type"], b["account"]["id"]) for b in sent] == [("token.expiring", ids[0])]
    assert "under 7 days" in sent[0]["reason"]
    async with harness.database.read() as session:
        token = await session.get(Token, ids[0])
    assert sent[0]["token_expires_at"] == token.expires_at.isoformat()
    # Later failures of the same token do not alert again; the refreshed account never alerts.
    harness.database.clock.advance(timedelta(hours=7))
    await harness.run_worker()
    assert len(receiver.deliveries) == 1
    assert [a.account_id for a in await harness.alerts()] == [ids[0]]
    async with harness.database.read() as session:
        expiring = (await session.execute(select(Event.account_id, Event.message)
                                          .where(Event.kind == "token.expiring"))).all()
    assert expiring == [(ids[0], sent[0]["reason"])]  # one event, with the alert


async def test_two_sweeps_at_once_queue_each_expiring_alert_once(harness, sandbox):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 3, age_seconds=54 * 86_400)
    async with harness.database.transaction() as session:
        await session.execute(update(Token).values(refresh_error="TransientError: down",
                                                   refresh_failure_kind="temporary"))
    now = harness.database.clock.now()

    async def sweep() -> int:
        async with harness.database.transaction() as session:
            return await alerts.sweep_expiring(session, now=now, within=timedelta(days=7), actor="test")

    counts = await asyncio.gather(sweep(), sweep())
    assert sorted(counts) == [0, 3] and await sweep() == 0
    async with harness.database.read() as session:
        events = (await session.execute(select(Event.account_id).where(Event.kind == "token.expiring"))).scalars()
        assert sorted(events) == sorted(ids)
    assert sorted(a.account_id for a in await harness.alerts()) == sorted(ids)
