"""Instagram's wire format, parsed without I/O: every function here takes strings or decoded JSON.

Both shapes that occur in the wild are accepted (wire reference §9, see docs/sandbox.md): flat or ``{"data": [...]}``
token and profile responses, ``user_id`` as number or string, ``permissions`` as array or comma/space string,
``account_type`` in any case. Errors are classified on ``code``/``error_subcode`` (never on ``type``), from the Graph
envelope, the flat token-endpoint envelope, or legacy ``meta``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit, urlunsplit

from filmroll import errors
from filmroll.platform.models import (
    CallbackResult,
    Child,
    Insight,
    LongLivedGrant,
    Media,
    MediaPage,
    Profile,
    ShortLivedGrant,
    Usage,
)
from filmroll.secret import Secret

THROTTLE_CODES = frozenset({4, 17, 32, 341, 613, 80001, 80002, 80005, 80006, 80014})
TRANSIENT_CODES = frozenset({1, 2})
MAX_CALLBACK_VALUE = 2048
TOKEN_REASONS = {
    458: "the owner removed the app from their Instagram account",
    459: "the owner must log in to Instagram to confirm their account",
    460: "the owner changed their Instagram password, or Instagram reset the session for security",
    463: "the token expired (it was not refreshed within 60 days)",
    464: "the owner's Instagram account is not confirmed",
    467: "the token was revoked (the owner logged out or withdrew access)",
    493: "the app's data access expired (the owner has not signed in through Facebook for 90 days)",
}


# Decoded JSON objects are always plain dicts: the checks below say ``dict``, not ``Mapping``, because an ABC check
# costs ten times more and runs for every item of every page a sync reads.


def _unwrap(body: Any) -> Mapping[str, Any]:
    """Accept ``{...}`` and ``{"data": [{...}]}``."""
    if isinstance(body, dict) and isinstance(body.get("data"), list) and len(body) <= 2:
        if len(body["data"]) != 1 or not isinstance(body["data"][0], dict):
            raise errors.MalformedResponseError("Instagram answered with an empty or ambiguous data list")
        return body["data"][0]
    if not isinstance(body, dict):
        raise errors.MalformedResponseError("Instagram's answer is not a JSON object")
    return body


def _id(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
        raise errors.MalformedResponseError(f"Instagram's {name} is not a numeric id")
    return str(value)


def _token(value: Any) -> Secret:
    if not isinstance(value, str) or not value.strip() or len(value) > 4096 or any(c.isspace() for c in value):
        raise errors.MalformedResponseError("Instagram answered without a usable access token")
    return Secret(value)


def _permissions(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(p for p in re.split(r"[,\s]+", value) if p)
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return tuple(value)
    raise errors.MalformedResponseError("Instagram's permissions are neither a list nor a string")


def parse_access_token(body: Any) -> Secret:
    """The token of an answer that carries nothing else filmroll needs (Facebook's code exchange)."""
    return _token(_unwrap(body).get("access_token"))


def parse_short_lived(body: Any) -> ShortLivedGrant:
    grant = _unwrap(body)
    return ShortLivedGrant(_token(grant.get("access_token")), _id(grant.get("user_id"), "user_id"),
                           _permissions(grant.get("permissions")))


def parse_long_lived(body: Any, requested_at: datetime) -> LongLivedGrant:
    grant = _unwrap(body)
    expires_in = grant.get("expires_in")
    if isinstance(expires_in, str) and expires_in.isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int) or not 0 < expires_in <= 10 * 365 * 86_400:
        raise errors.MalformedResponseError("Instagram answered without a usable expires_in")
    # Counted from when the request was sent, so a slow answer can only make us refresh early, never late.
    return LongLivedGrant(_token(grant.get("access_token")), expires_in, requested_at + timedelta(seconds=expires_in))


