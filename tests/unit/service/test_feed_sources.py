"""Which sources' posts a feed shows, by the status of their account (service/feed_documents.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from filmroll.service.feed_documents import DocumentSettings, _shows_posts
from filmroll.store.feeds import FeedSourceRow
from filmroll.store.tables import Account, Source

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
    account = Account(id=1, status=status, updated_at=NOW - timedelta(days=1))
    source = Source(id=1, kind="account", account_id=1, stale_since=stale)
    assert _shows_posts(FeedSourceRow(source, account), NOW, _settings(revoked_posts=revoked_posts)) is shown


def test_a_source_that_reads_through_no_account_always_shows_its_posts():
    source = Source(id=2, kind="hashtag", account_id=None, query="bread")
    assert _shows_posts(FeedSourceRow(source, None), NOW, _settings()) is True
