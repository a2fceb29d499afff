"""The `/api/v1` framework: routes declared with the pydantic models that validate their
query, body and response, and the OpenAPI 3.1 document generated from those same models.

::

    routes = Routes()

    @routes.get("/api/v1/referrals/{id}", response=ReferralOut, query=ShowQuery)
    async def show(call: Call[ShowQuery, None]) -> ReferralOut:
        ...  # call.params["id"], call.query.unmask, call.caller, call.state

Every route needs a bearer token (`bridge.admin.auth`); `role="operate"` routes refuse
`read` tokens with 403. A route that changes something (`POST`) and any read with
`unmask=true` is written to the audit log with its outcome. Every error is an RFC 9457
problem document (`application/problem+json`): raise `ApiProblem` in a handler; a query
or body that does not validate answers 400 naming each field, never echoing its value.

Errors (all `ApiProblem`)::

    400 invalid request (query, body, cursor)   403 forbidden (role, unmask)
    401 unauthorized (no token, wrong token)    404 not found     409 conflict
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from sqlalchemy.exc import DBAPIError

from bridge.admin.auth import Caller, authenticate
from bridge.admin.state import STATE, AdminState
from bridge.store import AuditIn

log = structlog.get_logger(__name__)

Role = Literal["read", "operate"]
Q = TypeVar("Q", bound=BaseModel | None)
B = TypeVar("B", bound=BaseModel | None)
PROBLEM = "application/problem+json"
PROBLEM_BASE = "urn:hotline-bridge:problem:"


class Problem(BaseModel):
    """An RFC 9457 problem document; `errors` lists the fields of an invalid request."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


class FieldError(BaseModel):
    """One invalid field: where (`query.limit`, `body.ids.0`) and what is wrong."""

    loc: str
    msg: str


Problem.model_rebuild()


class ApiProblem(Exception):
    """Raise in a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        kind: str | None = None,
        errors: list[FieldError] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title)
        self.status, self.title, self.detail = status, title, detail
        self.kind, self.errors, self.headers = kind, errors, dict(headers or {})

    def response(self) -> web.Response:
        body = Problem(
            type=PROBLEM_BASE + self.kind if self.kind else "about:blank",
            title=self.title,
            status=self.status,
            detail=self.detail,
            errors=self.errors,
        )
        return web.json_response(
            body.model_dump(mode="json", exclude_none=True),
            status=self.status,
            content_type=PROBLEM,
            headers=self.headers,
        )


def not_found(what: str) -> ApiProblem:
    return ApiProblem(404, "not found", f"no {what}", kind="not-found")


# pagination ---------------------------------------------------------------------------


def encode_cursor(key: Iterable[Any]) -> str:
    """An opaque cursor for the key of the last item of a page."""
    raw = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, arity: int) -> list[Any]:
    """The key a cursor holds; a cursor this API did not make answers 400."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or len(key) != arity:
        raise ApiProblem(
            400,
            "invalid request",
            "the cursor is not one this API gave",
            kind="invalid-request",
            errors=[FieldError(loc="query.cursor", msg="not a cursor of this list")],
        )
    return key


class PageQuery(BaseModel):
    """What every list takes: a page size and the cursor of the previous page."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=500, description="items per page")
    cursor: str | None = Field(
        default=None, description="the `next_cursor` of the previous page (absent: the first)"
    )


def path_id(call: Call[Any, Any], name: str, what: str) -> int:
    """The integer id in path parameter `name`; anything else answers 404 `no <what>`."""
    raw = call.params.get(name, "")
    if raw.isascii() and raw.isdigit() and 0 < int(raw) < 2**63:
        return int(raw)
    raise not_found(what)


# routes -------------------------------------------------------------------------------


@dataclass
class Call(Generic[Q, B]):
    """What a handler gets: the validated query and body, the path parameters, who
    calls, and the node's admin state. A handler may set `audit` (identifiers only) to
    add to the audit row of its call."""

    request: web.Request
    state: AdminState
    caller: Caller
    params: Mapping[str, str]
    query: Q
    body: B
    audit: dict[str, Any] = field(default_factory=dict)

    @property
    def unmask(self) -> bool:
        return bool(getattr(self.query, "unmask", False))


Handler = Callable[[Call[Any, Any]], Awaitable[BaseModel]]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    handler: Handler
    response: type[BaseModel]
    summary: str
    role: Role = "read"
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    status: int = 200
    errors: tuple[int, ...] = ()

    @property
    def operation_id(self) -> str:
        """The handler's name in camelCase: `replay_dead_letter` → `replayDeadLetter`."""
        first, *rest = self.handler.__name__.strip("_").split("_")
        return first + "".join(word.title() for word in rest)

    @property
    def mutating(self) -> bool:
        return self.method != "GET"


