"""The durable store: ledger, feed positions, outbox, dead letters, leases, runs.

SQLAlchemy Core (async) over SQLite (default, a file) or PostgreSQL, one schema,
Alembic migrations applied at :meth:`Store.connect`. See :mod:`.store` for the
transaction and locking contract.
"""

from .browse import Deadline, ReferralFilter, StatusFigures
from .figures import Figures
from .models import (
    DEAD_LETTER_STAGES,
    DEAD_LETTER_STATUSES,
    ActionRow,
    AuditIn,
    AuditRow,
    Clock,
    DeadLetterFilter,
    DeadLetterIn,
    DeadLetterRow,
    DeadLetterStage,
    DeadLetterStatus,
    Event,
    JobRow,
    OutboxMessage,
    OutboxRow,
    ReconciliationRun,
    ReferralFacts,
    ReferralRow,
    Seen,
    SlaRow,
    SlaSubject,
    utc_now,
)
from .store import Store
from .transaction import Tx

__all__ = [
    "DEAD_LETTER_STAGES",
    "DEAD_LETTER_STATUSES",
    "ActionRow",
    "AuditIn",
    "AuditRow",
    "Clock",
    "DeadLetterFilter",
    "DeadLetterIn",
    "DeadLetterRow",
    "DeadLetterStage",
    "DeadLetterStatus",
    "Deadline",
    "Event",
    "Figures",
    "JobRow",
    "OutboxMessage",
    "OutboxRow",
    "ReconciliationRun",
    "ReferralFacts",
    "ReferralFilter",
    "ReferralRow",
    "Seen",
    "SlaRow",
    "SlaSubject",
    "StatusFigures",
    "Store",
    "Tx",
    "utc_now",
]
