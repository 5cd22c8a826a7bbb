"""Every write of RFM, ML segments and predictive scores: runs, training, assignment, renames.

One module per idea; every public name is imported here, so callers import from
`segments.ml.services`: rfm (scores, classes and their segments), clustering (ML segments:
definition, training, assignment, cluster names), predictive (churn and value models, nightly
scoring), lifetime (BG/NBD x Gamma-Gamma lifetime value and its back-tests), jobs (an ML job queued on a worker and run), runs (what every run shares).
"""

from segments.ml.services.clustering import (
    ALGORITHMS,
    ATTR_KEY,
    SCALINGS,
    cluster_rename,
    ml_segment_assign,
    ml_segment_create,
    ml_segment_delete,
    ml_segment_train,
    ml_segment_update,
    ml_segments_assign_all,
)
from segments.ml.services.jobs import ml_job_queue, ml_job_run
from segments.ml.services.lifetime import as_of_check, lifetime_model_fit
from segments.ml.services.predictive import predictive_score_all, predictive_train
from segments.ml.services.rfm import (
    RFM_COLUMNS,
    rfm_class_segments_ensure,
    rfm_refresh,
    rfm_refresh_queue,
)

__all__ = [
    "RFM_COLUMNS",
    "rfm_class_segments_ensure",
    "rfm_refresh",
    "rfm_refresh_queue",
    "ATTR_KEY",
    "ALGORITHMS",
    "SCALINGS",
    "ml_segment_create",
    "ml_segment_update",
    "ml_segment_delete",
    "ml_segment_train",
    "ml_segment_assign",
    "ml_segments_assign_all",
    "cluster_rename",
    "predictive_train",
    "predictive_score_all",
    "lifetime_model_fit",
    "as_of_check",
    "ml_job_queue",
    "ml_job_run",
]
