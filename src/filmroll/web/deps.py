"""What handlers ask for, as FastAPI dependencies: the web context, the signed-in admin, a bounded form, a form an
admin posted from one of our pages (signed in and CSRF-checked). Handlers name them in their signature
(``admin: CurrentAdmin``) instead of reading ``request.app.state`` and checking by hand."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Path, Request
from fastapi.templating import Jinja2Templates

from filmroll import errors
from filmroll.runtime import Runtime
from filmroll.service.connect import Connector
from filmroll.store.database import Database
from filmroll.store.tables import Admin
from filmroll.web import security

if TYPE_CHECKING:
    from filmroll.web.feeds import Caching, FeedCache
    from filmroll.web.public import OnDemand
    from filmroll.web.throttle import Network


@dataclass
class WebContext:
    runtime: Runtime
    connector: Connector
    auth: security.AdminAuth
    csrf: security.Csrf
    templates: Jinja2Templates
    public_url: str | None
    authorize_origin: str
    feeds: FeedCache
    caching: Caching
    trusted_proxies: list[Network]
    renders: OnDemand  # variants rendered on first request (web/public.py)

    @property
    def database(self) -> Database:
        return self.runtime.database


def web_context(request: Request) -> WebContext:
    context: WebContext = request.app.state.web
    return context


Web = Annotated[WebContext, Depends(web_context)]

# A row's id in a path: what the database can hold (a larger number names no row: 404, not an overflow's 500).
RowId = Annotated[int, Path(ge=1, le=2**63 - 1)]


class SignInRequired(Exception):
    """The page is for signed-in admins: the browser is sent to the sign-in page."""


class FormRejected(Exception):
    """A button press that did not come from one of our pages (or from an expired one): answered 403."""


def secure(request: Request, web: WebContext) -> bool:
    return security.is_secure(request, web.public_url)


def session_id(request: Request, web: WebContext) -> str | None:
    return request.cookies.get(security.cookie_names(secure(request, web))[0])


async def optional_admin(request: Request, web: Web) -> Admin | None:
    return await web.auth.current(session_id(request, web))


OptionalAdmin = Annotated[Admin | None, Depends(optional_admin)]


async def current_admin(admin: OptionalAdmin) -> Admin:
    if admin is None:
        raise SignInRequired
    return admin


CurrentAdmin = Annotated[Admin, Depends(current_admin)]


async def _read_form(request: Request, *, max_fields: int) -> list[tuple[str, str]]:
    # Its size is bounded at the edge (web/limits.py, per route); read whole first, so a refusal there is not
    # taken for a broken form below.
    await request.body()
    try:
        fields = await request.form(max_files=0, max_fields=max_fields)
    except Exception:  # python-multipart raises several unrelated types for a broken body
        raise errors.CallbackError("The form could not be read.", code="bad_form") from None
    return [(k, v) for k, v in fields.multi_items() if isinstance(v, str)]


async def form(request: Request) -> dict[str, str]:
    """The form's text fields (the last of a repeated name)."""
    return dict(await _read_form(request, max_fields=20))


FormFields = Annotated[dict[str, str], Depends(form)]


@dataclass
class AdminForm:
    admin: Admin
    session_id: str
    fields: dict[str, str]


async def admin_form(request: Request, web: Web, admin: OptionalAdmin, fields: FormFields) -> AdminForm:
    """A form an admin posted from a page of ours: signed in, and the CSRF token matches their session."""
    sid = session_id(request, web)
    if admin is None or sid is None:
        raise SignInRequired
    if not web.csrf.ok(sid, fields.get("csrf_token")):
        raise FormRejected
    return AdminForm(admin, sid, fields)


CheckedForm = Annotated[AdminForm, Depends(admin_form)]


@dataclass
class AdminEditorForm(AdminForm):
    """An admin's form whose names repeat (a checkbox per account): ``values`` has every value of every name."""

    values: dict[str, list[str]]


async def admin_editor_form(request: Request, web: Web, admin: OptionalAdmin) -> AdminEditorForm:
    sid = session_id(request, web)
    if admin is None or sid is None:
        raise SignInRequired
    items = await _read_form(request, max_fields=5_000)
    fields = dict(items)
    if not web.csrf.ok(sid, fields.get("csrf_token")):
        raise FormRejected
    values: dict[str, list[str]] = {}
    for name, value in items:
        values.setdefault(name, []).append(value)
    return AdminEditorForm(admin, sid, fields, values)


CheckedEditorForm = Annotated[AdminEditorForm, Depends(admin_editor_form)]
