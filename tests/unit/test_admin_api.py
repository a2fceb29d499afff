"""The /api/v1 framework over real HTTP, for every route the server has: tokens and
roles, problem documents, the audit row of each mutating call, and the OpenAPI
document generated from the models."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from openapi_pydantic import OpenAPI

from bridge.admin.api import Route
from bridge.admin.auth import Tokens, fingerprint
from bridge.admin.masking import masked
from bridge.admin.server import ROUTES
from bridge.errors import ConfigError
from bridge.store import AuditIn
from tests.unit.adminkit import OPERATE, READ, Admin, admin_node

ALL = [route for group in ROUTES for route in group.routes]
MUTATING = [route for route in ALL if route.mutating]


def _path(route: Route) -> str:
    return re.sub(r"\{[^}]+\}", "1", route.path)


@pytest.fixture
async def admin(tmp_path: Path) -> AsyncIterator[Admin]:
    async with admin_node(tmp_path) as admin:
        yield admin


@pytest.mark.parametrize("route", ALL, ids=lambda r: f"{r.method} {r.path}")
@pytest.mark.parametrize("token", [None, "not-a-token", f"{READ}x"], ids=["none", "wrong", "near"])
async def test_every_route_wants_a_known_token(admin: Admin, route: Route, token: str | None):
    status, content_type, body = await admin.call(
        route.method, _path(route), token=token, json={} if route.body else None
    )
    assert (status, content_type) == (401, "application/problem+json")
    assert body["status"] == 401 and body["title"] == "unauthorized"


async def test_a_401_challenges_for_a_bearer_token(admin: Admin) -> None:
    async with admin.http.get(admin.url + "/api/v1/audit") as resp:
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer ")


@pytest.mark.parametrize("route", MUTATING, ids=lambda r: f"{r.method} {r.path}")
async def test_a_read_token_may_not_change_anything(admin: Admin, route: Route) -> None:
    status, content_type, body = await admin.call(
        route.method, _path(route), token=READ, json={} if route.body else None
    )
    assert (status, content_type) == (403, "application/problem+json")
    assert body["title"] == "forbidden"
    audit = await admin.node.store.list_audit()
    assert [(a.token, a.role, a.status) for a in audit] == [(fingerprint(READ), "read", 403)]


@pytest.mark.parametrize("route", MUTATING, ids=lambda r: f"{r.method} {r.path}")
async def test_each_mutating_call_leaves_one_audit_row(admin: Admin, route: Route) -> None:
    status, _, _ = await admin.call(
        route.method, _path(route), token=OPERATE, json={} if route.body else None
    )
    (row,) = await admin.node.store.list_audit()
    assert (row.token, row.role, row.method, row.status) == (
        fingerprint(OPERATE),
        "operate",
        route.method,
        status,
    )
    assert row.operation == route.operation_id and row.path == _path(route)


async def test_the_audit_log_pages_newest_first_without_repeats(admin: Admin) -> None:
    for n in range(7):
        await admin.node.store.add_audit(
            AuditIn(
                token="t",
                role="operate",
                operation=f"op{n}",
                method="POST",
                path="/",
                status=200,
                outcome="ok",
            )
        )
    seen: list[int] = []
    cursor = ""
    while True:
        status, _, page = await admin.get(f"/api/v1/audit?limit=3{cursor}", token=READ)
        assert status == 200
        seen += [item["id"] for item in page["items"]]
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
        # an entry added between two pages comes before the first, never inside
        await admin.node.store.add_audit(
            AuditIn(
                token="t",
                role="read",
                operation="later",
                method="GET",
                path="/",
                status=200,
                outcome="ok",
            )
        )
    assert len(seen) == 7 and seen == sorted(seen, reverse=True)


async def test_an_invalid_query_names_the_field_without_echoing_it(admin: Admin) -> None:
    status, content_type, body = await admin.get("/api/v1/audit?limit=13800138000", token=READ)
    assert (status, content_type) == (400, "application/problem+json")
    assert [e["loc"] for e in body["errors"]] == ["query.limit"]
    assert "13800138000" not in str(body)
    status, _, body = await admin.get("/api/v1/audit?cursor=garbage", token=READ)
    assert status == 400 and body["errors"][0]["loc"] == "query.cursor"
    status, _, body = await admin.get("/api/v1/audit?nonsense=1", token=READ)
    assert status == 400 and body["errors"][0]["loc"] == "query.nonsense"


async def test_an_unknown_api_path_is_a_problem(admin: Admin) -> None:
    status, content_type, _ = await admin.get("/api/v1/nothing-here", token=READ)
    assert (status, content_type) == (404, "application/problem+json")


async def test_the_openapi_document_is_valid_3_1_and_names_every_route(admin: Admin) -> None:
    status, _, document = await admin.get("/api/v1/openapi.json")
    assert status == 200 and document["openapi"] == "3.1.0"
    OpenAPI.model_validate(document)
    assert "#/$defs/" not in json.dumps(document)  # every schema reference resolves
    for route in ALL:
        operation = document["paths"][route.path][route.method.lower()]
        assert operation["operationId"] == route.operation_id
        assert "401" in operation["responses"]
        if route.mutating:
            assert "403" in operation["responses"]


def test_tokens_from_files_and_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    secret = tmp_path / "operate.token"
    secret.write_text("from-a-file\n")
    tokens = Tokens.load({"inline": "read"}, {str(secret): "operate"})
    found = tokens.find("from-a-file")
    assert found is not None and found.role == "operate"
    assert tokens.find("inline") is not None and tokens.find("from-a-fil") is None
    with pytest.raises(ConfigError, match="token_files"):
        Tokens.load({}, {str(tmp_path / "missing"): "read"})


def test_masking_for_read_unmask_and_confidential_callers() -> None:
    snapshot = {
        "referral_id": "12345:BJ12345-1",
        "caller": {"name": "张三", "phone": "13800138000", "confidential": False},
        "text": "my employer owes me wages",
        "district_code": "110108",
        "location": "海淀区某街道某号",
        "note": None,
    }
    read = masked(snapshot)
    assert read["caller"] == {"name": "***", "phone": "***", "confidential": False}
    assert read["text"] == read["location"] == "***"
    assert read["referral_id"] == "12345:BJ12345-1" and read["district_code"] == "110108"
    assert read["note"] is None
    assert masked(snapshot, unmask=True) == snapshot
    secret = {**snapshot, "caller": {**snapshot["caller"], "confidential": True}}
    unmasked = masked(secret, unmask=True)
    assert unmasked["caller"]["name"] == unmasked["caller"]["phone"] == "***"
    assert unmasked["text"] == snapshot["text"]
    order = {"callerName": "李四", "callerPhone": "010-62345678", "confidential": True}
    assert masked(order, unmask=True) == {**order, "callerName": "***", "callerPhone": "***"}
    assert masked({"reason": "call 13800138000"}) == {"reason": "call ***"}
