"""Rows that go into and come out of the store.

Frozen dataclasses, no behaviour. Times are timezone-aware UTC datetimes both
ways; fields the store fills itself (ids, ``created_at``, ``updated_at``,
``at``) may be left ``None`` on the way in.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal

Clock = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime; injected into the store."""

DeadLetterStage = Literal["intake", "apply", "transport", "publish"]
DeadLetterStatus = Literal["parked", "replayed", "discarded"]
DEAD_LETTER_STAGES: Final[tuple[str, ...]] = ("intake", "apply", "transport", "publish")
DEAD_LETTER_STATUSES: Final[tuple[str, ...]] = ("parked", "replayed", "discarded")


def utc_now() -> datetime:
    """The default clock: the system time in UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Seen:
    """What a feed reader last saw of one native record.

    ``content_hash`` deduplicates records that carry no version (a partner's records
    without a version number); ``seq`` is the publishing node's per-referral sequence
    number, which stamps the snapshot's version.
    """

    content_hash: str
    seq: int


@dataclass(frozen=True, slots=True)
class ReferralRow:
    """One referral in the ledger.

    ``ids`` maps system → native id (``{"A": "<uuid>", "B": "B-7"}``); ``numbers`` maps
    system → the human-facing number that system gives it (the one people read out on
    the phone), as far as known; ``state`` is the canonical lifecycle state; ``target``
    is the partner the referral goes to (``None``: not known, and on update: unchanged).
    """

    referral_id: str
    origin_system: str
    ids: dict[str, str]
    state: str
    early_warning: bool = False
    numbers: dict[str, str] = field(default_factory=dict)
    target: str | None = None
    last_snapshot: dict[str, Any] | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(slots=True)
class ReferralFacts:
    """What the ledger holds of one referral, for a reconciliation run's checks.

    ``state`` is None when the ledger has no such referral; ``numbers``: system → its
    human-facing number (an order number, a case number) as far as known; ``actions``: system →
    action key → (kind, outcome); ``snapshots``: system → the
    detail of the last snapshot read of it (``version``, ``status``, ``state``);
    ``applied``: source system → the last of its versions applied on the other side;
    ``parked``: the ids of its dead letters still parked.
    """

    state: str | None = None
    numbers: dict[str, str] = field(default_factory=dict)
    actions: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)
    applied: dict[str, int] = field(default_factory=dict)
    parked: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One action a node performed (or decided about) on its own system.

    Unique on ``(referral_id, system, key)``; ``key`` is the deterministic
    idempotency key of the action. ``outcome`` is e.g. ``"applied"``,
    ``"already_applied"``, ``"parked"``.
    """

    referral_id: str
    system: str
    key: str
    kind: str
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message to publish, written in the same transaction as what caused it."""

    referral_id: str
    routing_key: str
    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    early_warning: bool = False


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A stored outbox message; ``published_at`` is ``None`` until confirmed.

    ``attempts`` counts the publishes that failed so far (see the outbox relay).
    """

    id: int
    referral_id: str
    routing_key: str
    body: bytes
    headers: dict[str, Any]
    early_warning: bool
    created_at: datetime
    published_at: datetime | None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetterIn:
    """A record or message that can never succeed as it is, with its reason.

    ``reason`` is human-readable, names the field and the case, and carries no
    personal data. ``payload`` is what a replay needs (the native record or the
    message). ``attempts`` is how many times it was tried before parking.
    """

    system: str
    stage: DeadLetterStage
    reason: str
    payload: dict[str, Any]
    referral_id: str | None = None
    field: str | None = None
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class DeadLetterRow:
    """A stored dead letter; ``attempts`` grows by one on each replay."""

    id: int
    referral_id: str | None
    system: str
    stage: str
    reason: str
    field: str | None
    payload: dict[str, Any]
    status: str
    attempts: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which dead letters a page, a count or a replay job is about; ``None``: any.

    ``reason`` is a case-insensitive substring; ``since`` (inclusive) and ``until``
    (exclusive) bound ``created_at``.
    """

    status: str | None = "parked"
    system: str | None = None
    stage: str | None = None
    reason: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    referral_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobRow:
    """A background job an admin started (a replay by filter): ``status`` goes
    ``queued`` → ``running`` → ``done`` or ``failed``; ``total`` is known once it runs."""

    id: int
    kind: str
    status: str
    params: dict[str, Any]
    total: int | None
    done: int
    failed: int
    result: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of a referral's timeline."""

    id: int
    referral_id: str
    system: str
    kind: str
    detail: dict[str, Any]
    at: datetime


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    """One reconciliation run; ``status`` is ``"running"`` until finished."""

    id: int
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    counts: dict[str, Any]
    dry_run: bool = False
    report: dict[str, Any] | None = None
    """What the run found (identifiers and states only); ``None`` until it finishes."""


@dataclass(frozen=True, slots=True)
class AuditIn:
    """One audit entry to write: who (a token fingerprint and its role), what, outcome."""

    token: str
    role: str
    operation: str
    method: str
    path: str
    status: int
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AuditRow:
    """A stored audit entry."""

    id: int
    at: datetime
    token: str
    role: str
    operation: str
    method: str
    path: str
    status: int
    outcome: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class SlaRow:
    """One deadline of a referral as the SLA watch last judged it.

    ``kind`` is ``sign``, ``reply`` or ``answer``; ``system`` the hotline whose
    deadline it is; ``state`` one of ``ok``, ``at_risk``, ``breached``, ``met``;
    ``changed_at`` when ``state`` last changed (``due_at`` may move without it).
    """

    referral_id: str
    kind: str
    system: str
    due_at: datetime
    state: str
    changed_at: datetime


@dataclass(frozen=True, slots=True)
class SlaSubject:
    """What the SLA watch reads of one referral: its last snapshot (JSON, or ``None``),
    the actions recorded for it (``detail`` left empty) and its stored deadlines by kind."""

    referral_id: str
    state: str
    last_snapshot: dict[str, Any] | None
    actions: list[ActionRow]
    deadlines: dict[str, SlaRow]
