"""Which accounts' posts a feed shows, by the account's status (service/feed_documents.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from filmroll.service.feed_documents import DocumentSettings, _shows_posts
from filmroll.store.tables import Account

NOW = datetime(2026, 12, 3, tzinfo=UTC)


def _settings(**change: object) -> DocumentSettings:
    return DocumentSettings(**{"widths": (320,), "formats": ("webp",), "dead_account_days": 90, "max_posts": 100,
                               **change})  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "stale_days", "revoked_posts", "shown"), [
    ("active", None, True, True),
    ("needs_reauth", 10, True, True),
    ("needs_reauth", 91, True, False),
    ("disconnected", None, True, False),
    ("revoked", None, True, True),  # last good posts, with the status, until retention deletes the account
    ("revoked", None, False, False),
])
def test_which_accounts_show_their_posts(status, stale_days, revoked_posts, shown):
    stale = NOW - timedelta(days=stale_days) if stale_days is not None else None
    account = Account(status=status, stale_since=stale, updated_at=NOW - timedelta(days=1))
    assert _shows_posts(account, NOW, _settings(revoked_posts=revoked_posts)) is shown
