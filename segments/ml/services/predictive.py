"""Predictive scores: the churn and value models' training, and the scoring of every customer."""

import datetime as dt

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from segments.ml import bulk, features
from segments.ml.churn import check_history, predictive_fit, predictive_score, reasons_in_words
from segments.ml.models import CustomerScore, MLJob, PredictiveModel
from segments.ml.scoring import pipeline_dump, pipeline_load
from segments.ml.services.runs import _job_progress, _reference


def _min_buyers() -> int:
    return settings.ML_CHURN_MIN_BUYERS


def _min_history_days() -> int:
    return settings.ML_CHURN_MIN_HISTORY_DAYS


def predictive_train(
    *,
    horizon_days: int = 90,
    reference_date: dt.date | str | None = None,
    min_buyers: int | None = None,
    min_history_days: int | None = None,
    seed: int = 0,
    job: MLJob | None = None,
) -> PredictiveModel:
    """Train churn risk and expected value on a past cut-off (today minus the horizon), evaluate
    them on held-out customers, store them, and score every buyer. Refuses on too little data."""
    if not isinstance(horizon_days, int) or not 7 <= horizon_days <= 730:
        raise ValidationError({"horizon_days": "expected a whole number of days from 7 to 730"})
    if isinstance(reference_date, str):
        reference_date = dt.date.fromisoformat(reference_date)
    min_buyers = _min_buyers() if min_buyers is None else min_buyers
    min_history_days = _min_history_days() if min_history_days is None else min_history_days
    reference = _reference(reference_date)
    cutoff = reference - dt.timedelta(days=horizon_days)
    _job_progress(job, 5, "checking the history")
    first, _last = features.purchase_span()
    history = (cutoff - first).total_seconds() / 86400 if first and first < cutoff else 0.0
    train = features.predictive_features(reference=cutoff)
    check_history(
        buyers=len(train),
        history_days=history,
        min_buyers=min_buyers,
        min_history_days=min_history_days,
    )
    _job_progress(job, 30, "training the churn and value models")
    future = features.future_purchases(start=cutoff, days=horizon_days)
    models = predictive_fit(train, future, horizon_days=horizon_days, seed=seed)
    with transaction.atomic():
        PredictiveModel.objects.filter(active=True).update(active=False)
        model = PredictiveModel.objects.create(
            trained_at=timezone.now(),
            horizon_days=horizon_days,
            cutoff=timezone.localdate(cutoff),
            features=models.features,
            buyers=len(train),
            metrics=models.metrics,
            churn_pipeline=pipeline_dump(models.churn),
            value_pipeline=pipeline_dump(models.value),
        )
    _job_progress(job, 70, "scoring customers")
    predictive_score_all(model=model, reference_date=reference_date)
    return model


def predictive_score_all(
    *,
    model: PredictiveModel | None = None,
    reference_date: dt.date | None = None,
    job: MLJob | None = None,
) -> int:
    """Score every past buyer with the active model: churn risk, expected value, reasons."""
    model = model or PredictiveModel.objects.filter(active=True).first()
    if model is None:
        return 0
    _job_progress(job, 20, "loading features")
    frame = features.predictive_features(reference=_reference(reference_date))
    frame = frame.reindex(columns=model.features)
    now = timezone.now()
    if frame.empty:
        return 0
    risk, value, churn_c, value_c = predictive_score(
        pipeline_load(model.churn_pipeline),
        pipeline_load(model.value_pipeline),
        frame,
        value_cap=model.metrics.get("value_cap", 1e9),
    )
    values = frame.to_numpy(dtype="float64")
    reasons = [
        reasons_in_words(model.features, values[i], churn_c[i], value_c[i])
        for i in range(len(frame))
    ]
    out = pd.DataFrame(
        {
            "customer_id": frame.index.astype("int64"),
            "churn_risk": np.round(risk, 4),
            "predicted_value": np.round(value, 2),
            "reasons": reasons,
            "computed_at": now,
        }
    )
    _job_progress(job, 80, "writing scores")
    with transaction.atomic():
        bulk.scores_upsert(out, ["churn_risk", "predicted_value", "reasons", "computed_at"])
        CustomerScore.objects.exclude(computed_at=now).exclude(churn_risk=None).update(
            churn_risk=None, predicted_value=None, reasons={}, computed_at=now
        )
    return len(out)
