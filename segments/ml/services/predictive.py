"""Predictive scores: the churn and value models' training (as of a day: today, or a past day
for a back-test), and the scoring of every customer."""

import datetime as dt
import math

import numpy as np
import pandas as pd
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from segments.ml import bulk, features
from segments.ml.churn import (
    _auc,
    _spearman,
    check_history,
    predictive_fit,
    predictive_score,
    reasons_for_rows,
    with_lifetime_features,
)
from segments.ml.models import CustomerScore, MLJob, PredictiveModel
from segments.ml.scoring import pipeline_dump, pipeline_load
from segments.ml.services.lifetime import as_of_check, backtest_scores_write
from segments.ml.services.runs import _job_progress, _reference


def _min_buyers() -> int:
    return settings.ML_CHURN_MIN_BUYERS


def _min_history_days() -> int:
    return settings.ML_CHURN_MIN_HISTORY_DAYS


def predictive_train(
    *,
    horizon_days: int = 90,
    as_of: dt.date | str | None = None,
    reference_date: dt.date | str | None = None,
    min_buyers: int | None = None,
    min_history_days: int | None = None,
    seed: int = 0,
    job: MLJob | None = None,
) -> PredictiveModel:
    """Train churn risk and expected value as of a day (today by default; `reference_date` is
    the older name): features at the cut-off (as-of day minus the horizon), outcomes in the
    horizon after it; chosen and evaluated on held-out customers against the baselines.

    As of today, a model that beats both baselines becomes the active one and scores every buyer;
    one that does not is kept, inactive, with the reason. As of a past day the model is a
    back-test: never active, its scores of that day kept with it and compared with what
    happened since. Refuses on too little data."""
    if not isinstance(horizon_days, int) or not 7 <= horizon_days <= 730:
        raise ValidationError({"horizon_days": "expected a whole number of days from 7 to 730"})
    day = as_of_check(as_of if as_of is not None else reference_date)
    backtest = day < timezone.localdate()
    min_buyers = _min_buyers() if min_buyers is None else min_buyers
    min_history_days = _min_history_days() if min_history_days is None else min_history_days
    reference = _reference(day)
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
    activate = models.metrics["beats_baselines"] and not backtest
    with transaction.atomic():
        if activate:
            PredictiveModel.objects.filter(active=True).update(active=False)
        model = PredictiveModel.objects.create(
            trained_at=timezone.now(),
            horizon_days=horizon_days,
            cutoff=timezone.localdate(cutoff),
            as_of=day,
            backtest=backtest,
            features=models.features,
            buyers=len(train),
            metrics={**models.metrics, "reason_baseline": models.baseline},
            lifetime=models.lifetime,
            churn_pipeline=pipeline_dump(models.churn),
            value_pipeline=pipeline_dump(models.value),
            active=activate,
        )
    _job_progress(job, 70, "scoring customers")
    if activate:
        predictive_score_all(model=model)
    elif backtest:
        predictive_backtest(model=model)
    return model


def _score_frame(model: PredictiveModel, reference: dt.datetime):
    """The model's features of every buyer as of `reference`, and their scores."""
    frame = features.predictive_features(reference=reference)
    if frame.empty:
        return frame, None
    columns = with_lifetime_features(frame, model.lifetime, model.horizon_days)
    columns = columns.reindex(columns=model.features)
    scored = predictive_score(
        pipeline_load(model.churn_pipeline),
        pipeline_load(model.value_pipeline),
        columns,
        value_cap=model.metrics.get("value_cap", 1e9),
        baseline=model.metrics.get("reason_baseline"),
    )
    return columns, scored


