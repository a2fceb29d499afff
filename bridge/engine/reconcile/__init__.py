"""Reconciliation: find what the feeds missed, in bounded memory, inside a share of the
rate budget. One run, for each side this node runs (a lease keeps it to one node):

1. **Window lists.** Re-list the side's own system over the last `window_s`
   (`[bridge] reconcile_window_s`): every feed read from `Hotline.window_position(feed,
   now - window_s)` page by page until `more` is false (that position is never stored).
   Each record goes through the side's intake, as the poller's would, and is compared
   with the ledger by content (`feed_seen`: 12345 the whole order, 12351 its version):
   `unseen` (no referral for it yet), `changed` (it differs from what was last read).
   Either is recorded and its snapshot re-published (marked as a replay) through the
   normal snapshot path: the other node performs whatever is missing. A record the intake
   does not forward (not a crossing case, handled outside the bridge) is no finding.
2. **Reads.** Every open referral this side knows (`Store.open_referrals`: keyset pages
   by `referral_id`, no OFFSET) whose native id the window lists did not cover is read
   with one `fetch`; a hotline whose lists are a history (`window_current` false: 12351)
   covers nothing, so every open crossing case is read. Same comparison; `missing`
   (the source does not have it), `failed` (it did not answer), `parked` (the record no
   longer maps: parked by this run).
3. **Checks** on every referral handled (listed as it is now, or read), against the
   ledger (`Tx.referral_facts`): `action_missing` (an action recorded as done on this
   system that the record does not show: `IntakePolicy.missing_actions`),
   `state_mismatch` (both sides' last snapshots have been applied on the other side and
   still one is answered or ended while the other is being worked on: see
   `checks.state_mismatch`), `parked_unresolved` (a dead letter of the referral still
   parked). These are reported, never acted on.

Every hotline call of a run is made inside `RequestBudget.share(rate_share)` (`[bridge]
reconcile_rate_share`): at most that share of the hotline's budget, never ahead of an
early warning. Memory: one page of the ledger or a feed at a time, plus the set of
native ids the window lists covered (bounded by the window, not the ledger).

Public API: `Reconciler.run_once(trigger, *, dry_run=False) -> run_id`;
`Reconciler.perform(run_id, *, trigger, dry_run=False)` (a run created with
`Store.create_reconciliation`); `Reconciler.run()` (periodic, under the lease).
A dry run makes the same reads and comparisons in transactions it rolls back: nothing
recorded, queued or parked; it reports the same list.

The run's `counts` (whole, every key always present): `checked` (referrals compared),
`listed` (records the window lists returned), `read` (fetches), `republished`
(snapshots queued again; in a dry run, that would have been), `repaired` (findings a
snapshot was re-published for), and one per finding kind: `unseen`, `changed`,
`state_mismatch`, `action_missing`, `parked`, `parked_unresolved`, `missing`, `failed`.
Its `report`::

    {"dry_run": bool, "truncated": bool,   # truncated: some kind had over 100 items
     "items": [{"kind": str, "referral_id": str | None, "system": str,
                "numbers": {"<partner>": str | None, ...},
                "detail": {...},          # identifiers and states only
                "repaired": bool, "why": str | None}]}

`repaired` is true when the run re-published the referral's snapshot (a dry run: false,
why "dry run"); otherwise `why` says why not.
"""

from bridge.engine.reconcile.findings import KINDS, REPORT_ITEMS
from bridge.engine.reconcile.reconciler import SETTLED, Reconciler

__all__ = ["KINDS", "REPORT_ITEMS", "SETTLED", "Reconciler"]
