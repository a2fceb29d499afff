"""The CLI's admin commands, run as click commands against a node's admin API over
real HTTP.

The node is `adminkit`'s (real store, admin server on port 0). The `/api/v1` routes it
does not serve yet on this branch are answered by `cli_fake_api` in front of it, from
the same store: for those these are unit tests of the client. `FAKED` is the one switch:
leave a route group out of it once the node serves it, and the same tests run against
the real endpoints (the assertions check the store's truth, not the fake's). What the
node already serves (`/api/v1/audit`, `/readyz`, the 401s of every route) is real.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from adminkit import OPERATE, READ, Admin, admin_node
from cli_fake_api import FAKED_DEFAULT, Scripted, closed_port, fake_api
from click.testing import CliRunner, Result

from bridge.admin_client import AdminClient, ApiError
from bridge.cli import main
from bridge.config import Settings, settings_to_toml
from bridge.demo import Simulators
from bridge.store import DeadLetterIn, ReferralRow

FAKED = FAKED_DEFAULT
"""Route prefixes the fake answers; the rest goes to the real admin server."""

NAME, PHONE = "王某某", "13812345678"
ORDER_NO, CASE_NO = "BJ12345-20261129-004211", "12351-2026-0001234"
REFERRAL = f"12345:{ORDER_NO}"


@dataclass
class Node:
    admin: Admin
    url: str
    """What the CLI talks to: the fake in front of the real admin server."""
    config: Path
    """A config whose [store] is the node's and whose [admin] listen is `url`'s."""
    apply_letter: int
    intake_letter: int


async def seed(admin: Admin) -> tuple[int, int]:
    """One referral with an event, and two parked dead letters holding personal data."""
    async with admin.node.store.begin() as tx:
        await tx.upsert_referral(
            ReferralRow(
                referral_id=REFERRAL,
                origin_system="12345",
                ids={"12345": ORDER_NO, "12351": "c0ffee00-case"},
                state="signed",
                early_warning=True,
                numbers={"12351": CASE_NO},
                last_snapshot={"caller": {"name": NAME, "phone": PHONE}},
            )
        )
        await tx.add_event(REFERRAL, "12351", "create_case", {"outcome": "applied"})
        apply_letter = await tx.park(
            DeadLetterIn(
                system="12351",
                stage="apply",
                reason="12351 refused the case: district_code",
                payload={  # a message as the transport parked it
                    "message_id": "m-1",
                    "routing_key": "hotline-bridge.to12351.shard0",
                    "body": json.dumps({"caller": {"name": NAME, "phone": PHONE}}),
                },
                referral_id=REFERRAL,
                field="district_code",
            )
        )
        intake_letter = await tx.park(
            DeadLetterIn(
                system="12345",
                stage="intake",
                reason="content over 4000 characters",
                payload={"record": {"content": f"{NAME}来电 {PHONE}"}},
                field="content",
            )
        )
    return apply_letter, intake_letter


def write_config(path: Path, store_file: Path, url: str) -> Path:
    listen = url.removeprefix("http://")
    path.write_text(
        f'[store]\nurl = "sqlite:///{store_file}"\n\n[admin]\nlisten = "{listen}"\n',
        encoding="utf-8",
    )
    return path


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with admin_node(tmp_path) as admin, fake_api(admin, FAKED) as url:
        apply_letter, intake_letter = await seed(admin)
        config = write_config(tmp_path / "cli.toml", tmp_path / "bridge.db", url)
        yield Node(admin, url, config, apply_letter, intake_letter)


async def cli(*args: str | int, token: str | None = READ, columns: int = 120) -> Result:
    """`hotline-bridge ARGS` in a thread (it runs its own event loop), with the token in
    $HOTLINE_BRIDGE_TOKEN; an exception other than an exit fails the test."""
    env = {"HOTLINE_BRIDGE_TOKEN": token, "COLUMNS": str(columns)}
    result = await asyncio.to_thread(CliRunner().invoke, main, [str(a) for a in args], env=env)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def no_personal_data(*texts: str) -> None:
    for text in texts:
        assert NAME not in text and PHONE not in text


# status ---------------------------------------------------------------------------------


async def test_status_puts_problems_first_and_its_json_is_the_api_answer(node: Node) -> None:
    node.admin.node.pollers[0].failing = True
    node.admin.node.pollers[0].last_error = "TransientError"
    doc = as_json(await cli("status", "--url", node.url, "--json"))
    assert doc["dead_letters"]["parked"] == 2 and doc["problems"]

    result = await cli("status", "--url", node.url)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("PROBLEMS")
    assert doc["problems"][0]["what"] in lines[1]
    assert lines.index(next(x for x in lines if "dead letters parked" in x)) > 1


async def test_status_takes_its_url_from_the_config(node: Node) -> None:
    doc = as_json(await cli("status", "--config", node.config, "--json"))
    assert doc["dead_letters"]["parked"] == 2


async def test_status_from_the_store_when_the_daemon_is_down(node: Node, tmp_path: Path) -> None:
    """--store reads the store read-only: the same shape where the store can tell."""
    from_api = as_json(await cli("status", "--url", node.url, "--json"))
    config = write_config(tmp_path / "down.toml", tmp_path / "bridge.db", "127.0.0.1:1")
    from_store = as_json(await cli("status", "--config", config, "--store", "--json"))
    assert from_store["source"] == "store"
    assert set(from_api) <= set(from_store)
    assert from_store["dead_letters"]["parked"] == from_api["dead_letters"]["parked"] == 2
    assert from_store["early_warnings_open"] == 1
    table = await cli("status", "--config", config, "--store")
    assert table.exit_code == 0
    assert "(read from the store; the daemon did not answer)" in table.stdout


async def test_store_fallback_refuses_a_store_that_does_not_exist(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", tmp_path / "none.db", "127.0.0.1:1")
    result = await cli("status", "--config", config, "--store")
    assert result.exit_code == 2 and "no store file" in result.stderr
    assert not (tmp_path / "none.db").exists()


# exit codes -----------------------------------------------------------------------------


async def test_a_wrong_token_exits_1_with_the_problem_title(node: Node) -> None:
    result = await cli("status", "--url", node.url, token="not-a-token")
    assert result.exit_code == 1
    assert result.stderr.startswith("unauthorized (HTTP 401)")


async def test_a_read_token_may_not_discard(node: Node) -> None:
    result = await cli("dead-letters", "discard", "--url", node.url, node.apply_letter)
    assert result.exit_code == 1 and "forbidden" in result.stderr
    row = await node.admin.node.store.get_dead_letter(node.apply_letter)
    assert row is not None and row.status == "parked"


async def test_no_answer_exits_3_and_suggests_the_store() -> None:
    result = await cli("status", "--url", f"http://127.0.0.1:{closed_port()}")
    assert result.exit_code == 3
    assert "is the daemon running? try --store" in result.stderr


async def test_no_token_is_a_usage_error(node: Node) -> None:
    result = await cli("status", "--url", node.url, token=None)
    assert result.exit_code == 2 and "HOTLINE_BRIDGE_TOKEN" in result.stderr


async def test_the_token_file_wins_over_the_environment(node: Node, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(OPERATE + "\n", encoding="utf-8")
    result = await cli(
        "dead-letters", "discard", "--url", node.url, "--token-file", token_file,
        node.intake_letter, "--reason", "test data",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    row = await node.admin.node.store.get_dead_letter(node.intake_letter)
    assert row is not None and row.status == "discarded"


# referrals ------------------------------------------------------------------------------


async def test_referrals_list_and_show_by_either_sides_number(node: Node) -> None:
    listed = ("referrals", "list", "--url", node.url, "--json")
    page = as_json(await cli(*listed, "--state", "signed"))
    assert [i["referral_id"] for i in page["items"]] == [REFERRAL]
    assert page["items"][0]["direction"] == "12345-12351"
    empty = as_json(await cli(*listed, "--state", "closed"))
    assert empty["items"] == []

    for key in (REFERRAL, f"12351:{CASE_NO}"):
        doc = as_json(await cli("referrals", "show", "--url", node.url, key, "--json"))
        assert doc["referral_id"] == REFERRAL
        assert "create_case" in [e["kind"] for e in doc["timeline"]]
    table = await cli("referrals", "show", "--url", node.url, REFERRAL)
    assert ORDER_NO in table.stdout and "create_case" in table.stdout
    no_personal_data(table.stdout, json.dumps(doc, ensure_ascii=False))


async def test_an_unknown_referral_exits_1_not_found(node: Node) -> None:
    result = await cli("referrals", "show", "--url", node.url, "12345:BJ12345-nothing")
    assert result.exit_code == 1 and result.stderr.startswith("not found (HTTP 404)")


# dead letters ---------------------------------------------------------------------------


async def test_dead_letters_list_from_the_api_and_from_the_store_agree(node: Node) -> None:
    from_api = as_json(await cli("dead-letters", "list", "--url", node.url, "--json"))
    from_store = as_json(
        await cli("dead-letters", "list", "--config", node.config, "--store", "--json")
    )
    fields = ("id", "status", "system", "stage", "reason", "field", "referral_id")
    assert [{k: i[k] for k in fields} for i in from_api["items"]] == [
        {k: i[k] for k in fields} for i in from_store["items"]
    ]
    assert {i["id"] for i in from_api["items"]} == {node.apply_letter, node.intake_letter}
    only = as_json(
        await cli("dead-letters", "list", "--url", node.url, "--system", "12351", "--json")
    )
    assert [i["id"] for i in only["items"]] == [node.apply_letter]
    by_reason = as_json(
        await cli("dead-letters", "list", "--config", node.config, "--store",
                  "--reason", "CONTENT OVER", "--json")
    )  # fmt: skip
    assert [i["id"] for i in by_reason["items"]] == [node.intake_letter]
    table = await cli("dead-letters", "list", "--url", node.url)
    assert "district_code" in table.stdout and "content over 4000" in table.stdout
    no_personal_data(table.stdout, json.dumps(from_api, ensure_ascii=False))
    no_personal_data(json.dumps(from_store, ensure_ascii=False))


async def test_tables_fit_a_narrow_terminal_without_cutting_what_they_show(node: Node) -> None:
    """Columns of less use go first; what stays folds, it is never cut off."""
    shown = {
        ("dead-letters", "list"): ("refused", "characters", "district"),
        ("referrals", "list"): ("signed",),
        ("status",): ("dead letters parked", "dispatched"),
    }
    for args, words in shown.items():
        result = await cli(*args, "--url", node.url, columns=60)
        assert result.exit_code == 0, result.output
        assert max(len(line) for line in result.stdout.splitlines()) <= 60, result.stdout
        for word in words:
            assert word in result.stdout, (word, result.stdout)
    # a long id folds within its column, whole
    listed = await cli("referrals", "list", "--url", node.url, columns=60)
    first_column = "".join(
        line.split("│")[0].strip() for line in listed.stdout.splitlines() if "│" in line
    )
    assert "12345:BJ12345-20261129-004211" in first_column, listed.stdout


async def test_replay_by_id_then_a_second_replay_is_a_conflict(node: Node) -> None:
    store = node.admin.node.store
    replay = ("dead-letters", "replay", "--url", node.url, node.apply_letter)
    result = await cli(*replay, token=OPERATE)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"{node.apply_letter}: ")
    assert (await store.get_dead_letter(node.apply_letter)).status == "replayed"  # type: ignore[union-attr]

    again = await cli(*replay, 999_999, token=OPERATE)
    assert again.exit_code == 1
    assert f"{node.apply_letter}: conflict" in again.stderr
    assert "999999: not found" in again.stderr


async def test_replay_needs_ids_or_a_filter(node: Node) -> None:
    neither = await cli("dead-letters", "replay", "--url", node.url, token=OPERATE)
    assert neither.exit_code == 2
    both = await cli(
        "dead-letters", "replay", "--url", node.url, "--system", "12351", "7", token=OPERATE
    )
    assert both.exit_code == 2 and "only with --filter" in both.output


async def test_the_audit_log_is_real(node: Node) -> None:
    """The node's own /api/v1/audit through the client, its pages followed."""
    async with AdminClient(node.url, OPERATE) as api:
        before = await api.pages("/api/v1/audit", every=True, limit=1)
    result = await cli("dead-letters", "discard", "--url", node.url, node.apply_letter,
                       token=OPERATE)  # fmt: skip
    assert result.exit_code == 0, result.output
    async with AdminClient(node.url, READ) as api:
        after = await api.pages("/api/v1/audit", every=True, limit=1)
    if "/api/v1/dead-letters" not in FAKED:  # the real discard is audited
        assert len(after["items"]) == len(before["items"]) + 1
    ids = [item["id"] for item in after["items"]]
    assert len(ids) == len(set(ids)) and after["next_cursor"] is None


