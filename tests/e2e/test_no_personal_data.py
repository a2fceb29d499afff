"""No personal data in any log line, metric or `read` response: callers with known,
unique names and phones ask on both hotlines (one of them confidential, 保密, on each;
one record on each side is poison and parked with the caller in its payload), the
referrals cross, and then every log line the process wrote (structlog at debug level and
the standard library's), `/metrics`, `/livez`, `/readyz` and the answer of every GET
operation of the served OpenAPI document with a read token are searched for them.

That the search would find them if they were there: the store holds them, and an
operate token that asks for them (`unmask=true`) on a referral's detail sees the name of
a caller who is not confidential, and still not that of one who is."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import structlog
from harness import (
    cases_from,
    delete_namespace,
    new_namespace,
    order,
    orders_from,
    settings_for,
    start,
    wait_until,
)
from sim_actions import dispatch, record_case

from bridge.demo import Simulators
from bridge.logging import configure_logging

READ, OPERATE = "read-token-no-personal-data", "operate-token-no-personal-data"

# 12345 callers (orders dispatched to the union), 12351 workers (cases handed to 12345)
ORDER_CALLER = ("Qiaoxuemei Testcaller", "13711230001")
SECRET_ORDER_CALLER = ("Baomi Jiamingzi", "13711230002")  # confidential (保密)
POISON_ORDER_CALLER = ("Duyao Dingdanren", "13711230003")  # parked: a bad district code
CASE_WORKER = ("Zhigong Xingming", "13711230004")
SECRET_CASE_WORKER = ("Baomi Zhigongming", "13711230005")  # confidential (保密)
POISON_CASE_WORKER = ("Duyao Zhigongren", "13711230006")  # parked: an unknown hotline
CALLERS = [
    ORDER_CALLER,
    SECRET_ORDER_CALLER,
    POISON_ORDER_CALLER,
    CASE_WORKER,
    SECRET_CASE_WORKER,
    POISON_CASE_WORKER,
]
SECRETS = [value for caller in CALLERS for value in caller]


def _found(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


@contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line of the process for the block, as the daemon at its most verbose
    writes them (`configure_logging("debug")`: structlog and the standard library through
    the same processors, the libraries' from WARNING on); the test's logging is put back
    after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    config = structlog.get_config()
    stream = io.StringIO()
    configure_logging("debug", stream=stream)
    try:
        yield stream
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**config)


async def _get(http: aiohttp.ClientSession, url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with http.get(url, headers=headers) as resp:
        return resp.status, await resp.text()


def _paths(document: dict[str, Any], known: dict[str, list[str]]) -> list[str]:
    """Every GET path of `document`, once for each known value of its path parameters
    (`1` for a parameter with none known: a 404 is an answer to search too)."""
    paths: list[str] = []
    for template, item in document["paths"].items():
        if "get" not in item:
            continue
        filled = [template]
        for name in re.findall(r"\{([^}]+)\}", template):
            values = known.get(name) or ["1"]
            filled = [p.replace(f"{{{name}}}", quote(v, safe="")) for p in filled for v in values]
        paths += filled
    return paths


async def test_no_personal_data_in_logs_metrics_or_read_answers(
    sims: Simulators, tmp_path: Path
) -> None:
    settings = settings_for(sims, tmp_path, new_namespace())
    admin = settings.admin.model_copy(update={"tokens": {READ: "read", OPERATE: "operate"}})
    settings = settings.model_copy(update={"admin": admin})
    try:
        with captured_logs() as logs:
            async with AsyncExitStack() as stack:
                node = await start(settings, stack)
                async with aiohttp.ClientSession() as http:
                    await _cross_and_search(sims, node, http)
                logging.getLogger("tests.e2e").warning("stdlib.probe")
            lines = logs.getvalue().splitlines()
    finally:
        await delete_namespace(settings)

    assert any('"event": "action.applied"' in line for line in lines), "the node's lines"
    assert any('"event": "stdlib.probe"' in line for line in lines), "the libraries' lines"
    leaked = [line for line in lines if _found(line)]
    assert not leaked, "personal data in log lines:\n" + "\n".join(leaked[:20])


async def _cross_and_search(sims: Simulators, node: Any, http: aiohttp.ClientSession) -> None:
    base = node.admin_url
    assert base is not None

    def order_of(caller: tuple[str, str], **fields: Any) -> Any:
        return dispatch(sims, callerName=caller[0], callerPhone=caller[1], **fields)

    def case_of(caller: tuple[str, str], **fields: Any) -> str:
        worker = {"name": caller[0], "phone": caller[1], "confidential": False}
        worker.update(fields.pop("worker", {}))
        return str(record_case(sims, worker=worker, **fields)["case_no"])

    plain_order = await order_of(ORDER_CALLER, confidential=False)
    secret_order = await order_of(SECRET_ORDER_CALLER, confidential=True)
    await order_of(POISON_ORDER_CALLER, confidential=False, areaCode="11010")  # parked: 5 digits
    plain_case = case_of(CASE_WORKER)
    secret_case = case_of(SECRET_CASE_WORKER, worker={"confidential": True})
    case_of(POISON_CASE_WORKER, transfer={"to": "12366", "reason": "税务问题"})  # parked

    for no in (plain_order, secret_order):
        await wait_until(lambda no=no: len(cases_from(sims, no)) == 1, what=f"case of {no}")
        await wait_until(lambda no=no: order(sims, no)["orderStatus"] == "20", what="signed")
    for no in (plain_case, secret_case):
        await wait_until(lambda no=no: len(orders_from(sims, no)) == 1, what=f"order of {no}")

    async def parked() -> bool:
        return len(await node.store.list_dead_letters(status="parked")) >= 2

    await wait_until(parked, what="two poison records parked")
    letters = await node.store.list_dead_letters(status="parked")
    payloads = json.dumps([letter.payload for letter in letters], ensure_ascii=False)
    assert POISON_ORDER_CALLER[0] in payloads and POISON_CASE_WORKER[0] in payloads

    referrals = await node.store.list_referrals(limit=100)
    snapshots = json.dumps([r.last_snapshot for r in referrals], ensure_ascii=False)
    assert ORDER_CALLER[0] in snapshots and CASE_WORKER[1] in snapshots, "the store has them"

    status, document_text = await _get(http, base + "/api/v1/openapi.json")
    assert status == 200
    document = json.loads(document_text)
    by_number = {r.referral_id: r for r in referrals}
    plain_id = f"12345:{plain_order}"
    secret_id = f"12345:{secret_order}"
    assert plain_id in by_number and secret_id in by_number

    # an operate token that asks sees the name, except a confidential caller's
    detail = "/api/v1/referrals/{referral_id}"
    if detail in document["paths"]:
        url = base + detail.format(referral_id=quote(plain_id, safe=""))
        status, text = await _get(http, url + "?unmask=true", OPERATE)
        assert status == 200 and ORDER_CALLER[0] in text and ORDER_CALLER[1] in text
        url = base + detail.format(referral_id=quote(secret_id, safe=""))
        status, text = await _get(http, url + "?unmask=true", OPERATE)
        assert status == 200
        assert SECRET_ORDER_CALLER[0] not in text and SECRET_ORDER_CALLER[1] not in text

    known = {
        "referral_id": [
            *by_number,
            f"12351:{plain_case}",
            f"12351:{cases_from(sims, plain_order)[0]['case_no']}",
        ],
        "letter_id": [str(letter.id) for letter in letters],
        "run_id": [str(run.id) for run in await node.store.list_reconciliations()],
    }
    answers: dict[str, str] = {}
    for path in ["/livez", "/readyz", "/metrics", *_paths(document, known)]:
        status, text = await _get(http, base + path, READ)
        assert status < 500, f"GET {path}: {status} {text[:200]}"
        if path in document["paths"] or path in ("/livez", "/metrics"):
            assert status == 200, f"GET {path}: {status} {text[:200]}"  # searched, not refused
        answers[path] = text
    assert answers["/metrics"].count("hotline_bridge_") > 10
    leaked = {path: _found(text) for path, text in answers.items() if _found(text)}
    assert not leaked, f"personal data in read answers: {leaked}"
