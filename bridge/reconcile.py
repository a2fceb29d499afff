"""The reconciler lives in `bridge.engine.reconcile` (its docstring says what a run
does and reports); this name is kept for the callers that import it from here."""

from bridge.engine.reconcile import KINDS, REPORT_ITEMS, SETTLED, Reconciler

__all__ = ["KINDS", "REPORT_ITEMS", "SETTLED", "Reconciler"]
