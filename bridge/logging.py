"""structlog, JSON lines, configured once; personal data masked.

Event names are `noun.past_verb`. Log identifiers, never names, phones, addresses or
case text: `mask_personal_data` replaces the values of personal keys and any phone-like
digits or Chinese text that slipped into another value.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, Final

import structlog

PERSONAL_KEYS: Final = frozenset(
    {
        "name",
        "caller",
        "callername",
        "caller_name",
        "phone",
        "callerphone",
        "caller_phone",
        "address",
        "location",
        "content",
        "text",
        "description",
        "subject",
        "title",
        "worker",
        "employer",
        "member_card_no",
        "reply",
        "response",
        "remark",
        "note",
        "body",
        "payload",
    }
)
MASK: Final = "***"
_PHONE = re.compile(
    r"(?<!\d)(?:\+?86[ -]?)?(?:1\d{2}[ -]?\d{4}[ -]?\d{4}|0\d{2,3}[ -]?\d{7,8})(?!\d)"
)
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")


def mask_text(text: str) -> str:
    """`text` with phone-like digits and Chinese text masked."""
    return _CJK.sub(MASK, _PHONE.sub(MASK, text))


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {
            k: (MASK if str(k).lower() in PERSONAL_KEYS else _mask_value(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_mask_value(v) for v in value]
    return value


def mask_personal_data(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask personal data in every field of the event."""
    for key in list(event_dict):
        if key in ("timestamp", "level", "logger"):
            continue
        if key.lower() in PERSONAL_KEYS:
            event_dict[key] = MASK
        else:
            event_dict[key] = _mask_value(event_dict[key])
    return event_dict


def shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        mask_personal_data,
    ]


def configure_logging(level: str = "info", *, stream: Any = None) -> None:
    """Configure structlog for JSON lines on stdout (call once, at process start).

    Libraries' standard-library logging (aio-pika, aiohttp, alembic) goes through the
    same processors, masking included, and comes out as JSON lines on the same stream.
    """
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared_processors(),
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(ensure_ascii=False),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    for name in ("aiormq", "aio_pika"):
        # at DEBUG they log whole AMQP frames, message bodies (case text) as bytes that
        # the masking cannot read: held at WARNING, whatever the root level becomes
        logging.getLogger(name).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared_processors(), structlog.processors.JSONRenderer(ensure_ascii=False)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stdout),
        cache_logger_on_first_use=False,
    )
