"""Routes beside the documented ones: only the deliberate faults add any.

The faithful server answers exactly the documented paths and methods (``app.py``); any other
path is 404 and any other method 405, and a trailing slash is not redirected. A real server
often grows more: a route kept from an older API, a framework's method override, an
undocumented ``GET`` of one token. Each fault below adds one such route, with the defect
that makes it dangerous; ``app.create_app`` appends :func:`routes` after the documented ones,
so a documented path and method always reach its own handler first. The routes see the app
through :class:`~sts_reference.token_calls.TokenCalls` (the calls and the state they share),
never through ``app.py``, which imports this module.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .api_common import _Refusal
from .token_calls import TokenCalls

TOKENS = "/api/security/tokens"
ONE_TOKEN = TOKENS + "/{token_id}"
#: the method-override spellings frameworks read (a header, or a query parameter of a POST)
OVERRIDE_HEADERS = ("x-http-method-override", "x-method-override")
OVERRIDE_PARAMETER = "_method"


def routes(api: TokenCalls) -> list[Route]:
    """The extra routes the server's faults add (none for the faithful server)."""
    faults = api.faults
    extra: list[Route] = []
    if faults.on("trailing-slash-skips-auth"):
        # a route registered for the slash form of the list, without the auth guard of the other
        extra.append(Route(TOKENS + "/", _unguarded_list(api), methods=["GET"]))
    if faults.on("get-token-by-id-returns-secret"):
        extra.append(Route(ONE_TOKEN, _get_one(api), methods=["GET"]))
    if faults.on("method-override-skips-role-check"):
        extra.append(Route(ONE_TOKEN, _overridden_delete(api), methods=["POST"]))
    if faults.on("options-500"):
        extra += [Route(path, _options_crash, methods=["OPTIONS"]) for path in (TOKENS, ONE_TOKEN)]
    return extra


def _unguarded_list(api: TokenCalls) -> Any:
    async def handle(request: Request) -> Response:
        return api.listing()  # trailing-slash-skips-auth: no authorize_manager here

    return handle


def _get_one(api: TokenCalls) -> Any:
    """get-token-by-id-returns-secret: one token, for a manager, with the secret a debug cache kept."""

    async def handle(request: Request) -> Response:
        try:
            api.authorize_manager(request.scope, "list")
            token_id = api._parse_token_id(request.path_params["token_id"])
            record = api.store.get(token_id)
            if record is None:
                raise _Refusal(404, f"no service token with id {token_id}")
        except _Refusal as refusal:
            return api.error(refusal, request.scope)
        body: dict[str, Any] = {"id": record.id, "name": record.name, "roles": list(record.roles)}
        if record.id in api._secrets:
            body["token"] = api._secrets[record.id]
        return JSONResponse(body)

    return handle


def _overridden_delete(api: TokenCalls) -> Any:
    """method-override-skips-role-check: a POST that asks to be a DELETE is one, once authenticated;
    the role check hangs on the DELETE route, which this request never took."""

    async def handle(request: Request) -> Response:
        wanted = [request.headers.get(h, "") for h in OVERRIDE_HEADERS] + [
            request.query_params.get(OVERRIDE_PARAMETER, "")
        ]
        if "DELETE" not in (w.strip().upper() for w in wanted):
            return api.error(_Refusal(405, "method not allowed"), request.scope)
        try:
            api.authenticate(request.scope, "delete")
            token_id = api._parse_token_id(request.path_params["token_id"])
            if not api.store.delete(token_id):
                raise _Refusal(404, f"no service token with id {token_id}")
        except _Refusal as refusal:
            return api.error(refusal, request.scope)
        api._forget([token_id])
        return Response(status_code=204)

    return handle


async def _options_crash(request: Request) -> Response:
    """options-500: a CORS handler that reads an Origin header every request is assumed to carry."""
    origin = request.headers["origin"]  # KeyError without one: a 500
    return Response(status_code=204, headers={"Access-Control-Allow-Origin": origin})
