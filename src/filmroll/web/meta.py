"""Meta's callbacks, on the public mount (the paths are settings; `filmroll doctor` prints the URLs to paste into
the App Dashboard): deauthorize, data deletion, the deletion's public status page, and Instagram's webhooks.

Both callbacks are form posts of one ``signed_request`` (``platform/signed_request.py`` verifies it: a bad one is
a 400 that changes nothing and does not say which part failed). The data-deletion answer is Meta's JSON,
``{"url": <status page>, "confirmation_code": <code>}``; the status page says pending or completed, with the date,
and nothing else (the code, 80 random bits, is its only key).

Webhooks: the subscription check (``GET``: ``hub.mode=subscribe``, ``hub.verify_token`` compared in constant time
with the setting, ``hub.challenge`` echoed) and deliveries (``POST``, ``X-Hub-Signature-256`` over the raw body with
either secret), stored once each and answered at once; the worker acts on them (``service/webhooks.py``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from filmroll.platform import signed_request, wire
from filmroll.secret import Secret
from filmroll.service import deletion
from filmroll.settings import Settings
from filmroll.store import deletions, webhooks
from filmroll.web.deps import FormFields, Web
from filmroll.web.rendering import Audience, page, problem, route_class

STATUS_PATH = "/meta/data-deletion/status"
_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{1,128}")  # echoed as is: nothing else is reflected


def router(settings: Settings) -> APIRouter:
    secrets = [Secret(settings.instagram.app_secret.get_secret_value()),
               Secret(settings.meta.app_secret.get_secret_value())]
    max_age = settings.meta.max_age_hours * 3600
    origin = settings.public_origin()

    def verified(form: dict[str, str]) -> signed_request.SignedRequest:
        return signed_request.verify(form.get("signed_request", ""), secrets, now=time.time(), max_age=max_age)

    async def deauthorize(web: Web, form: FormFields) -> Response:
        """The owner removed the app: the account is revoked and its token destroyed (repeats change nothing)."""
        await deletion.revoke(web.database, verified(form).user_id)
        return JSONResponse({}, headers={"Cache-Control": "no-store"})

    async def data_deletion(web: Web, form: FormFields) -> Response:
        """The owner asked for their data to be deleted: recorded now, deleted by the worker."""
        request = await deletion.request_deletion(web.database, scoped_user_id=verified(form).user_id)
        return JSONResponse({"url": f"{origin}{STATUS_PATH}/{request.code}", "confirmation_code": request.code},
                            headers={"Cache-Control": "no-store"})

    async def status(request: Request, web: Web, code: str) -> Response:
        async with web.database.read() as session:
            found = await deletions.get(session, code[:32].upper())
        return page(request, "deletion_status.html", 200 if found else 404, request_row=found)

    verify_token = settings.meta.webhook_verify_token.get_secret_value().encode()
    keys = [s.reveal().encode() for s in secrets if s.reveal()]

    async def webhook_check(request: Request) -> Response:
        params = request.query_params
        challenge, given = params.get("hub.challenge", ""), params.get("hub.verify_token", "").encode()
        if (params.get("hub.mode") != "subscribe" or not verify_token or not _CHALLENGE.fullmatch(challenge)
                or not hmac.compare_digest(given, verify_token)):
            return problem(request, 403, "Refused", "This is not a subscription check filmroll can confirm.",
                           "bad_verification")
        return PlainTextResponse(challenge, headers={"Cache-Control": "no-store"})

    async def webhook(request: Request, web: Web) -> Response:
        body = await request.body()
        header = request.headers.get("x-hub-signature-256", "")
        given = header.removeprefix("sha256=").encode("ascii", "replace")
        expected = [hmac.new(key, body, hashlib.sha256).hexdigest().encode() for key in keys]
        if not header.startswith("sha256=") or not any([hmac.compare_digest(given, e) for e in expected]):
            return problem(request, 403, "Refused", "The delivery's signature is not valid.", "invalid_signature")
        try:
            if wire.json_too_deep(body):
                raise ValueError("nested too deep")
            json.loads(body)
        except ValueError:
            return problem(request, 400, "Request refused", "The delivery is not JSON.", "bad_json")
        async with web.database.transaction() as session:
            await webhooks.store(session, body, web.database.clock.now())
        return JSONResponse({}, headers={"Cache-Control": "no-store"})  # at once: the worker does the rest

    routes = APIRouter(route_class=route_class(Audience.PUBLIC), include_in_schema=False)
    routes.add_api_route(settings.meta.webhook_path, webhook_check, methods=["GET"])
    routes.add_api_route(settings.meta.webhook_path, webhook, methods=["POST"])
    routes.add_api_route(settings.meta.deauthorize_path, deauthorize, methods=["POST"])
    routes.add_api_route(settings.meta.data_deletion_path, data_deletion, methods=["POST"])
    routes.add_api_route(STATUS_PATH + "/{code}", status, methods=["GET"])
    return routes
