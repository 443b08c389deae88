"""Every change of an account's status, through one function.

    needs_reauth   from a refresh, a probe or a sync that met a dead token (190), or an unreadable ciphertext
    active         on connect, reconnect or token import
    disconnected   by an operator (`filmroll disconnect`)
    revoked        by the owner (Meta's deauthorize callback)

:func:`transition` writes the status, its reason in plain words, its event and (for ``needs_reauth``) its alert, in
the caller's transaction, so they commit together or not at all (the alert table is an outbox). Leaving ``active``
stops syncing and retires every outstanding reconnect link; so does coming back, since the links' work is done. The
caller fences first (lease owner, token version): a worker that lost its lease changes nobody's status.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from filmroll.store import alerts, events, feeds, links, sources
from filmroll.store.tables import Account, Event
from filmroll.vocabulary import AccountStatus

log = logging.getLogger("filmroll.accounts")


async def transition(session: AsyncSession, account_id: int, status: AccountStatus, *, reason: str | None,
                     now: datetime, actor: str | None, event: str | None = None,
                     message: str | None = None) -> Event:
    """Move the account to ``status``; returns the event recorded (``event`` names its kind when the default,
    ``account.<status>``, is not precise enough, e.g. ``account.reconnected``)."""
    account = await session.get(Account, account_id)
    if account is None:
        raise LookupError(f"account {account_id} does not exist")
    account.status, account.status_reason, account.updated_at = status, reason, now
    if status != AccountStatus.ACTIVE:
        await sources.unschedule_own(session, account_id)  # a reconnection makes it due again
    await session.flush()
    await links.retire_for_account(session, account_id, now)
    await feeds.touch_accounts(session, [account_id], now)  # the feeds say the status, and may stop showing the posts
    recorded = await events.record(session, event or f"account.{status}", (message or reason or str(status))[:1000],
                                   at=now, account_id=account_id, actor=actor)
    if status == AccountStatus.NEEDS_REAUTH:
        await alerts.raise_alert(session, account_id=account_id, kind=alerts.NEEDS_REAUTH,
                                 reason=reason or "the token no longer works", now=now)
        log.warning("@%s (account %s) needs re-authorisation by its owner: %s", account.username, account_id,
                    reason)
    return recorded