async def test_readyz_answers_a_problem_the_client_reads(node: Node) -> None:
    node.admin.node.pollers[1].failing = True
    node.admin.node.pollers[1].last_error = "Unavailable"
    async with AdminClient(node.url, READ) as api:
        with pytest.raises(ApiError) as caught:
            await api.get("/readyz")
    assert caught.value.status == 503 and caught.value.title == "not ready"


# jobs and reconciliations: unit tests of the client against a scripted fake ---------------


def job(status: str, done: int, failed: int = 0, total: int | None = 3) -> dict[str, Any]:
    at = "2026-11-29T01:00:00+00:00"
    return {"id": 7, "kind": "replay", "status": status, "total": total, "done": done,
            "failed": failed, "created_at": at, "updated_at": at,
            "finished_at": at if status in ("done", "failed") else None,
            "result": {"replayed": done, "failed": failed}}  # fmt: skip


def run(status: str, checked: int, report: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": 3, "status": status, "trigger": "api", "dry_run": True,
            "started_at": "2026-11-29T01:00:00+00:00",
            "finished_at": None if status == "running" else "2026-11-29T01:00:09+00:00",
            "counts": {"checked": checked}, "report": report}  # fmt: skip


@pytest.fixture
async def scripted(tmp_path: Path) -> AsyncIterator[tuple[str, Scripted]]:
    async with admin_node(tmp_path) as admin:
        script = Scripted()
        async with fake_api(admin, FAKED, scripted=script) as url:
            yield url, script


