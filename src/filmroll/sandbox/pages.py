"""Facebook users and their Pages: how Facebook Login finds Instagram professional accounts.

A sandbox Facebook user is known by the Instagram account they sign in with (account *i* is also Facebook user *i*,
same password). They manage a Page linked to that Instagram account, a second Page linked to none (``/me/accounts``
lists Pages without an Instagram account too, and a client must pass over them), and any Page the control API links
to another account (an agency's manager with several clients). Ids are pure functions of the seed and index.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from filmroll.sandbox.ids import mix64
from filmroll.sandbox.world import World

FB_USER_PREFIX = 10_000_000_000_000
PAGE_PREFIX = 100_000_000_000_000
PAGE_TASKS = ("ANALYZE", "ADVERTISE", "MODERATE", "CREATE_CONTENT", "MANAGE")


@dataclass(frozen=True, slots=True)
class Page:
    id: str
    name: str
    ig_account: int | None  # the index of the linked Instagram professional account


@dataclass
class Pages:
    seed: int
    world: World
    linked: dict[int, list[int]] = field(default_factory=dict)  # Facebook user -> further IG accounts, in order

    def user_id(self, user: int) -> str:
        return str(FB_USER_PREFIX + mix64(self.seed, user, 0xFB) % FB_USER_PREFIX)

    def _page_id(self, user: int, ig_account: int | None, n: int) -> str:
        return str(PAGE_PREFIX + mix64(self.seed, user, ig_account if ig_account is not None else -1, n)
                   % (9 * PAGE_PREFIX))

    def of(self, user: int) -> list[Page]:
        account = self.world.account(user)
        if account is None:
            return []
        pages = [Page(self._page_id(user, user, 0), account.name, user),
                 Page(self._page_id(user, None, 1), f"{account.name} Community", None)]
        for n, other in enumerate(self.linked.get(user, ()), start=2):
            linked = self.world.account(other)
            if linked is not None:
                pages.append(Page(self._page_id(user, other, n), linked.name, other))
        return pages

    def manages(self, user: int, ig_account: int) -> bool:
        return any(page.ig_account == ig_account for page in self.of(user))

    def link(self, user: int, ig_account: int) -> None:
        if ig_account != user and ig_account not in self.linked.setdefault(user, []):
            self.linked[user].append(ig_account)
