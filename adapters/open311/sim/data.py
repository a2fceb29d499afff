"""The 12385 services table (section 8) and seeded realistic requests its staff record."""

from __future__ import annotations

import random
from typing import Any, Final

from adapters.simkit import STREETS, mobile, person

_EXTERNAL_REF: Final = {
    "variable": True,
    "code": "external_ref",
    "datatype": "string",
    "required": False,
    "datatype_description": "合作方自己的工单编号",
    "order": 1,
    "description": "合作方工单编号",
    "values": [],
}


def _card(required: bool) -> dict[str, Any]:
    return {
        "variable": True,
        "code": "disability_card_no",
        "datatype": "string",
        "required": required,
        "datatype_description": "残疾人证号",
        "order": 2,
        "description": "残疾人证号",
        "values": [],
    }


# code, name, type, group, keywords, extra attributes
_TABLE: Final = [
    ("DP-REHAB", "康复服务", "realtime", "康复", "康复,辅具,训练", [_card(False)]),
    ("DP-SUBSIDY", "残疾人补贴", "realtime", "保障", "补贴,两项补贴,生活", [_card(True)]),
    ("DP-EMPLOY", "就业服务", "batch", "就业", "就业,培训,岗位", []),
    ("DP-ACCESS", "无障碍设施", "realtime", "环境", "无障碍,坡道,盲道", []),
    ("DP-RIGHTS", "维权服务", "realtime", "维权", "维权,法律,援助", []),
    ("DP-OTHER", "其他", "realtime", "其他", "其他", []),
]

SERVICES: Final[list[dict[str, Any]]] = [
    {
        "service_code": code,
        "service_name": name,
        "description": f"{name}（12385残疾人服务热线）",
        "metadata": True,
        "type": kind,
        "keywords": keywords,
        "group": group,
    }
    for code, name, kind, group, keywords, _ in _TABLE
]
DEFINITIONS: Final[dict[str, dict[str, Any]]] = {
    code: {"service_code": code, "attributes": [_EXTERNAL_REF, *extra]}
    for code, _, _, _, _, extra in _TABLE
}

_SUBJECTS: Final = [
    ("DP-REHAB", "申请社区康复训练，等待时间过长"),
    ("DP-SUBSIDY", "两项补贴迟迟未发放"),
    ("DP-ACCESS", "小区出入口无障碍坡道被占用"),
    ("DP-RIGHTS", "用人单位以残疾为由拒绝录用，且拖欠工资"),
    ("DP-RIGHTS", "残疾职工被单位无故辞退"),
    ("DP-OTHER", "咨询残疾人证办理流程"),
]


def random_request(rng: random.Random) -> dict[str, Any]:
    """Fields of a request a 12385 operator takes by phone (personal data included)."""
    code, subject = rng.choice(_SUBJECTS)
    name = person(rng)
    fields: dict[str, Any] = {
        "service_code": code,
        "description": f"来电人反映：{subject}，希望尽快协调解决。",
        "address_string": f"北京市{rng.choice(STREETS)}{rng.randint(1, 200)}号",
        "first_name": name[1:],
        "last_name": name[0],
        "phone": mobile(rng),
    }
    if code == "DP-SUBSIDY":
        fields["attributes"] = {"disability_card_no": f"11010{rng.randint(10**12, 10**13 - 1)}"}
    return fields


SEED_REFERRALS: Final = (("12351", 3), ("12345", 2))
"""At start: requests referred to the union (12351) and to the city (12345)."""
SEED_UNREFERRED: Final = 2
