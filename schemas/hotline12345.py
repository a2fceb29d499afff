"""Native payloads of the 12345 work-order interface (v2), as published.

Strict where the spec is strict (codes, status values, lengths of what 12345 itself
enforces on create); tolerant where real data varies (phones as typed, empty values).
Times are naive Beijing local time strings `yyyy-MM-dd HH:mm:ss` on the wire; the
models keep them as `datetime` without tzinfo (Asia/Shanghai wall clock).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Final, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
    field_validator,
)

TIME_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

DISTRICTS: Final[dict[str, str]] = {
    "110101": "东城区",
    "110102": "西城区",
    "110105": "朝阳区",
    "110106": "丰台区",
    "110107": "石景山区",
    "110108": "海淀区",
    "110109": "门头沟区",
    "110111": "房山区",
    "110112": "通州区",
    "110113": "顺义区",
    "110114": "昌平区",
    "110115": "大兴区",
    "110116": "怀柔区",
    "110117": "平谷区",
    "110118": "密云区",
    "110119": "延庆区",
}

ORDER_STATUSES: Final[dict[str, str]] = {
    "10": "待签收",
    "20": "办理中",
    "25": "延期中",
    "30": "已反馈",
    "40": "已回访",
    "50": "已办结",
    "60": "已退回",
    "70": "已撤销",
}

MOBILE_RE: Final = re.compile(r"^1\d{10}$")
LANDLINE_RE: Final = re.compile(r"^0\d{2,3}-\d{7,8}$")
CREATE_CATEGORY_RE: Final = re.compile(r"^(0[1-8]|99)\d{2}$")

TITLE_MAX: Final = 100
CONTENT_MAX: Final = 4000
REPLY_MAX: Final = 4000
REQUEST_ID_MAX: Final = 64


def parse_time(value: Any) -> Any:
    if isinstance(value, str) and value:
        return datetime.strptime(value, TIME_FORMAT)
    return value


LocalTime = Annotated[
    datetime,
    BeforeValidator(parse_time),
    PlainSerializer(lambda d: d.strftime(TIME_FORMAT), return_type=str, when_used="json"),
]
"""A naive Beijing-local datetime, `yyyy-MM-dd HH:mm:ss` on the wire."""

OrderStatus = Literal["10", "20", "25", "30", "40", "50", "60", "70"]
Urgency = Literal["1", "2", "3"]
Satisfaction = Literal["1", "2", "3", "4"]
Category = Annotated[str, StringConstraints(pattern=r"^\d{4}$")]
AreaCode = Annotated[str, StringConstraints(pattern=r"^\d{6}$")]


def is_valid_phone(phone: str) -> bool:
    """The create rule: empty, a mobile (`1` + 10 digits) or a landline `0AA(A)-NNNNNNN(N)`."""
    return phone == "" or bool(MOBILE_RE.match(phone) or LANDLINE_RE.match(phone))


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore", frozen=True)


class Reply(_Model):
    content: str
    handler: str | None = None
    replyTime: LocalTime | None = None
    resolved: bool = True


class Visit(_Model):
    visitTime: LocalTime | None = None
    satisfaction: str  # checked by the mapping: an odd code parks the order, not the page
    remark: str | None = None


class Order(_Model):
    """A work order as `GET /orders/{orderNo}` and both list feeds return it."""

    orderNo: str = Field(min_length=1)
    title: str = ""
    content: str = ""
    callerName: str | None = None
    callerPhone: str | None = None
    category: str  # codes are checked by the mapping (a bad one parks this order only)
    areaCode: str | None = None
    streetCode: str | None = None
    address: str | None = None
    urgency: str
    acceptTime: LocalTime | None = None
    dispatchTime: LocalTime | None = None
    deadline: LocalTime | None = None
    unitCode: str | None = None
    orderStatus: str
    confidential: bool = False
    reopenCount: int = Field(default=0, ge=0)
    reopenReason: str | None = None
    sourceSystem: str | None = None
    sourceNo: str | None = None
    reply: Reply | None = None
    visit: Visit | None = None
    updateTime: LocalTime


T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """`{"code": "0", "msg": "成功", "data": ...}`: every HTTP 200 response."""

    model_config = ConfigDict(extra="ignore")
    code: str
    msg: str = ""
    data: T | None = None


class Page(_Model, Generic[T]):
    total: int
    pageNo: int
    pageSize: int
    records: list[T]


class TokenData(_Model):
    accessToken: str
    expiresIn: int


class CreatedOrder(_Model):
    orderNo: str


# --- requests (the bridge writes these; strict: what 12345 would refuse is refused here) ---


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SignRequest(_Request):
    handler: str = Field(min_length=1)


class ReplyRequest(_Request):
    content: str = Field(min_length=1, max_length=REPLY_MAX)
    handler: str = Field(min_length=1)
    resolved: bool


class ReturnRequest(_Request):
    reason: str = Field(min_length=1)


class ExtensionRequest(_Request):
    reason: str = Field(min_length=1)
    newDeadline: LocalTime


class CreateOrderRequest(_Request):
    requestId: str = Field(min_length=1, max_length=REQUEST_ID_MAX)
    sourceSystem: Literal["12351"] = "12351"
    sourceNo: str = Field(min_length=1)
    title: str = Field(min_length=1, max_length=TITLE_MAX)
    content: str = Field(min_length=1, max_length=CONTENT_MAX)
    callerName: str | None = None
    callerPhone: str | None = None
    category: Annotated[str, StringConstraints(pattern=CREATE_CATEGORY_RE.pattern)]
    areaCode: str
    streetCode: str | None = None
    address: str | None = None
    urgency: Urgency
    confidential: bool = False

    @field_validator("areaCode")
    @classmethod
    def _area(cls, value: str) -> str:
        if value not in DISTRICTS:
            raise ValueError(f"areaCode {value!r} is not one of Beijing's 16 districts")
        return value

    @field_validator("callerPhone")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        if value is not None and not is_valid_phone(value):
            raise ValueError("callerPhone must be empty, a mobile or a landline 0AA-NNNNNNNN")
        return value

    @field_validator("streetCode")
    @classmethod
    def _street(cls, value: str | None, info: Any) -> str | None:
        area = info.data.get("areaCode")
        if value and not (re.fullmatch(r"\d{9}", value) and area and value.startswith(area)):
            raise ValueError("streetCode must be 9 digits beginning with areaCode")
        return value
