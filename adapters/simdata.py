"""Seeded realistic data both hotline simulators draw their cases and orders from:
names, phones, employers, streets, and subjects with their 12345 / 12351 codes."""

from __future__ import annotations

import random
from typing import Final

SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN: Final = [
    "伟",
    "芳",
    "娜",
    "秀英",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "艳",
    "杰",
    "涛",
    "明",
    "超",
    "秀兰",
    "霞",
    "平",
]
EMPLOYERS: Final = [
    "某某科技有限公司",
    "某建筑劳务公司",
    "某物业管理公司",
    "某餐饮连锁店",
    "某快递站点",
    "某制造厂",
]
STREETS: Final = [
    "中关村街道",
    "建外街道",
    "望京街道",
    "金融街街道",
    "方庄地区",
    "回龙观地区",
    "亦庄地区",
    "永顺镇",
]
LABOUR_SUBJECTS: Final = [
    ("0202", "legal_aid", "公司拖欠三个月工资"),
    ("0201", "legal_aid", "单位未签订劳动合同"),
    ("0203", "legal_aid", "工伤认定后单位拒不赔付"),
    ("0204", "legal_aid", "单位未缴纳社会保险"),
    ("0205", "legal_aid", "加班不给调休也不付加班费"),
    ("0206", "legal_aid", "劳动争议申请调解"),
    ("0210", "union_membership", "咨询如何加入工会"),
    ("0211", "hardship_relief", "家庭困难申请帮扶"),
    ("0212", "mutual_aid", "职工互助保障理赔咨询"),
    ("0213", "service_activity", "咨询职工文体活动报名"),
]
CITY_SUBJECTS: Final = [
    ("0101", "小区门口占道经营"),
    ("0302", "宿舍暖气不热"),
    ("0401", "公交线路调整影响上下班"),
    ("0603", "工地夜间施工噪音扰民"),
    ("0701", "社区医院就诊排队时间过长"),
]


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def mobile(rng: random.Random) -> str:
    return "1" + rng.choice("3456789") + "".join(rng.choice("0123456789") for _ in range(9))


def content_text(rng: random.Random, subject: str, employer: str) -> str:
    return (
        f"来电人反映：其在{employer}工作，{subject}。"
        f"已与单位多次沟通未果，希望相关部门尽快协调处理。诉求编号{rng.randint(1000, 9999)}。"
    )