class Routes:
    """A module's routes, installed together by `install_api`."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("POST", path, **kwargs)

    def _add(self, method: str, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            summary = kwargs.pop("summary", None) or (handler.__doc__ or "").strip().split("\n")[0]
            self.routes.append(Route(method, path, handler, summary=summary, **kwargs))
            return handler

        return register


def install_api(app: web.Application, groups: Iterable[Routes]) -> list[Route]:
    """Add every route of `groups` to `app`, and `GET /api/v1/openapi.json`."""
    routes = [route for group in groups for route in group.routes]
    for route in routes:
        app.router.add_route(route.method, route.path, _endpoint(route))
    document = openapi(routes)

    async def openapi_json(request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/api/v1/openapi.json", openapi_json)
    return routes


def _endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        caller: Caller | None = None
        call: Call[Any, Any] | None = None
        try:
            caller = authenticate(request, state.tokens)
            query = _validate(route.query, dict(request.query), "query")
            if route.role == "operate" and caller.role != "operate":
                raise ApiProblem(
                    403, "forbidden", "this call needs an operate token", kind="forbidden"
                )
            if getattr(query, "unmask", False) and caller.role != "operate":
                raise ApiProblem(
                    403, "forbidden", "unmask=true needs an operate token", kind="forbidden"
                )
            body = await _body(route, request)
            call = Call(request, state, caller, dict(request.match_info), query, body)
            result = await route.handler(call)
            response: web.StreamResponse = web.json_response(
                result.model_dump(mode="json", by_alias=True), status=route.status
            )
            outcome = "ok"
        except ApiProblem as problem:
            response, outcome = problem.response(), problem.title
        except (DBAPIError, OSError, TimeoutError) as exc:  # the store did not answer
            log.warning(
                "admin.store_failed", operation=route.operation_id, error=type(exc).__name__
            )
            unavailable = ApiProblem(
                503, "store unavailable", f"the store failed: {type(exc).__name__}", kind="store"
            )
            response, outcome = unavailable.response(), unavailable.title
        if route.mutating or _asks_unmask(request):  # refused attempts included
            await _audit(state, route, request, caller, response.status, outcome, call)
        return response

    endpoint.__name__ = route.operation_id
    return endpoint


def _asks_unmask(request: web.Request) -> bool:
    return request.query.get("unmask", "").lower() in ("1", "true", "yes", "on", "t", "y")


def _validate(model: type[BaseModel] | None, data: dict[str, Any], where: str) -> Any:
    if model is None:
        if data and where == "query":
            raise _invalid(where, [{"loc": (k,), "msg": "unknown parameter"} for k in data])
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(where, exc.errors(include_input=False, include_url=False)) from None


def _invalid(where: str, errors: Iterable[Mapping[str, Any]]) -> ApiProblem:
    fields = [
        FieldError(loc=".".join([where, *(str(p) for p in e["loc"])]), msg=str(e["msg"]))
        for e in errors
    ]
    return ApiProblem(
        400,
        "invalid request",
        "; ".join(f"{f.loc}: {f.msg}" for f in fields),
        kind="invalid-request",
        errors=fields,
    )


async def _body(route: Route, request: web.Request) -> Any:
    if route.body is None:
        return None
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise _invalid("body", [{"loc": (), "msg": "not JSON"}]) from None
    if not isinstance(data, dict):
        raise _invalid("body", [{"loc": (), "msg": "a JSON object is expected"}])
    return _validate(route.body, data, "body")


async def _audit(
    state: AdminState,
    route: Route,
    request: web.Request,
    caller: Caller | None,
    status: int,
    outcome: str,
    call: Call[Any, Any] | None,
) -> None:
    detail: dict[str, Any] = {"params": dict(request.match_info)}
    if call is not None:
        detail.update(call.audit)
    if _asks_unmask(request):
        detail["unmask"] = True
    entry = AuditIn(
        token=caller.fingerprint if caller else "-",
        role=caller.role if caller else "none",
        operation=route.operation_id,
        method=route.method,
        path=request.path,
        status=status,
        outcome=outcome,
        detail=detail,
    )
    try:
        await state.node.store.add_audit(entry)
    except Exception as exc:  # the call's answer stands; the failure is loud
        log.error("audit.write_failed", operation=route.operation_id, error=type(exc).__name__)


# OpenAPI ------------------------------------------------------------------------------

_ERROR_TEXT = {
    400: "The query or body is invalid; `errors` names each field",
    401: "No bearer token, or one this node does not know",
    403: "The token's role may not do this",
    404: "Nothing has this id",
    409: "The call conflicts with the current state",
    503: "The store did not answer",
}


def openapi(routes: list[Route]) -> dict[str, Any]:
    """The OpenAPI 3.1 document of `routes`, its schemas generated by pydantic from the
    models that validate the requests and serialise the responses."""
    wanted: set[tuple[type[BaseModel], JsonSchemaMode]] = {(Problem, "serialization")}
    for route in routes:
        wanted.add((route.response, "serialization"))
        if route.body is not None:
            wanted.add((route.body, "validation"))
    refs, schemas = models_json_schema(
        sorted(wanted, key=lambda pair: (pair[0].__name__, pair[1])),
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, refs)
    paths["/api/v1/openapi.json"] = {
        "get": {
            "operationId": "openapi",
            "summary": "This document",
            "security": [],
            "responses": {"200": {"description": "OpenAPI 3.1", "content": _json({})}},
        }
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hotline-bridge admin API",
            "version": "1",
            "description": "Where every referral stands, what failed, and how to fix it.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }


def _json(schema: Mapping[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": dict(schema)}}


def _operation(route: Route, refs: Mapping[tuple[Any, str], Mapping[str, Any]]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_params(route.path)
    ]
    if route.query is not None:
        props = route.query.model_json_schema()
        required = set(props.get("required", ()))
        for name, schema in props.get("properties", {}).items():
            schema = _query_schema(schema)
            parameter: dict[str, Any] = {
                "name": name,
                "in": "query",
                "required": name in required,
                "schema": schema,
            }
            if "description" in schema:
                parameter["description"] = schema.pop("description")
            parameters.append(parameter)
    errors = {400, 401, 503, *route.errors}
    if route.role == "operate" or (route.query and "unmask" in route.query.model_fields):
        errors.add(403)
    if _path_params(route.path):
        errors.add(404)
    problem = refs[(Problem, "serialization")]
    responses: dict[str, Any] = {
        str(route.status): {
            "description": route.summary,
            "content": _json(refs[(route.response, "serialization")]),
        }
    }
    for code in sorted(errors):
        responses[str(code)] = {
            "description": _ERROR_TEXT[code],
            "content": _json(problem, PROBLEM),
        }
    operation: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "parameters": parameters,
        "responses": responses,
    }
    if route.role == "operate":
        operation["description"] = "Needs an `operate` token; audited."
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": _json(refs[(route.body, "validation")]),
        }
    return operation


def _query_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema: absent rather than null (a query string cannot hold
    null), without pydantic's titles."""
    schema = {k: v for k, v in schema.items() if k != "title"}
    options = [s for s in schema.pop("anyOf", []) if s != {"type": "null"}]
    if len(options) == 1:
        schema.update(options[0])
    elif options:
        schema["anyOf"] = options
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


def _path_params(path: str) -> list[str]:
    return [part[1:-1].split(":")[0] for part in path.split("/") if part.startswith("{")]
