"""What the simulated 12345 accepts in a request: every field rule of
`specs/hotline-12345.md`, the first broken one answered `40001` naming its field."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from aiohttp import web

from adapters.hotline12345.sim.state import invalid
from schemas.hotline12345 import (
    CONTENT_MAX,
    CREATE_CATEGORY_RE,
    DISTRICTS,
    TIME_FORMAT,
    TITLE_MAX,
    is_valid_phone,
)

PARTNER_SYSTEM: Final = "12351"


def validate_create(body: dict[str, Any]) -> None:
    """Every create rule of the spec; the first broken one → 40001 naming its field."""
    if body.get("sourceSystem") != PARTNER_SYSTEM:
        raise invalid("sourceSystem", f"须为 {PARTNER_SYSTEM}")
    text_field(body, "sourceNo")
    text_field(body, "title", max_len=TITLE_MAX)
    text_field(body, "content", max_len=CONTENT_MAX)
    category = body.get("category")
    if not isinstance(category, str) or not CREATE_CATEGORY_RE.fullmatch(category):
        raise invalid("category", "须为有效的4位诉求分类")
    area = body.get("areaCode")
    if area not in DISTRICTS:
        raise invalid("areaCode", "须为北京市16区之一")
    if body.get("urgency") not in ("1", "2", "3"):
        raise invalid("urgency", "须为 1、2 或 3")
    for field in ("callerName", "callerPhone", "address", "streetCode"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise invalid(field, "须为字符串")
    if not is_valid_phone(body.get("callerPhone") or ""):
        raise invalid("callerPhone", "须为空、手机号或固定电话（如 010-62345678）")
    street = body.get("streetCode")
    if street and not (len(street) == 9 and street.isdigit() and street.startswith(area)):
        raise invalid("streetCode", "须为以 areaCode 开头的9位代码")
    if body.get("confidential") is not None and not isinstance(body["confidential"], bool):
        raise invalid("confidential", "须为布尔值")


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise invalid("body", "须为 JSON 对象") from None
    if not isinstance(body, dict):
        raise invalid("body", "须为 JSON 对象")
    return body


def text_field(body: dict[str, Any], field: str, *, max_len: int | None = None) -> str:
    value = body.get(field)
    if not isinstance(value, str) or not value.strip():
        raise invalid(field, "必填")
    if max_len is not None and len(value) > max_len:
        raise invalid(field, f"长度不能超过 {max_len}")
    return value


def int_field(value: str, field: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise invalid(field, "须为整数") from None


def time_field(value: str, field: str) -> str:
    try:
        if datetime.strptime(value, TIME_FORMAT).strftime(TIME_FORMAT) == value:
            return value
    except ValueError:
        pass
    raise invalid(field, "时间格式须为 yyyy-MM-dd HH:mm:ss")
