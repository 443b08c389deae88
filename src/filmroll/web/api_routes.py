"""The management API's routes and the shapes of their answers (``web/api.py`` is the application around them:
keys, limits, errors). Handlers stay thin: parse, call the same use-case as the CLI, shape the answer."""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Path, Query, Request
from pydantic import BaseModel, Field

from filmroll import errors
from filmroll.service import accounts as account_service
from filmroll.service import connect_links, deletion, moderation
from filmroll.service import feeds as feed_service
from filmroll.service import insights as insight_service
from filmroll.service.accounts import AccountView
from filmroll.store import events
from filmroll.store.tables import Account, Event
from filmroll.vocabulary import PostState
from filmroll.web.api_auth import Caller, Context, actor, owner

AccountId = Annotated[int, Path(ge=1, le=2**31 - 1, description="The account's id")]
Slug = Annotated[str, Path(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9-]*$", description="A feed's slug")]
Status = Literal["active", "needs_reauth", "revoked", "disconnected"]
ProviderName = Literal["instagram_login", "facebook"]


class Problem(BaseModel):
    code: str = Field(description="The condition, in the CLI's exit-code vocabulary: not_found, invalid, busy, "
                                  "needs_reauth, throttled, instagram… or unauthorized, forbidden, rate_limited")
    message: str


class ErrorOut(BaseModel):
    error: Problem


class AccountOut(BaseModel):
    id: int
    username: str | None
    custom_id: str | None = Field(description="Your own id for it, from the connect link that connected it")
    name: str | None
    provider: str
    status: str
    status_reason: str | None
    followers_count: int | None
    follows_count: int | None
    media_count: int | None
    posts: int = Field(description="Live posts stored")
    permissions: list[str]
    token_expires_at: datetime | None
    data_access_expires_at: datetime | None
    refreshed_at: datetime | None
    next_refresh_at: datetime | None
    last_synced_at: datetime | None
    next_sync_at: datetime | None
    stale_since: datetime | None
    sync_error: str | None

    @classmethod
    def of(cls, v: AccountView) -> AccountOut:
        return cls(id=v.id, username=v.username, custom_id=v.custom_id, name=v.name, provider=v.provider,
                   status=v.status, status_reason=v.status_reason, followers_count=v.followers_count,
                   follows_count=v.follows_count, media_count=v.media_count, posts=v.posts,
                   permissions=list(v.permissions),
                   token_expires_at=v.token_expires_at, data_access_expires_at=v.data_access_expires_at,
                   refreshed_at=v.refreshed_at, next_refresh_at=v.next_refresh_at, last_synced_at=v.last_synced_at,
                   next_sync_at=v.next_sync_at, stale_since=v.stale_since, sync_error=v.sync_error)


class AccountPage(BaseModel):
    data: list[AccountOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last one")


class TokenJobOut(BaseModel):
    outcome: str = Field(description="refreshed, alive, needs_reauth, refresh_retry…")
    account: AccountOut


class FeedOut(BaseModel):
    slug: str
    title: str
    sources: list[str]
    post_limit: int
    media_types: list[str]
    moderation: str
    block_words: list[str]
    allowed_origins: list[str]
    changed_at: datetime
    created_at: datetime


_TEXT = Annotated[str, Field(min_length=1, max_length=200)]


class FeedChange(BaseModel):
    """What a feed is made of; on PATCH, only the fields sent change."""

    title: _TEXT | None = None
    slug: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$")] | None = None
    accounts: list[Annotated[str, Field(min_length=1, max_length=80)]] | None = Field(
        None, max_length=500, description="Accounts by id, @username or slug")
    source_ids: list[Annotated[int, Field(ge=1, le=2**31 - 1)]] | None = Field(
        None, max_length=500, description="Other sources (hashtags, profiles) by id, as `filmroll sources list` shows")
    post_limit: Annotated[int, Field(ge=1, le=1000)] | None = None
    media_types: list[Literal["IMAGE", "VIDEO", "CAROUSEL_ALBUM"]] | None = Field(None, min_length=1)
    reels: bool | None = None
    include_hashtags: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(None, max_length=50)
    exclude_hashtags: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(None, max_length=50)
    allowed_origins: list[Annotated[str, Field(min_length=1, max_length=300)]] | None = Field(None, max_length=50)
    moderation: Literal["open", "approve"] | None = None
    block_words: list[Annotated[str, Field(min_length=1, max_length=100)]] | None = Field(None, max_length=200)

    def change(self) -> dict[str, object]:
        """The FeedSpec fields this sets."""
        names = {"source_ids": "sources"}
        return {names.get(k, k): tuple(v) if isinstance(v, list) else v
                for k, v in self.model_dump(exclude_unset=True).items() if v is not None}


class NewFeed(FeedChange):
    title: _TEXT
    accounts: list[Annotated[str, Field(min_length=1, max_length=80)]] = Field(default_factory=list, max_length=500)


class PostStateOut(BaseModel):
    id: str = Field(description="Instagram's media id, the post's id in the feed JSON")
    source: str
    username: str | None
    caption: str | None
    timestamp: datetime | None
    state: str
    decided_by: str | None
    decided_at: datetime | None


class Decision(BaseModel):
    state: Literal["approved", "rejected"]


class DecisionOut(BaseModel):
    changed: int


class EventOut(BaseModel):
    id: int
    at: datetime
    kind: str
    message: str
    account_id: int | None
    actor: str | None


class EventPage(BaseModel):
    data: list[EventOut]
    next_cursor: str | None


class ConnectLinkIn(BaseModel):
    custom_id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._:@+-]+$",
                           description="Your own id for the client; the account will carry it")
    return_url: str | None = Field(None, max_length=2000, description="Where the owner lands afterwards, with "
                                   "?outcome=connected|<error code>&custom_id=…[&account=@…]; only on an origin in "
                                   "FILMROLL_API__RETURN_ORIGINS")
    expires_in: int = Field(7 * 86_400, ge=300, le=30 * 86_400, description="Seconds the link stays usable")
    provider: ProviderName = "instagram_login"


