"""Sources of other people's posts as an operator manages them (``filmroll sources``): add a hashtag or another
profile read through a Facebook Login account, list them, remove one (its posts and stored pictures go with it), and
read an account's hashtag quota.

Bad input changes nothing and sends nothing to Instagram: a tag Instagram could not find, an account connected with
Instagram Login (it cannot search), an unknown account. Adding a hashtag searches its id once (kept for good; a tag
searched before costs nothing), after the quota keeper has counted it, so the 31st unique tag in 7 days is refused
before any call, saying when a slot frees.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from filmroll import errors
from filmroll.platform import Clients, FacebookLoginClient
from filmroll.secret import Secret
from filmroll.service import hashtags
from filmroll.service.accounts import check_reference
from filmroll.service.discovery import profile_json
from filmroll.storage import Storage
from filmroll.storage.keys import source_prefix
from filmroll.store import accounts, tokens
from filmroll.store import feeds as feed_store
from filmroll.store import hashtags as hashtag_store
from filmroll.store import sources as source_store
from filmroll.store.database import Database
from filmroll.store.tables import Account, MediaItem, Source
from filmroll.vault import Vault
from filmroll.vocabulary import AccountStatus, Provider, SourceKind

USERNAME = re.compile(r"[A-Za-z0-9._]{1,30}")


@dataclass(frozen=True)
class SourceView:
    id: int
    kind: str
    name: str  # "#bread", "@otherbrand", "@ourshop"
    query: str
    via: str | None  # the account it belongs to or reads through, "@username"
    status: str
    posts: int
    last_synced_at: datetime | None
    next_sync_at: datetime | None
    sync_error: str | None
    created: bool = False  # for `add`: whether this call made it


@dataclass(frozen=True)
class QuotaView:
    account: str
    limit: int
    used: int
    tags: list[tuple[str, datetime, datetime]]  # name, first searched at, frees at


def _view(source: Source, account: Account | None, posts: int, created: bool = False) -> SourceView:
    return SourceView(source.id, source.kind,
                      source_store.describe(source.kind, source.query, account.username if account else None,
                                            source.account_id),
                      source.query, f"@{account.username}" if account else None, source.status, posts,
                      source.last_synced_at, source.next_sync_at, source.sync_error, created)


async def via_account(database: Database, ref: str) -> Account:
    """The Facebook Login account a hashtag or profile is read through: unknown is AccountNotFoundError (exit 3);
    one connected with Instagram Login, or not active, is refused (exit 8)."""
    ref = check_reference(ref)
    async with database.read() as session:
        account = await accounts.find(session, ref, provider=Provider.FACEBOOK)
        other = None if account is not None else await accounts.find(session, ref)
    if account is None and other is not None:
        raise errors.InputError(f"@{other.username} is connected with Instagram Login, which cannot search hashtags "
                                "or other profiles; connect it with `filmroll connect --provider facebook` and pass "
                                "that account as --via")
    if account is None:
        raise errors.AccountNotFoundError(f"no account connected with Facebook Login matches {ref[:60]!r}")
    if account.status != AccountStatus.ACTIVE:
        raise errors.AccountStateError(f"@{account.username} is {account.status}: its owner must reconnect it first",
                                       status=account.status)
    return account


def _facebook(clients: Clients) -> FacebookLoginClient:
    client = clients[Provider.FACEBOOK]
    if not isinstance(client, FacebookLoginClient):
        raise errors.ConfigError("Facebook Login is not configured (FILMROLL_FACEBOOK__APP_ID)")
    return client


async def _token(database: Database, vault: Vault, account: Account) -> Secret:
    async with database.read() as session:
        token = await tokens.get(session, account.id)
    if token is None:
        raise errors.AccountNotFoundError(f"@{account.username} has no stored token (status: {account.status})")
    return vault.open(token.ciphertext, token.key_id, account.id)


async def _existing(database: Database, kind: str, account_id: int, query: str) -> SourceView | None:
    async with database.read() as session:
        found = await session.scalar(select(Source).where(Source.kind == kind, Source.account_id == account_id,
                                                          Source.query == query))
        if found is None:
            return None
        account = await session.get(Account, account_id)
        return _view(found, account, await _posts(session, found.id))


async def _posts(session: AsyncSession, source_id: int) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(MediaItem).where(MediaItem.source_id == source_id,
                                                          MediaItem.deleted_at.is_(None))) or 0)


async def add_hashtag(database: Database, vault: Vault, clients: Clients, name: str, *, via: str) -> SourceView:
    tag = hashtags.normalize(name)
    account = await via_account(database, via)
    existing = await _existing(database, SourceKind.HASHTAG, account.id, tag)
    if existing is not None:
        return existing
    async with database.read() as session:
        known = await hashtag_store.cached_id(session, tag)
    if known is None:  # a search: counted by the keeper first, so a 31st tag is refused before any call
        await hashtags.lookup(database, _facebook(clients), await _token(database, vault, account),
                              account_id=account.id, ig_user_id=account.ig_user_id, name=tag,
                              username=account.username)
    async with database.transaction() as session:
        source = await source_store.add(session, kind=SourceKind.HASHTAG, account_id=account.id, query=tag,
                                        now=database.clock.now())
        return _view(source, account, 0, created=True)


async def add_profile(database: Database, vault: Vault, clients: Clients, username: str, *, via: str) -> SourceView:
    name = username.strip().removeprefix("@")
    if not USERNAME.fullmatch(name):
        raise errors.InputError(f"{username.strip()[:60]!r} is not an Instagram username (letters, digits, . and _; "
                                "at most 30)")
    account = await via_account(database, via)
    existing = await _existing(database, SourceKind.PROFILE, account.id, name.lower())
    if existing is not None:
        return existing
    # One call proves the account can be discovered ((#110) for a personal or unknown one: nothing is kept).
    profile, _ = await _facebook(clients).discover(await _token(database, vault, account),
                                                   user_id=account.ig_user_id, username=name, limit=1)
    async with database.transaction() as session:
        source = await source_store.add(session, kind=SourceKind.PROFILE, account_id=account.id,
                                        query=name.lower(), now=database.clock.now())
        source.profile = profile_json(profile)
        return _view(source, account, 0, created=True)


async def listing(database: Database) -> list[SourceView]:
    """Every source of other people's posts (and each account's own), oldest first."""
    async with database.read() as session:
        rows = (await session.execute(select(Source, Account).outerjoin(Account, Account.id == Source.account_id)
                                      .order_by(Source.id))).all()
        counts = dict((await session.execute(
            select(MediaItem.source_id, func.count()).where(MediaItem.deleted_at.is_(None))
            .group_by(MediaItem.source_id))).all())
    return [_view(source, account, int(counts.get(source.id, 0))) for source, account in rows]


async def find(database: Database, ref: str) -> SourceView:
    """A source by its id, ``#tag`` or ``@username`` (a profile source's, else an account's own)."""
    ref = ref.strip()
    found = await listing(database)
    if ref.isascii() and ref.isdigit():
        matches = [s for s in found if s.id == int(ref)]
    elif ref.startswith("#"):
        tag = hashtags.normalize(ref)
        matches = [s for s in found if s.kind == SourceKind.HASHTAG and s.query == tag]
    else:
        name = ref.removeprefix("@").lower()
        matches = [s for s in found if s.kind == SourceKind.PROFILE and s.query == name] or \
            [s for s in found if s.kind == SourceKind.ACCOUNT and (s.via or "").lower() == f"@{name}"]
    if not matches:
        raise errors.InputError(f"no source matches {ref[:60]!r} (give its id, #tag or @username; "
                                "`filmroll sources list` shows them)") if not ref.isdigit() else \
            errors.AccountNotFoundError(f"there is no source {ref}")
    if len(matches) > 1:
        raise errors.InputError(f"{ref[:60]!r} names {len(matches)} sources (one per account it is read through): "
                                f"give one of their ids, {', '.join(str(s.id) for s in matches)}")
    return matches[0]