def _int(value: Any) -> int | None:
    return value if type(value) is int else None  # not bool, which JSON's true/false decode to


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def parse_timestamp(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        # Instagram's "2024-05-01T12:00:00+0000"; fromisoformat reads it (and "Z") ~10x faster than strptime.
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None


def parse_profile(body: Any, usage: Usage | None = None) -> Profile:
    node = _unwrap(body)
    account_type = _str(node.get("account_type"))
    profile = Profile(
        app_scoped_id=_str(node.get("id")) or (str(node["id"]) if _int(node.get("id")) is not None else None),
        user_id=_str(node.get("user_id")) or (str(node["user_id"]) if _int(node.get("user_id")) else None),
        username=_str(node.get("username")),
        name=_str(node.get("name")),
        account_type=account_type.upper() if account_type else None,
        profile_picture_url=_str(node.get("profile_picture_url")),
        followers_count=_int(node.get("followers_count")),
        follows_count=_int(node.get("follows_count")),
        media_count=_int(node.get("media_count")),
        usage=usage or Usage(),
    )
    if profile.user_id is None and profile.app_scoped_id is None:
        raise errors.MalformedResponseError("Instagram's profile carries no id")
    return profile


def parse_profile_and_media(body: Any, usage: Usage | None = None) -> tuple[Profile, MediaPage]:
    """``/me`` with the media edge expanded: the edge sits in the profile object, flat or in its ``data`` wrapper."""
    profile = parse_profile(body, usage)
    page = _unwrap(body).get("media")
    return profile, parse_media_page(page if page is not None else {"data": []}, usage)


def _child(item: Mapping[str, Any]) -> Child:
    return Child(id=_id(item.get("id"), "child id"), media_type=_str(item.get("media_type")),
                 media_url=_str(item.get("media_url")), thumbnail_url=_str(item.get("thumbnail_url")),
                 timestamp=parse_timestamp(item.get("timestamp")))


def parse_media(item: Any) -> Media:
    if not isinstance(item, dict):
        raise errors.MalformedResponseError("a media item is not a JSON object")
    children = item.get("children")
    child_items = children.get("data", []) if isinstance(children, dict) else []
    return Media(
        id=_id(item.get("id"), "media id"),
        media_type=_str(item.get("media_type")),
        media_product_type=_str(item.get("media_product_type")),
        caption=_str(item.get("caption")),
        media_url=_str(item.get("media_url")),
        thumbnail_url=_str(item.get("thumbnail_url")),
        permalink=_str(item.get("permalink")),
        shortcode=_str(item.get("shortcode")),
        timestamp=parse_timestamp(item.get("timestamp")),
        like_count=_int(item.get("like_count")),
        comments_count=_int(item.get("comments_count")),
        alt_text=_str(item.get("alt_text")),
        children=tuple(_child(c) for c in child_items if isinstance(c, dict)),
    )


def parse_media_page(body: Any, usage: Usage | None = None) -> MediaPage:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise errors.MalformedResponseError("Instagram's media list has no data array")
    paging: dict[str, Any] = body["paging"] if isinstance(body.get("paging"), dict) else {}
    cursors: dict[str, Any] = paging["cursors"] if isinstance(paging.get("cursors"), dict) else {}
    return MediaPage(tuple(body["data"]), _str(paging.get("next")), _str(cursors.get("after")), usage or Usage())


def parse_insights(body: Any) -> tuple[Insight, ...]:
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise errors.MalformedResponseError("Instagram's insights have no data array")
    found = []
    for item in body["data"]:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        total = item.get("total_value")
        values = [v for v in item.get("values", []) if isinstance(v, dict)]
        value = _int(total.get("value")) if isinstance(total, dict) else None
        if value is None and len(values) == 1 and "end_time" not in values[0]:
            value = _int(values[0].get("value"))
        series = tuple((parse_timestamp(v.get("end_time")), v["value"]) for v in values
                       if "end_time" in v and _int(v.get("value")) is not None)
        found.append(Insight(item["name"], _str(item.get("period")) or "", value, series))
    return tuple(found)


def strip_access_token(url: str) -> str:
    """A paging URL without its embedded token (we send the token in a header instead)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "access_token"]
    return urlunsplit(parts._replace(query=urlencode(query)))


# ----- text ---------------------------------------------------------------------------------------------------

# JSON may escape what is not Unicode text: a lone surrogate (\ud800) and NUL are valid JSON, and no database stores
# them (SQLite's driver refuses the first, PostgreSQL the second).
_UNSTORABLE = re.compile(rb"\\u(?:[dD][89abAB][0-9a-fA-F]{2}|[dD][c-fC-F][0-9a-fA-F]{2}|0000)")


def parse_json(body: bytes) -> Any:
    """An answer's JSON, every string in it storable: lone surrogates become U+FFFD, NUL characters are dropped.
    The walk runs only for a body that escapes one (a caption from Instagram once stopped an account's syncs)."""
    data = json.loads(body)
    return valid_text(data) if _UNSTORABLE.search(body) else data


def valid_text(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace").replace("\x00", "")
    if isinstance(value, list):
        return [valid_text(v) for v in value]
    if isinstance(value, dict):
        return {valid_text(k): valid_text(v) for k, v in value.items()}
    return value


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
MAX_JSON_DEPTH = 64  # far deeper than any answer or callback of Meta's; the parser recurses, so deeper is refused


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether a JSON text nests arrays and objects deeper than ``limit`` (strings skipped): asked before parsing
    what anyone can send (a signed webhook 3 000 deep was a RecursionError, a 500 that Meta retries)."""
    depth = deepest = 0
    for byte in _STRING.sub(b"", body).translate(None, delete=_NOT_BRACKETS):
        depth += 1 if byte in b"[{" else -1
        deepest = max(deepest, depth)
        if deepest > limit:
            return True
    return False


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


# ----- rate-limit headers -------------------------------------------------------------------------------------


def _json_header(headers: Mapping[str, str], name: str) -> Any:
    raw = headers.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def parse_usage(headers: Mapping[str, str]) -> Usage:
    account_percent, regain = None, 0
    buc = _json_header(headers, "X-Business-Use-Case-Usage")
    if isinstance(buc, dict):
        for entries in buc.values():
            for entry in entries if isinstance(entries, list) else []:
                if isinstance(entry, dict):
                    percent = max(_int(entry.get(k)) or 0 for k in ("call_count", "total_cputime", "total_time"))
                    account_percent = max(account_percent or 0, percent)
                    regain = max(regain, 60 * (_int(entry.get("estimated_time_to_regain_access")) or 0))
    app = _json_header(headers, "X-App-Usage")
    app_percent = None
    if isinstance(app, dict):
        app_percent = max(_int(app.get(k)) or 0 for k in ("call_count", "total_cputime", "total_time"))
    return Usage(account_percent, app_percent, regain)


# ----- errors -------------------------------------------------------------------------------------------------


def _retry_after(headers: Mapping[str, str], usage: Usage) -> float:
    header = headers.get("Retry-After", "")
    if header.isdigit():
        return float(header)
    return float(usage.regain_seconds or 60)


_FLAT_CODE_MESSAGES = ("matching code was not found", "authorization code has been used", "code has expired",
                       "invalid authorization code", "error validating verification code", "redirect_uri")
_FLAT_APP_MESSAGES = ("invalid platform app", "client secret", "client_id", "insufficient developer role")


def error_from_response(status: int, headers: Mapping[str, str], body: bytes) -> errors.InstagramError:
    """The right error for a non-2xx answer. Messages are Instagram's, never our URL (it may hold a token)."""
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    usage = parse_usage(headers)
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        return _graph_error(data["error"], status, headers, usage)
    if isinstance(data, dict) and "error_message" in data:
        return _flat_error(str(data.get("error_message"))[:500], status)
    if isinstance(data, dict) and isinstance(data.get("meta"), dict) and "error_message" in data["meta"]:
        return _flat_error(str(data["meta"]["error_message"])[:500], status)
    if status == 429:
        return errors.RateLimitedError("Instagram answered HTTP 429 Too Many Requests", status=status,
                                       retry_after=_retry_after(headers, usage))
    if status >= 500:
        return errors.TransportError(f"Instagram answered HTTP {status} without an error body", status=status)
    return errors.MalformedResponseError(f"Instagram answered HTTP {status} with a body filmroll does not understand",
                                         status=status)


def _flat_error(message: str, status: int) -> errors.InstagramError:
    lowered = message.lower()
    if "unsupported request - method type" in lowered:
        return errors.MethodFlipError(f"Instagram: {message}", status=status)
    if any(m in lowered for m in _FLAT_CODE_MESSAGES):
        return errors.CodeRejectedError(f"Instagram rejected the authorization code: {message}. Start the "
                                        "connection again.", status=status)
    if any(m in lowered for m in _FLAT_APP_MESSAGES):
        return errors.AppCredentialsError(
            f"Instagram rejected the app credentials: {message.rstrip('.')}. Use the Instagram app ID and secret "
            "from App Dashboard → Instagram → API setup with Instagram login, not the Meta app ID.", status=status)
    return errors.RequestError(f"Instagram: {message}", status=status)


class _ErrorFacts(TypedDict):
    code: int | None
    subcode: int | None
    status: int | None
    fbtrace_id: str | None


def _graph_error(error: Mapping[str, Any], status: int, headers: Mapping[str, str],
                 usage: Usage) -> errors.InstagramError:
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    message = str(error.get("message", ""))[:500]
    trace = _str(error.get("fbtrace_id"))
    meta: _ErrorFacts = {"code": code, "subcode": subcode, "status": status, "fbtrace_id": trace}
    if code == 190 or code == 102:
        reason = TOKEN_REASONS.get(subcode or 0, "Instagram no longer accepts the token")
        return errors.TokenInvalidError(f"Reconnect the account: {reason}.", reason=reason, **meta)
    if code == 18:
        return errors.HashtagQuotaError("Instagram refused: the account has queried 30 unique hashtags within 7 "
                                        f"days ({message})", retry_after=3600.0, **meta)
    if code in THROTTLE_CODES:
        return errors.RateLimitedError(f"Instagram is throttling calls ({message}); waiting before retrying.",
                                       retry_after=_retry_after(headers, usage), **meta)
    if code in TRANSIENT_CODES and "client secret" in message.lower():
        return errors.AppCredentialsError("Instagram rejected the app secret: check the Instagram app secret "
                                          "(not the Meta app secret).", **meta)
    if code in TRANSIENT_CODES or status >= 500:
        return errors.TransientError(f"Instagram had a temporary problem ({message}); retrying later.", **meta)
    if code == 10 or (code is not None and 200 <= code <= 299):
        return errors.PermissionMissingError(
            f"Instagram refused: {message}. The token lacks a permission; for insights, reconnect with the "
            "instagram_business_manage_insights scope.", **meta)
    if code == 100 and "unsupported request - method type" in message.lower():
        return errors.MethodFlipError(f"Instagram: {message}", **meta)
    if code == 100 and subcode == 33:
        return errors.NotFoundError("Instagram: no such object, or this token cannot see it.", **meta)
    if code == 24:
        return errors.HashtagRefusedError(f"Instagram does not show this hashtag's posts ({message})", **meta)
    if code == 110:
        return errors.ProfileNotFoundError("Business Discovery finds no professional account of that name: it is "
                                           "unknown, a personal account, or age-gated", **meta)
    if code == 100 and "24 hours" in message:
        return errors.RefreshTooEarlyError(**meta)
    return errors.RequestError(f"Instagram refused the request: {message}", **meta)


# ----- the OAuth redirect ---------------------------------------------------------------------------------------


def parse_callback(query: str) -> CallbackResult:
    """Read ``code``/``state`` (or the denial) from the redirect's query string or whole URL.

    Strict on purpose: a parameter given twice, an oversized value, invalid percent-encoding or both a code and
    an error make the whole redirect unacceptable.
    """
    if "?" in query or query.startswith(("http://", "https://")):
        query = urlsplit(query).query
    query = query.split("#", 1)[0]  # the "#_" Instagram appends, if it survived
    try:
        params = parse_qs(query, keep_blank_values=True, strict_parsing=False, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise errors.CallbackError("The redirect's parameters are not valid UTF-8.", code="bad_encoding") from None
    if re.search(r"%(?![0-9A-Fa-f]{2})", query):
        raise errors.CallbackError("The redirect's parameters are not valid percent-encoding.", code="bad_encoding")
    for name, values in params.items():
        if len(values) > 1:
            raise errors.CallbackError(f"The redirect carries {name!r} more than once.", code="duplicate_parameter")
        if len(values[0]) > MAX_CALLBACK_VALUE:
            raise errors.CallbackError(f"The redirect's {name!r} is too long.", code="oversized_parameter")
    value = {k: v[0] for k, v in params.items()}
    if "error" in value:
        if "code" in value:
            raise errors.CallbackError("The redirect carries both a code and an error.", code="code_and_error")
        if value["error"] == "access_denied":
            raise errors.AuthorizationDeniedError(
                "The account owner pressed Cancel on Instagram, so nothing was connected.", code="access_denied")
        description = value.get("error_description", "")[:200]
        raise errors.CallbackError(f"Instagram reported an error: {value['error'][:60]} {description}".strip(),
                                   code="provider_error")
    code = value.get("code", "").removesuffix("#_").strip()
    if not code:
        raise errors.CallbackError("The redirect carries no authorization code.", code="missing_code")
    return CallbackResult(Secret(code), value.get("state"))
