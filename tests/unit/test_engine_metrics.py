"""The engine's counters: one registry per node, exposed by the admin server's `/metrics`
beside its own families, with small fixed label sets."""

from __future__ import annotations

from test_admin import Admin, admin, families, sample  # noqa: F401 (the fixture)

from bridge.engine.metrics import PARK_REASONS, EngineMetrics


async def test_the_node_engine_counters_show_in_metrics(admin: Admin) -> None:  # noqa: F811
    metrics = admin.node.metrics
    metrics.action("12351", "create_case", "applied")
    metrics.action("12351", "create_case", "applied")
    metrics.action("12345", "sign", "already_applied")
    metrics.retry("12345")
    metrics.park("12345", "intake", "mapping")

    status, _, text = await admin.get("/metrics")
    assert status == 200
    found = families(text)
    p = "hotline_bridge_"
    actions = found[p + "actions"]
    assert sample(actions, system="12351", kind="create_case", outcome="applied") == 2
    assert sample(actions, system="12345", kind="sign", outcome="already_applied") == 1
    assert sample(found[p + "retries"], system="12345") == 1
    assert sample(found[p + "parked"], system="12345", stage="intake", reason="mapping") == 1
    assert sample(found[p + "store_up"]) == 1  # the admin server's own families stay


def test_nodes_do_not_share_counters() -> None:
    one, two = EngineMetrics(), EngineMetrics()
    one.retry("12351")
    labels = {"system": "12351"}
    assert one.registry.get_sample_value("hotline_bridge_retries_total", labels) == 1
    assert two.registry.get_sample_value("hotline_bridge_retries_total", labels) is None


def test_park_reasons_are_a_small_fixed_set() -> None:
    assert len(PARK_REASONS) == len(set(PARK_REASONS)) < 12
    assert "mapping" in PARK_REASONS and "refused" in PARK_REASONS


def test_reconciliation_runs_and_results_are_counted() -> None:
    metrics = EngineMetrics()
    metrics.reconciled("done", False, {"checked": 7, "changed": 2, "missing": 0})
    metrics.reconciled("done", True, {"checked": 3, "changed": 1})
    metrics.reconciled("failed", False, {"checked": 1})
    value = metrics.registry.get_sample_value
    runs, results = (
        "hotline_bridge_reconciliations_total",
        "hotline_bridge_reconciliation_results_total",
    )
    assert value(runs, {"status": "done", "dry_run": "false"}) == 1
    assert value(runs, {"status": "done", "dry_run": "true"}) == 1
    assert value(runs, {"status": "failed", "dry_run": "false"}) == 1
    assert value(results, {"result": "checked", "dry_run": "false"}) == 8
    assert value(results, {"result": "changed", "dry_run": "true"}) == 1
