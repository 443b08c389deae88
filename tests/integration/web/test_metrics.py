"""/metrics after a sandbox run: an account connected and synced by serve's embedded worker, others seeded in every
status, a feed answered 200 then 304; each family is there, and its values are what the database says (computed
here from the rows). A key is asked of anyone but this machine. In process, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, update

from filmroll.service import api_keys
from filmroll.service import feeds as feed_service
from filmroll.store.database import Database
from filmroll.store.tables import Account, MediaFile, MediaItem, Source, Token
from filmroll.vault import Keyring, Vault, parse_keys
from tests import aio
from tests.integration.web.test_embedded_worker import _connect_and_wait_for_the_first_sync
from tests.integration.web.test_feeds import make_served_feed
from tests.seeding import seed_accounts
from tests.webapp import running_filmroll

FAMILIES = {"filmroll_jobs", "filmroll_feed_responses", "filmroll_accounts", "filmroll_token_earliest_expiry_seconds",
            "filmroll_token_expiry_seconds", "filmroll_sync_lag_seconds", "filmroll_sync_never_synced",
            "filmroll_rate_limit_usage_percent", "filmroll_mirror_stored_bytes", "filmroll_mirror_queue_posts",
            "filmroll_job_last_success_timestamp_seconds"}


def _samples(text: str) -> dict[str, list]:
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


async def _truth(database_url: str) -> dict:
    database = Database(database_url)
    try:
        now = database.clock.now()
        async with database.read() as session:
            by = {(s, p): n for s, p, n in await session.execute(
                select(Account.status, Account.provider, func.count()).group_by(Account.status, Account.provider))}
            active = (await session.execute(select(Token.expires_at).join(Account, Account.id == Token.account_id)
                                            .where(Account.status == "active"))).scalars().all()
            queue = (await session.execute(select(func.count()).select_from(MediaItem).where(
                MediaItem.deleted_at.is_(None), MediaItem.mirrored_at.is_(None)))).scalar()
            stored = (await session.execute(select(func.coalesce(func.sum(MediaFile.bytes), 0)))).scalar()
            synced = (await session.execute(select(func.max(Source.last_synced_at)))).scalar()
        return {"now": now, "accounts": by, "expiries": sorted(active), "queue": queue, "stored": stored,
                "synced": synced}
    finally:
        await database.dispose()


def test_metrics_say_what_the_database_says(sandbox, database_url):
    with running_filmroll(sandbox, database_url, worker=True, socket=False) as app:
        admin, (_, _, posts) = _connect_and_wait_for_the_first_sync(app, sandbox, database_url, 6)

        async def seed() -> str:
            database = Database(database_url)
            try:
                vault = Vault(Keyring(parse_keys(app.settings.vault.keys.get_secret_value())))
                ids = await seed_accounts(database, vault, sandbox, 4, first=50, due=False)
                async with database.transaction() as session:
                    await session.execute(update(Account).where(Account.id == ids[0]).values(status="needs_reauth"))
                    await session.execute(update(Account).where(Account.id == ids[1]).values(status="disconnected"))
                    await session.execute(update(Token).where(Token.account_id == ids[2]).values(
                        expires_at=database.clock.now() + timedelta(days=2)))
                return (await api_keys.create(database, "prometheus", "read", actor="test"))[1]
            finally:
                await database.dispose()

        key = aio.run(seed())
        make_served_feed(admin, database_url, feed_service.FeedSpec("Shop", "shop", ("1",)))
        first = admin.get("/feeds/shop.json")
        assert admin.get("/feeds/shop.json", headers={"If-None-Match": first.headers["etag"]}).status_code == 304

        client = app.client()
        proxied = {"X-Forwarded-For": "203.0.113.9"}  # through a proxy: not this machine, a key is asked
        refused = client.get("/metrics", headers=proxied)
        assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
        answered = client.get("/metrics", headers={**proxied, "Authorization": f"Bearer {key}"})
        assert answered.status_code == 200 and answered.headers["content-type"].startswith("text/plain")
        samples = _samples(answered.text)
        truth = aio.run(_truth(database_url))

        assert set(samples) >= FAMILIES, FAMILIES - set(samples)
        accounts = {(s.labels["status"], s.labels["provider"]): s.value for s in samples["filmroll_accounts"]}
        assert {k: v for k, v in accounts.items() if v} == {k: float(v) for k, v in truth["accounts"].items()}
        earliest = samples["filmroll_token_earliest_expiry_seconds"][0].value
        assert abs(earliest - (truth["expiries"][0] - truth["now"]).total_seconds()) < 60
        buckets = {s.labels["le"]: s.value for s in samples["filmroll_token_expiry_seconds"]
                   if s.name.endswith("_bucket")}
        for days in (1, 3, 7, 30, 60):
            within = sum(1 for e in truth["expiries"] if e <= truth["now"] + timedelta(days=days))
            assert buckets[str(days * 86_400)] == within, (days, buckets)
        assert buckets["+Inf"] == len(truth["expiries"]) == 3  # active: the connected one and two seeded
        assert samples["filmroll_mirror_queue_posts"][0].value == truth["queue"] >= posts  # no mirror runs here
        assert samples["filmroll_mirror_stored_bytes"][0].value == truth["stored"]
        assert samples["filmroll_sync_never_synced"][0].value == 2  # the two active seeded accounts
        last = {s.labels["job"]: s.value for s in samples["filmroll_job_last_success_timestamp_seconds"]}
        assert last["sync"] == pytest.approx(truth["synced"].timestamp(), abs=1)
        jobs = {(s.labels["job"], s.labels["outcome"]): s.value for s in samples["filmroll_jobs"]
                if s.name == "filmroll_jobs_total"}
        assert jobs.get(("sync", "synced_full"), 0) >= 1
        feeds = {s.labels["code"]: s.value for s in samples["filmroll_feed_responses"]
                 if s.name == "filmroll_feed_responses_total"}
        assert feeds["200"] >= 1 and feeds["304"] >= 1
        assert "account_id" not in answered.text and "sandbox" not in answered.text  # no per-account label
        admin.close()
