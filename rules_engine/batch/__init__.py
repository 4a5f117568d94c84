"""Batch settlement: claims and fee lines as tables, settled by a vectorised evaluator over the
same compiled packs as the per-claim path, streamed partition by partition (optionally on Dask).

    from rules_engine.batch import settle_tables
    out = settle_tables(claims_df, lines_df, "regions")   # pandas in, pandas out
    out.setlinfo                                           # one row per claim, national field names

The per-claim path (`rules_engine.settle`) is the reference: every number here must equal it to
the fen. Claims the vectorised path cannot express are settled by the per-claim path (counted in
the run's summary as `fallback_claims`), and a sample of every partition is re-settled by the
per-claim path and compared (see docs/batch.md).
"""
from __future__ import annotations

from .tables import BatchInputError, read_claims_input  # noqa: F401
from .vectorised import BatchResult, PackContext, settle_tables  # noqa: F401

__all__ = ["BatchInputError", "BatchResult", "PackContext", "read_claims_input", "settle_tables"]
