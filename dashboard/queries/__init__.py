"""Read-only queries over the results database, for the dashboard's pages.

Pure functions: an engine (opened read-only by :func:`open_readonly`) and the claims in, plain
data out (pandas frames, :class:`suite.report.ClaimRow`). No Streamlit and no torch here; the
pages in ``dashboard/views`` only lay the results out, and ``dashboard/ui.py`` caches them.

Verdicts are computed exactly as ``python -m suite report`` computes them (the plan of each
claim at a tier, joined with the stored runs, judged by :func:`suite.verdict.judge`), but over
light run records (the columns the judge needs and only the metrics asked for), so a database of
ten thousand runs with long training curves is judged without loading its curves.

One module per topic, everything importable from here: ``source`` (opening, status, stored
claims), ``verdicts`` (judging, the overview), ``claim`` (one claim), ``runs`` (all runs,
cost), ``kernels`` (pool benchmarks), ``papers`` (published tables beside ours).
"""

from dashboard.queries.claim import (  # noqa: F401
    DIFF_ARM,
    RUN_COLUMNS,
    accepted_region,
    artifact,
    artifact_index,
    claim_runs,
    find_row,
    interval_frame,
    planned_keys,
    recipe,
    recipe_table,
    run_metrics,
    seed_points,
    series_frame,
)
from dashboard.queries.kernels import (  # noqa: F401
    KERNEL_METRIC,
    kernel_frame,
    kernel_summary,
)
from dashboard.queries.papers import (  # noqa: F401
    Cell,
    cells_frame,
    paper_cells,
    paper_of_ref,
    ref_arms,
    unmapped_claims,
)
from dashboard.queries.runs import (  # noqa: F401
    FLOP_METRICS,
    THROUGHPUT_METRICS,
    TRAIN_IMAGES,
    cost_by,
    filter_runs,
    full_estimates,
    run_detail,
    runs_frame,
)
from dashboard.queries.source import (  # noqa: F401
    TABLES,
    DbStatus,
    NoDatabase,
    chunks,
    claim_from_definition,
    claim_history,
    claims_from_db,
    db_status,
    open_readonly,
)
from dashboard.queries.verdicts import (  # noqa: F401
    METRIC_FOR_PUBLISHED,
    PlanIndex,
    RunLite,
    claim_refs,
    expected_text,
    filter_overview,
    interval_text,
    judge_index,
    judged_metrics,
    load_runs,
    main_tier,
    ok_runs_by_tier,
    overview_frame,
    plan_index,
    published_rows_of,
    published_text,
    tiers_with_runs,
    verdict_counts,
    verdicts,
)
