"""The baseline for bench/sandbox_load.py: the same server stack answering a constant JSON body."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

BODY = b'{"id":"27000000000000001","username":"golden_bakery"}'


async def constant(request):
    return Response(BODY, media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", constant)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=False, log_level="warning",
                http="httptools", backlog=4096)
