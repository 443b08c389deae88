"""The provider seam in the database: an Instagram user id is unique per provider, an OAuth state says whose sign-in
it is, and only the tokens of providers that refresh are ever claimed for a refresh."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, update

from filmroll.errors import ConfigError
from filmroll.platform import Clients
from filmroll.store import tokens
from filmroll.store.lease import claim_due
from filmroll.store.tables import Account, OAuthState, Token
from filmroll.vocabulary import Provider
from tests.seeding import seed_accounts

pytestmark = pytest.mark.anyio
ANOTHER = "facebook_login"  # a provider filmroll does not have yet: only a string in a row


async def test_one_instagram_user_is_one_account_per_provider(harness, sandbox):
    (account_id,) = await seed_accounts(harness.database, harness.vault, sandbox, 1)
    async with harness.database.read() as session:
        first = await session.get(Account, account_id)
    assert first is not None and first.provider == Provider.INSTAGRAM_LOGIN
    # (ids given: the seeded rows took theirs without moving PostgreSQL's sequence)
    async with harness.database.transaction() as session:  # the same person through another provider
        session.add(Account(id=100, ig_user_id=first.ig_user_id, provider=ANOTHER, slug="other", status="active",
                            connected_at=first.connected_at, created_at=first.created_at, updated_at=first.updated_at))
    with pytest.raises(sa_exc.IntegrityError):
        async with harness.database.transaction() as session:  # the same provider twice: refused
            session.add(Account(id=101, ig_user_id=first.ig_user_id, provider=ANOTHER, slug="third", status="active",
                                connected_at=first.connected_at, created_at=first.created_at,
                                updated_at=first.updated_at))
    async with harness.database.read() as session:
        rows = (await session.execute(select(Account.provider).where(Account.ig_user_id == first.ig_user_id))).all()
    assert sorted(r[0] for r in rows) == [ANOTHER, Provider.INSTAGRAM_LOGIN]


async def test_a_token_of_a_provider_without_refresh_is_never_claimed_for_one(harness, sandbox):
    ids = await seed_accounts(harness.database, harness.vault, sandbox, 2)  # both due for a refresh
    async with harness.database.transaction() as session:
        await session.execute(update(Token).where(Token.account_id == ids[1]).values(provider=ANOTHER))
    async with harness.database.transaction() as session:
        claims = await claim_due(session, tokens.REFRESHES, owner="w", now=await harness.database.now(),
                                 lease=timedelta(seconds=60), limit=10)
    assert [(c.account_id, c.provider) for c in claims] == [(ids[0], Provider.INSTAGRAM_LOGIN)]
    # Still probed: whether it works is every provider's question.
    async with harness.database.transaction() as session:
        await tokens.TOKEN.release(session, [ids[0]], owner="w")
        await session.execute(update(Token).values(next_probe_at=await harness.database.now() - timedelta(hours=1)))
        probes = await claim_due(session, tokens.PROBES, owner="w2", now=await harness.database.now(),
                                 lease=timedelta(seconds=60), limit=10)
    assert sorted(c.account_id for c in probes) == sorted(ids)


async def test_the_oauth_state_remembers_whose_sign_in_it_is(harness):
    url = await harness.connector.begin(flow="cli", session_id=None)
    state = parse_qs(urlsplit(url).query)["state"][0]
    async with harness.database.read() as session:
        rows = (await session.execute(select(OAuthState.provider, OAuthState.flow))).all()
    assert rows == [(Provider.INSTAGRAM_LOGIN, "cli")] and len(state) >= 40
    with pytest.raises(ConfigError, match="no client for the provider 'facebook_login'"):
        await harness.connector.begin(flow="cli", session_id=None, provider=ANOTHER)
    with pytest.raises(ConfigError, match="two clients"):
        Clients([harness.instagram, harness.instagram])