async def remove(database: Database, storage: Storage, ref: str) -> SourceView:
    """Remove a hashtag or profile source: its posts, its stored pictures and its place in feeds. The tag's id is
    kept (re-adding it searches nothing). An account's own source goes only with its account (`filmroll delete`)."""
    view = await find(database, ref)
    if view.kind == SourceKind.ACCOUNT:
        raise errors.InputError(f"{view.name} is an account's own posts: they go with the account "
                                "(`filmroll disconnect` or `filmroll delete`)")
    now = database.clock.now()
    async with database.transaction() as session:
        await feed_store.touch(session, [view.id], now)
        source = await session.get(Source, view.id)
        if source is not None:
            await session.delete(source)
    keys = [stored.key async for stored in storage.list(source_prefix(view.id))]
    for start in range(0, len(keys), 500):
        await storage.delete(keys[start:start + 500])
    return view


async def quota(database: Database, vault: Vault, clients: Clients, via: str, *,
                reconcile: bool = True) -> QuotaView:
    """The account's hashtag quota: the tags counted in the last 7 days and when each frees; first reconciled with
    Instagram's own list (``recently_searched_hashtags``, which costs no quota) unless ``reconcile`` is off."""
    account = await via_account(database, via)
    if reconcile:
        await hashtags.reconcile(database, _facebook(clients), await _token(database, vault, account),
                                 account_id=account.id, ig_user_id=account.ig_user_id)
    async with database.transaction() as session:
        counted = await hashtag_store.ledger(session, account.id, database.clock.now())
    return QuotaView(f"@{account.username}", hashtag_store.LIMIT, len(counted),
                     [(c.name, c.first_searched_at, c.frees_at) for c in counted])


async def ensure(database: Database, vault: Vault, clients: Clients, kind: str, name: str, *,
                 via: str | None = None) -> SourceView:
    """The source of this hashtag or profile for a feed: the one there is (through ``via``, when given), else added,
    through ``via`` or the one Facebook Login account there is (more than one: ``via`` is required)."""
    query = hashtags.normalize(name) if kind == SourceKind.HASHTAG else name.strip().removeprefix("@").lower()
    found = [s for s in await listing(database) if s.kind == kind and s.query == query]
    if via is not None:
        account = await via_account(database, via)
        found = [s for s in found if s.via == f"@{account.username}"]
    if len(found) == 1:
        return found[0]
    if via is None:
        async with database.read() as session:
            able = list((await session.execute(select(Account).where(
                Account.provider == Provider.FACEBOOK, Account.status == AccountStatus.ACTIVE))).scalars())
        if len(able) != 1:
            raise errors.InputError(
                f"{'several accounts' if able else 'no account'} connected with Facebook Login "
                f"{'can' if able else 'could'} read {'#' if kind == SourceKind.HASHTAG else '@'}{query}: "
                + ("say which with --via @account" if able else "connect one: `filmroll connect --provider facebook`"))
        via = str(able[0].id)
    if kind == SourceKind.HASHTAG:
        return await add_hashtag(database, vault, clients, query, via=via)
    return await add_profile(database, vault, clients, query, via=via)