async def test_replay_by_filter_follows_its_job_until_done(
    scripted: tuple[str, Scripted],
) -> None:
    url, script = scripted
    script.job_steps = [job("queued", 0), job("running", 1), job("running", 2), job("done", 3)]
    result = await cli(
        "dead-letters", "replay", "--url", url, "--filter", "--system", "12351",
        "--since", "2026-11-28T00:00:00+08:00", "--mapping", "original", token=OPERATE,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    [(path, body)] = script.posted
    assert path == "/api/v1/dead-letters/replay"
    assert body == {
        "filter": {"system": "12351", "since": "2026-11-28T00:00:00+08:00"},
        "mapping": "original",
    }
    assert script.gets["job"] == 4  # followed until done, not further
    assert "3/3" in result.stderr  # the progress bar's last state
    assert "job 7 done: 3 of 3 done, 0 failed" in result.stdout


async def test_a_replay_job_with_failures_exits_1(scripted: tuple[str, Scripted]) -> None:
    url, script = scripted
    script.job_steps = [job("running", 0, total=None), job("done", 2, failed=1)]
    result = await cli("dead-letters", "replay", "--url", url, "--filter", "--stage", "apply",
                       "--json", token=OPERATE)  # fmt: skip
    assert result.exit_code == 1
    assert json.loads(result.stdout)["failed"] == 1
    assert result.stderr == ""  # --json: no progress bar


async def test_reconcile_shows_progress_then_the_report(scripted: tuple[str, Scripted]) -> None:
    url, script = scripted
    report = {"republished": 2, "missing": ["12345:BJ12345-20261129-000001"]}
    script.run_steps = [run("running", 0), run("running", 5), run("done", 9, report)]
    result = await cli("reconcile", "--url", url, "--dry-run", token=OPERATE)
    assert result.exit_code == 0, result.output
    assert script.posted == [("/api/v1/reconciliations", {"dry_run": True})]
    assert script.gets["run"] == 3
    assert "#3 done (dry run)" in result.stdout and "checked 9" in result.stdout
    assert "republished" in result.stdout and "BJ12345-20261129-000001" in result.stdout
    as_doc = await cli("reconcile", "--url", url, "--json", token=OPERATE)
    assert json.loads(as_doc.stdout)["report"] == report


async def test_a_failed_reconciliation_exits_1(scripted: tuple[str, Scripted]) -> None:
    url, script = scripted
    script.run_steps = [run("running", 0), run("failed", 1)]
    result = await cli("reconcile", "--url", url, token=OPERATE)
    assert result.exit_code == 1 and "failed" in result.stdout


# check-config --connect -----------------------------------------------------------------


TWO = ("12345", "12351")
"""The partners these checks configure (a node of the two first partners)."""


def connect_config(path: Path, sims: Simulators, *, amqp_url: str, store_url: str) -> Path:
    sections = sims.config_sections()
    settings = Settings(amqp={"url": amqp_url}, store={"url": store_url}, **sections)
    path.write_text(settings_to_toml(settings), encoding="utf-8")
    return path


async def test_check_config_connect_says_ok_for_each_part(tmp_path: Path) -> None:
    async with Simulators(free_ports=True, names=TWO) as sims:
        config = connect_config(
            tmp_path / "c.toml", sims,
            amqp_url="amqp://guest:guest@127.0.0.1:5672/",
            store_url=f"sqlite:///{tmp_path / 'bridge.db'}",
        )  # fmt: skip
        result = await cli("check-config", "--config", config, "--connect")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == [
        "broker: ok", "store: ok", "hotline 12345: ok", "hotline 12351: ok",
    ]  # fmt: skip


async def test_check_config_connect_names_what_fails_and_no_secret(tmp_path: Path) -> None:
    async with Simulators(free_ports=True, names=TWO, client_secret="s3cret-12345") as sims:
        sims.running["12345"].config["client_secret"] = "wrong-secret-value"  # refused by 12345
        config = connect_config(
            tmp_path / "c.toml", sims,
            amqp_url=f"amqp://guest:amqp-pw@127.0.0.1:{closed_port()}/",
            store_url=f"postgresql://postgres:pg-pw@127.0.0.1:{closed_port()}/nothing",
        )  # fmt: skip
        result = await cli("check-config", "--config", config, "--connect")
    assert result.exit_code == 1, result.output
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines()[1:])
    assert lines["broker"].startswith("FAILED: ")
    assert lines["store"].startswith("FAILED: ")
    assert lines["hotline 12345"].startswith("FAILED: ")
    assert lines["hotline 12351"] == "ok"
    for secret in ("amqp-pw", "pg-pw", "wrong-secret-value", "s3cret-12345", "demo-key"):
        assert secret not in result.output


async def test_a_url_that_is_not_http_is_a_usage_error() -> None:
    result = await cli("status", "--url", "127.0.0.1:8080")
    assert result.exit_code == 2 and "is not http://host:port" in result.stderr
