"""`GET /api/v1/audit`: who did what, when, with what outcome (newest first). The
detail's free text (a discard's reason, a filter's reason substring) is masked unless
an operate caller asks for it unmasked."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from bridge.admin.api import Call, PageQuery, Routes, decode_cursor, encode_cursor
from bridge.admin.masking import masked

routes = Routes()


class AuditQuery(PageQuery):
    operation: str | None = Field(default=None, description="e.g. `replayDeadLetter`")
    token: str | None = Field(default=None, description="a token fingerprint")
    since: AwareDatetime | None = Field(default=None, description="entries at or after this")
    unmask: bool = Field(default=False, description="show free text unmasked (operate; audited)")


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    token: str = Field(description="the caller's token fingerprint (`-`: none was valid)")
    role: str
    operation: str
    method: str
    path: str
    status: int = Field(description="the HTTP status the call answered")
    outcome: str
    detail: dict[str, object]


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(description="absent on the last page")


@routes.get("/api/v1/audit", response=AuditPage, query=AuditQuery)
async def list_audit(call: Call[AuditQuery, None]) -> AuditPage:
    """The audit log: every mutating call and every unmasked read, newest first."""
    q = call.query
    before = int(decode_cursor(q.cursor, 1)[0]) if q.cursor else None
    rows = await call.state.node.store.list_audit(
        before_id=before, operation=q.operation, token=q.token, since=q.since, limit=q.limit + 1
    )
    page = rows[: q.limit]
    more = len(rows) > q.limit
    return AuditPage(
        items=[
            AuditEntry.model_validate(row).model_copy(
                update={"detail": masked(row.detail, unmask=q.unmask)}
            )
            for row in page
        ],
        next_cursor=encode_cursor([page[-1].id]) if more else None,
    )