class ConnectLinkOut(BaseModel):
    id: int
    url: str = Field(description="Send this to the account's owner; shown once (only its hash is kept)")
    custom_id: str
    provider: str
    return_url: str | None
    expires_at: datetime


class Accepted(BaseModel):
    status: str


ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": ErrorOut, "description": said} for status, said in (
    (401, "No key, or one that is not valid"), (403, "A read key asked to change something"),
    (404, "No such account or feed"), (409, "Busy, or the account cannot do that now"),
    (422, "A value filmroll does not take"), (429, "Over the key's requests a minute, or Instagram's limit"),
    (502, "Instagram refused or did not answer"), (503, "The database or the storage cannot be used"))}


def cursor_of(value: int) -> str:
    return base64.urlsafe_b64encode(f"after:{value}".encode()).decode().rstrip("=")


def after_of(cursor: str | None) -> int | None:
    """The id a cursor continues after; a cursor filmroll did not make is refused (422), never guessed at."""
    if cursor is None:
        return None
    try:
        said = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        said = ""
    kind, _, number = said.partition(":")
    if kind != "after" or not number.isascii() or not number.isdigit() or len(number) > 12:
        raise errors.InputError("cursor: not one this API gave (pass next_cursor as it came)")
    return int(number)


def router() -> APIRouter:
    routes = APIRouter(responses=ERRORS)

    async def _account(web: Any, account_id: int) -> AccountView:
        async with web.database.read() as session:
            if await session.get(Account, account_id) is None:
                raise errors.AccountNotFoundError(f"there is no account {account_id}")
        return await account_service.describe(web.database, str(account_id))

    async def _token_job(web: Any, account_id: int, job: Any) -> TokenJobOut:
        """A refresh or a probe now, through the workers' own leased path (409 busy while one holds it)."""
        await _account(web, account_id)
        report = await job(str(account_id))
        return TokenJobOut(outcome=str(report.outcome), account=AccountOut.of(report.account))

    @routes.get("/accounts", response_model=AccountPage, summary="Accounts, a page at a time")
    async def list_accounts(key: Caller, web: Context,
                            cursor: Annotated[str | None, Query(max_length=40)] = None,
                            limit: Annotated[int, Query(ge=1, le=200)] = 50,
                            status: Status | None = None, provider: ProviderName | None = None,
                            custom_id: Annotated[str | None, Query(max_length=100,
                                                                   pattern=r"^[A-Za-z0-9._:@+-]+$")] = None,
                            username: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9._]+$",
                                                                  description="A part of the username")] = None,
                            ) -> AccountPage:
        found = await account_service.page(web.database, after=after_of(cursor), limit=limit + 1, status=status,
                                           provider=provider, username=username, custom_id=custom_id)
        shown = found[:limit]
        return AccountPage(data=[AccountOut.of(v) for v in shown],
                           next_cursor=cursor_of(shown[-1].id) if len(found) > limit else None)

    @routes.get("/accounts/{account_id}", response_model=AccountOut, summary="One account")
    async def get_account(account_id: AccountId, key: Caller, web: Context) -> AccountOut:
        return AccountOut.of(await _account(web, account_id))

    @routes.post("/accounts/{account_id}/sync", response_model=AccountOut, status_code=202,
                 summary="Sync soon: the account is due for the next free worker")
    async def sync_account(account_id: AccountId, key: Caller, web: Context) -> AccountOut:
        await _account(web, account_id)
        return AccountOut.of(await account_service.sync_soon(web.database, account_id, actor=actor(key)))

    @routes.post("/accounts/{account_id}/refresh", response_model=TokenJobOut,
                 summary="Refresh the token now, under the same lease as the workers (409 busy while one holds it)")
    async def refresh_account(account_id: AccountId, key: Caller, web: Context) -> TokenJobOut:
        return await _token_job(web, account_id, partial(account_service.refresh_now,
                                                         web.runtime.refresher(owner(key))))

    @routes.post("/accounts/{account_id}/probe", response_model=TokenJobOut,
                 summary="Ask Instagram now whether the token still works")
    async def probe_account(account_id: AccountId, key: Caller, web: Context) -> TokenJobOut:
        return await _token_job(web, account_id, partial(account_service.probe_now, web.runtime.prober(owner(key))))

    @routes.post("/accounts/{account_id}/disconnect", response_model=AccountOut,
                 summary="Disconnect: the token is forgotten, the posts kept for the retention period")
    async def disconnect_account(account_id: AccountId, key: Caller,
                                 web: Context) -> AccountOut:
        await _account(web, account_id)
        return AccountOut.of(await account_service.disconnect(web.database, str(account_id), actor=actor(key)))

    @routes.delete("/accounts/{account_id}", response_model=Accepted, status_code=202,
                   summary="Delete the account and everything stored of it (done by the next free worker)")
    async def delete_account(account_id: AccountId, key: Caller, web: Context) -> Accepted:
        await _account(web, account_id)
        await deletion.request_deletion(web.database, account_id=account_id)
        return Accepted(status="deletion_requested")

    @routes.get("/accounts/{account_id}/insights", response_model=insight_service.Insights,
                summary="Followers a day at a time (gaps as null) and the window's posts with their engagement")
    async def account_insights(account_id: AccountId, key: Caller, web: Context,
                               days: Annotated[int, Query(ge=1, le=insight_service.MAX_DAYS)] = 90,
                               ) -> insight_service.Insights:
        await _account(web, account_id)
        return await insight_service.history(web.database, str(account_id), days=days)

    @routes.get("/feeds", response_model=list[FeedOut], summary="Every feed")
    async def list_feeds(key: Caller, web: Context) -> list[FeedOut]:
        return [_feed(f) for f in await feed_service.list_feeds(web.database)]

    @routes.get("/feeds/{slug}/posts", response_model=list[PostStateOut],
                summary="The feed's posts from hashtags and other profiles, with their moderation states")
    async def feed_posts(slug: Slug, key: Caller, web: Context,
                         status: Literal["pending", "approved", "rejected"] | None = None) -> list[PostStateOut]:
        items = await moderation.queue(web.database, slug, PostState(status) if status else None)
        return [PostStateOut(id=i.ig_media_id, source=i.source, username=i.username, caption=i.caption,
                             timestamp=i.timestamp, state=str(i.state), decided_by=i.decided_by,
                             decided_at=i.decided_at) for i in items]

    @routes.post("/feeds/{slug}/posts/{post_id}", response_model=DecisionOut,
                 summary="Approve or reject a post (a rejected one never shows; the feed is republished)")
    async def decide_post(slug: Slug, key: Caller, web: Context,
                          post_id: Annotated[str, Path(pattern=r"^[0-9]{1,32}$")],
                          decision: Annotated[Decision, Body()]) -> DecisionOut:
        changed = await moderation.decide(web.database, slug, [post_id], PostState(decision.state), by=actor(key))
        return DecisionOut(changed=changed)

    @routes.post("/feeds", response_model=FeedOut, status_code=201, summary="Make a feed")
    async def create_feed(feed: NewFeed, key: Caller, web: Context) -> FeedOut:
        change = feed.change()
        spec = feed_service.FeedSpec(title=feed.title, slug=feed.slug or feed_service.slug_for(feed.title),
                                     accounts=tuple(feed.accounts))
        for name in ("title", "slug", "accounts"):
            change.pop(name, None)
        return _feed(await feed_service.create(web.database, replace(spec, **change),  # type: ignore[arg-type]
                                               by=actor(key)))

    @routes.patch("/feeds/{slug}", response_model=FeedOut, summary="Change some of a feed's settings")
    async def edit_feed(slug: Slug, feed: FeedChange, key: Caller, web: Context) -> FeedOut:
        return _feed(await feed_service.edit(web.database, slug, feed.change(), by=actor(key)))

    @routes.get("/feeds/{slug}", response_model=FeedOut, summary="One feed")
    async def get_feed(slug: Slug, key: Caller, web: Context) -> FeedOut:
        return _feed(await feed_service.show(web.database, slug))

    @routes.delete("/feeds/{slug}", response_model=Accepted, summary="Delete a feed (its sources stay)")
    async def delete_feed(slug: Slug, key: Caller, web: Context) -> Accepted:
        await feed_service.delete(web.database, slug)
        return Accepted(status="deleted")

    @routes.post("/connect-links", response_model=ConnectLinkOut, status_code=201,
                 summary="A single-use link an account's owner opens to connect it, with no admin login")
    async def create_connect_link(link: ConnectLinkIn, request: Request, key: Caller, web: Context) -> ConnectLinkOut:
        made = await connect_links.create(
            web.database, custom_id=link.custom_id, provider=link.provider, return_url=link.return_url,
            expires_in=timedelta(seconds=link.expires_in), allowed_origins=request.app.state.return_origins,
            public_origin=request.app.state.public_origin, actor=actor(key))
        return ConnectLinkOut(id=made.id, url=made.url, custom_id=made.custom_id, provider=made.provider,
                              return_url=made.return_url, expires_at=made.expires_at)

    @routes.get("/events", response_model=EventPage, summary="What happened, newest first")
    async def list_events(key: Caller, web: Context,
                          cursor: Annotated[str | None, Query(max_length=40)] = None,
                          limit: Annotated[int, Query(ge=1, le=200)] = 50,
                          account_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None) -> EventPage:
        async with web.database.read() as session:
            found = await events.page(session, before=after_of(cursor), limit=limit + 1, account_id=account_id)
        shown = found[:limit]
        return EventPage(data=[_event(e) for e in shown],
                         next_cursor=cursor_of(shown[-1].id) if len(found) > limit else None)

    return routes


def _feed(f: feed_service.FeedInfo) -> FeedOut:
    return FeedOut(slug=f.slug, title=f.title, sources=f.sources or f.accounts, post_limit=f.post_limit,
                   media_types=f.media_types, moderation=str(f.moderation), block_words=f.block_words,
                   allowed_origins=f.allowed_origins, changed_at=f.changed_at, created_at=f.created_at)


def _event(e: Event) -> EventOut:
    return EventOut(id=e.id, at=e.at, kind=e.kind, message=e.message, account_id=e.account_id, actor=e.actor)
