"""Source kinds: how the worker syncs each kind of source (``sources.kind``).

    account   service/sync.py: Syncer                  a connected account's own profile and posts
    hashtag   service/hashtags.py: HashtagSyncer       a tag's public posts, kept past Instagram's 24 hours
    profile   service/discovery.py: ProfileSyncer      another professional account (Business Discovery)

A kind is a name and a factory of its syncer, made from the worker's parts (:class:`SyncParts`); the syncer takes a
claim on one source of its kind (``store.sources.SyncClaim``), writes its posts with ``store/media.py`` under the
source's id (``file_store.mirror_due`` when there is something to mirror) and records the outcome with
``store.sources.synced`` while its lease holds. The mirror is one for every kind: it stores the pictures the
source's rows name, and collects them. A runtime holds its kinds (:class:`SourceKinds`, ``Runtime.kinds``); a
worker claims only sources of the kinds it knows, so a kind one process does not know is left to one that does.

Adding a kind: a :class:`KindSpec` and ``runtime.kinds.with_kind(spec)``; nothing else changes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from filmroll.errors import ConfigError
from filmroll.platform import Clients
from filmroll.service.discovery import ProfileSyncer
from filmroll.service.hashtags import HashtagSyncer
from filmroll.service.policy import SyncPolicy
from filmroll.service.sync import Syncer
from filmroll.store.batch import WriteBatch
from filmroll.store.database import Database
from filmroll.store.sources import SyncClaim
from filmroll.vault import Vault
from filmroll.vocabulary import Outcome, SourceKind


class SourceSyncer(Protocol):
    async def run(self, claim: SyncClaim, *, full: bool = False) -> Outcome: ...


@dataclass(frozen=True)
class SyncParts:
    """What a worker gives each kind's syncer: the same database, vault, provider clients and write batch."""

    database: Database
    vault: Vault
    clients: Clients
    owner: str
    policy: SyncPolicy
    batch: WriteBatch | None = None
    rng: random.Random | None = None
    hashtag_poll: timedelta = timedelta(minutes=15)  # FILMROLL_HASHTAGS__RECENT_POLL_MINUTES


@dataclass(frozen=True)
class KindSpec:
    name: str  # the sources.kind value
    syncer: Callable[[SyncParts], SourceSyncer]


def _account_syncer(parts: SyncParts) -> SourceSyncer:
    return Syncer(parts.database, parts.vault, parts.clients, owner=parts.owner, policy=parts.policy,
                  batch=parts.batch, rng=parts.rng)


def _hashtag_syncer(parts: SyncParts) -> SourceSyncer:
    return HashtagSyncer(parts.database, parts.vault, parts.clients, owner=parts.owner,
                         recent_poll=parts.hashtag_poll, rng=parts.rng, batch=parts.batch)


def _profile_syncer(parts: SyncParts) -> SourceSyncer:
    return ProfileSyncer(parts.database, parts.vault, parts.clients, owner=parts.owner, interval=parts.policy.interval,
                         full_interval=parts.policy.full_interval, rng=parts.rng, batch=parts.batch)


class SourceKinds:
    """The kinds a runtime syncs, by name."""

    def __init__(self, specs: Iterable[KindSpec]) -> None:
        self._specs = {spec.name: spec for spec in specs}

    @classmethod
    def builtin(cls) -> SourceKinds:
        return cls([KindSpec(SourceKind.ACCOUNT, _account_syncer), KindSpec(SourceKind.HASHTAG, _hashtag_syncer),
                    KindSpec(SourceKind.PROFILE, _profile_syncer)])

    def with_kind(self, spec: KindSpec) -> SourceKinds:
        """These kinds and ``spec`` (a kind of the same name is replaced)."""
        return SourceKinds([*self._specs.values(), spec])

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._specs)

    def syncers(self, parts: SyncParts) -> SourceSyncers:
        return SourceSyncers({name: spec.syncer(parts) for name, spec in self._specs.items()})


class SourceSyncers:
    """One syncer per kind: the worker's sync job hands each claim to its kind's."""

    def __init__(self, by_kind: dict[str, SourceSyncer]) -> None:
        self.by_kind = by_kind

    async def run(self, claim: SyncClaim, *, full: bool = False) -> Outcome:
        syncer = self.by_kind.get(claim.kind)
        if syncer is None:  # the claim asked only for these kinds: a kind removed since is a mistake of ours
            raise ConfigError(f"no syncer for sources of kind {claim.kind!r}")
        return await syncer.run(claim, full=full)
