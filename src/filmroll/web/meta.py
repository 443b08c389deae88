"""Meta's callbacks, on the public mount (the paths are settings; `filmroll doctor` prints the URLs to paste into
the App Dashboard): deauthorize, data deletion, and the deletion's public status page.

Both callbacks are form posts of one ``signed_request`` (``platform/signed_request.py`` verifies it: a bad one is
a 400 that changes nothing and does not say which part failed). The data-deletion answer is Meta's JSON,
``{"url": <status page>, "confirmation_code": <code>}``; the status page says pending or completed, with the date,
and nothing else (the code, 80 random bits, is its only key).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from filmroll.platform import signed_request
from filmroll.secret import Secret
from filmroll.service import deletion
from filmroll.settings import Settings
from filmroll.store import deletions
from filmroll.web.deps import FormFields, Web
from filmroll.web.rendering import Audience, page, route_class

STATUS_PATH = "/meta/data-deletion/status"


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

    routes = APIRouter(route_class=route_class(Audience.PUBLIC), include_in_schema=False)
    routes.add_api_route(settings.meta.deauthorize_path, deauthorize, methods=["POST"])
    routes.add_api_route(settings.meta.data_deletion_path, data_deletion, methods=["POST"])
    routes.add_api_route(STATUS_PATH + "/{code}", status, methods=["GET"])
    return routes