def predictive_backtest(*, model: PredictiveModel) -> dict:
    """Score every buyer as of the back-test's day, keep the scores with the model, and compare
    them with what the customers did since (up to the horizon)."""
    reference = _reference(model.as_of)
    frame, scored = _score_frame(model, reference)
    if scored is None:
        return {}
    risk, value, _churn_c, _value_c = scored
    elapsed = (timezone.now() - reference).total_seconds() / 86400
    days = min(model.horizon_days, math.ceil(max(elapsed, 0)))
    report = {"as_of": model.as_of.isoformat(), "days_since": days, "customers": len(frame)}
    if days >= 1:
        since = features.future_purchases(start=reference, days=days).reindex(frame.index)
        churned = since["frequency"].fillna(0).to_numpy() == 0
        spent = since["monetary"].fillna(0).to_numpy()
        report |= {
            "churned_share": float(churned.mean()),
            "churn_roc_auc": _auc(churned.astype(int), risk),
            "recency_roc_auc": _auc(churned.astype(int), frame["recency"].to_numpy()),
            "value_spearman": _spearman(value, spent),
            "value_predicted": float(value.sum() * days / model.horizon_days),
            "value_actual": float(spent.sum()),
            "note": ""
            if days >= model.horizon_days
            else f"Only {days} of the {model.horizon_days} days have passed.",
        }
    PredictiveModel.objects.filter(pk=model.pk).update(metrics={**model.metrics, "report": report})
    model.metrics = {**model.metrics, "report": report}
    backtest_scores_write(
        predictive_model=model,
        frame=pd.DataFrame({"churn_risk": risk, "predicted_value": value}, index=frame.index),
    )
    return report


def predictive_score_all(
    *,
    model: PredictiveModel | None = None,
    reference_date: dt.date | None = None,
    job: MLJob | None = None,
) -> int:
    """Score every past buyer with the active model (as of today): churn risk, expected value,
    reasons. Writes the current scores only; a back-test never scores here."""
    model = model or PredictiveModel.objects.filter(active=True).first()
    if model is None or model.backtest:
        return 0
    _job_progress(job, 20, "loading features")
    frame, scored = _score_frame(model, _reference(reference_date))
    now = timezone.now()
    if scored is None:
        return 0
    risk, value, churn_c, value_c = scored
    codes, values, effects = reasons_for_rows(
        model.features, frame.to_numpy(dtype="float64"), churn_c, value_c
    )
    _job_progress(job, 80, "writing scores")
    return predictive_scores_write(
        customer_ids=frame.index.to_numpy(dtype="int64"),
        risk=risk,
        value=value,
        reasons=(codes, values, effects),
        at=now,
    )


def predictive_scores_write(
    *,
    customer_ids: np.ndarray,
    risk: np.ndarray,
    value: np.ndarray,
    reasons: tuple[np.ndarray, np.ndarray, np.ndarray],
    at: dt.datetime,
) -> int:
    """Write the current churn risk, value and reasons (codes, values, effects) of these
    customers in two statements (bulk.scores_write); other customers' are cleared."""
    codes, values, effects = reasons
    slots = range(codes.shape[1])
    columns = {
        "churn_risk": ("float8", np.round(risk, 4)),
        "predicted_value": ("float8", np.round(np.clip(np.nan_to_num(value), 0, 1e11), 2)),
        **{f"f{k}": ("int2", codes[:, k]) for k in slots},
        **{f"v{k}": ("float8", values[:, k]) for k in slots},
        **{f"e{k}": ("float8", effects[:, k]) for k in slots},
    }

    def array(prefix: str) -> str:
        return "ARRAY[" + ", ".join(f"t.{prefix}{k}" for k in slots) + "]"

    with transaction.atomic():
        written = bulk.scores_write(
            customer_ids=customer_ids,
            columns=columns,
            assignments={
                "churn_risk": "t.churn_risk",
                "predicted_value": "t.predicted_value::numeric(14, 2)",
                "reason_features": array("f"),
                "reason_values": array("v"),
                "reason_effects": array("e"),
                "computed_at": "%(now)s",
            },
            params={"now": at},
        )
        CustomerScore.objects.exclude(computed_at=at).exclude(churn_risk=None).update(
            churn_risk=None,
            predicted_value=None,
            reason_features=[],
            reason_values=[],
            reason_effects=[],
            computed_at=at,
        )
    return written
