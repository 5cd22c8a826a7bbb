"""Lifetime value: BG/NBD x Gamma-Gamma fitted as of a date, every buyer's expected purchases,
P(alive) and discounted value over the horizon; a fit as of a past date is a back-test whose
scores stay with its report."""

import datetime as dt
import math

import numpy as np
import pandas as pd
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone
from scipy import stats

from segments.ml import bulk, clv, features
from segments.ml.models import BacktestScore, CustomerScore, LifetimeModel, MLJob
from segments.ml.services.runs import _job_progress, _reference


def _as_date(value: dt.date | str | None, field: str) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValidationError({field: "expected a date as YYYY-MM-DD"}) from None


def as_of_check(as_of: dt.date | str | None, field: str = "as_of") -> dt.date:
    """The day a training or scoring is "as of": today when empty, never in the future."""
    day = _as_date(as_of, field) or timezone.localdate()
    if day > timezone.localdate():
        raise ValidationError({field: "cannot be in the future: nothing is known about it yet"})
    return day


def lifetime_fit_frame(summary: pd.DataFrame, *, seed: int = 0) -> tuple[clv.BgNbd, clv.GammaGamma]:
    """Both models fitted on a summary (see features.lifetime_summary)."""
    usable = summary[summary["T"] > 0]
    bgnbd = clv.bgnbd_fit(usable["x"], usable["t_x"], usable["T"], seed=seed)
    gg = clv.gamma_gamma_fit(usable["n"], usable["m"], seed=seed)
    return bgnbd, gg


def lifetime_scores(
    bgnbd: clv.BgNbd,
    gg: clv.GammaGamma,
    summary: pd.DataFrame,
    *,
    horizon_days: float,
    annual_discount: float,
) -> pd.DataFrame:
    """expected_purchases, p_alive and lifetime_value of every row of the summary."""
    args = {k: summary[k].to_numpy() for k in ("x", "t_x", "T")}
    purchases, value = clv.lifetime_value(
        bgnbd,
        gg,
        **args,
        n=summary["n"].to_numpy(),
        m=summary["m"].to_numpy(),
        horizon_days=horizon_days,
        annual_discount=annual_discount,
    )
    return pd.DataFrame(
        {
            "expected_purchases": purchases,
            "p_alive": clv.p_alive(bgnbd, **args),
            "lifetime_value": value,
        },
        index=summary.index,
    )


def lifetime_model_fit(
    *,
    as_of: dt.date | str | None = None,
    horizon_days: int = 365,
    annual_discount: float = 0.1,
    seed: int = 0,
    job: MLJob | None = None,
) -> LifetimeModel:
    """Fit BG/NBD x Gamma-Gamma on every purchase up to the end of `as_of` (today by default)
    and score every buyer. As of today: the current model, its scores in CustomerScore. As of a
    past day: a back-test, its scores kept with it and compared with what happened since."""
    if not isinstance(horizon_days, int) or not 7 <= horizon_days <= 3650:
        raise ValidationError({"horizon_days": "expected a whole number of days from 7 to 3650"})
    if not isinstance(annual_discount, int | float) or not 0 <= annual_discount < 1:
        raise ValidationError({"annual_discount": "expected a yearly rate from 0 to 0.99"})
    as_of = as_of_check(as_of)
    backtest = as_of < timezone.localdate()
    reference = _reference(as_of)
    _job_progress(job, 10, "summarising purchases")
    summary = features.lifetime_summary(reference=reference)
    _job_progress(job, 30, "fitting BG/NBD and Gamma-Gamma")
    try:
        bgnbd, gg = lifetime_fit_frame(summary, seed=seed)
    except clv.FitFailed as exc:
        raise ValidationError({"as_of": f"{exc} (purchases before {as_of})"}) from None
    _job_progress(job, 60, "scoring customers")
    scores = lifetime_scores(
        bgnbd, gg, summary, horizon_days=horizon_days, annual_discount=annual_discount
    )
    metrics = {
        "buyers": int(len(summary)),
        "repeat_buyers": int((summary["x"] > 0).sum()),
        "mean_spend_per_purchase": gg.mean_spend,
        "expected_purchases_total": float(scores["expected_purchases"].sum()),
        "lifetime_value_total": float(scores["lifetime_value"].sum()),
        "new_customer_purchases": clv.population_expected_purchases(bgnbd, horizon_days),
    }
    now = timezone.now()
    with transaction.atomic():
        model = LifetimeModel.objects.create(
            trained_at=now,
            as_of=as_of,
            horizon_days=horizon_days,
            annual_discount=annual_discount,
            bgnbd=bgnbd.as_dict(),
            gamma_gamma=gg.as_dict(),
            customers=len(summary),
            metrics=metrics,
            backtest=backtest,
        )
        _job_progress(job, 80, "writing scores")
        if backtest:
            model.metrics["report"] = lifetime_backtest_report(
                bgnbd, gg, summary, scores, reference=reference
            )
            model.save(update_fields=["metrics"])
            backtest_scores_write(lifetime_model=model, frame=scores)
        else:
            LifetimeModel.objects.filter(active=True).update(active=False)
            model.active = True
            model.save(update_fields=["active"])
            lifetime_scores_write(scores, at=now)
    return model


def lifetime_backtest_report(
    bgnbd: clv.BgNbd,
    gg: clv.GammaGamma,
    summary: pd.DataFrame,
    scores: pd.DataFrame,
    *,
    reference: dt.datetime,
) -> dict:
    """The forecast for the days since `reference` against what the customers did in them."""
    elapsed = (timezone.now() - reference).total_seconds() / 86400
    if elapsed < 1 or summary.empty:
        return {
            "elapsed_days": max(0.0, elapsed),
            "note": "No day has passed since the as-of date.",
        }
    # Purchases from the end of the as-of day up to now (today's so far included).
    actual = features.future_purchases(start=reference, days=math.ceil(elapsed))
    actual = actual.reindex(summary.index).fillna(0.0)
    args = {k: summary[k].to_numpy() for k in ("x", "t_x", "T")}
    purchases, value = clv.lifetime_value(
        bgnbd,
        gg,
        **args,
        n=summary["n"].to_numpy(),
        m=summary["m"].to_numpy(),
        horizon_days=elapsed,
        annual_discount=0.0,
    )
    spent = actual["monetary"].to_numpy()
    bought = actual["frequency"].to_numpy()
    return {
        "elapsed_days": math.ceil(elapsed),
        "customers": int(len(summary)),
        "purchases_predicted": float(purchases.sum()),
        "purchases_actual": float(bought.sum()),
        "purchases_error": _relative(purchases.sum(), bought.sum()),
        "spend_predicted": float(value.sum()),
        "spend_actual": float(spent.sum()),
        "spend_error": _relative(value.sum(), spent.sum()),
        "spend_spearman": _spearman(value, spent),
        "spend_mae": float(np.abs(value - spent).mean()),
        "bought_again_share": float((bought > 0).mean()),
        "p_alive_of_those_who_bought": float(scores["p_alive"].to_numpy()[bought > 0].mean())
        if (bought > 0).any()
        else None,
    }


def _relative(predicted: float, actual: float) -> float | None:
    return float(predicted / actual - 1) if actual else None


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(stats.spearmanr(a, b).statistic)


def _rounded(values: pd.Series, decimals: int) -> np.ndarray:
    """Finite, within a numeric(14, 2) column's range, rounded as stored."""
    return np.round(np.clip(np.nan_to_num(values.to_numpy(dtype="float64")), -1e11, 1e11), decimals)


def lifetime_scores_write(scores: pd.DataFrame, *, at: dt.datetime) -> int:
    """Write the current lifetime scores of every scored customer; other customers' are cleared."""
    with transaction.atomic():
        written = bulk.scores_write(
            customer_ids=scores.index.to_numpy(dtype="int64"),
            columns={
                "expected_purchases": ("float8", _rounded(scores["expected_purchases"], 4)),
                "p_alive": ("float8", _rounded(scores["p_alive"], 4)),
                "lifetime_value": ("float8", _rounded(scores["lifetime_value"], 2)),
            },
            assignments={
                "expected_purchases": "t.expected_purchases",
                "p_alive": "t.p_alive",
                "lifetime_value": "t.lifetime_value::numeric(14, 2)",
                "lifetime_computed_at": "%(at)s",
            },
            params={"at": at},
        )
        CustomerScore.objects.exclude(lifetime_computed_at=at).exclude(
            lifetime_computed_at=None
        ).update(expected_purchases=None, p_alive=None, lifetime_value=None,
                 lifetime_computed_at=None)  # fmt: skip
    return written


def backtest_scores_write(
    *, frame: pd.DataFrame, lifetime_model: LifetimeModel | None = None, predictive_model=None
) -> int:
    """Keep a back-test's scores with its model (COPY + one INSERT), apart from the current ones."""
    columns = [c for c in BACKTEST_COLUMNS if c in frame]
    out = frame[columns].copy()
    out.insert(0, "customer_id", frame.index.astype("int64"))
    table = BacktestScore._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        types = {"customer_id": "bigint"} | {c: "float8" for c in columns}
        bulk._copy_into_temp(cursor, "_ml_backtest", types, out)
        owner = "lifetime_model_id" if lifetime_model is not None else "predictive_model_id"
        model = lifetime_model if lifetime_model is not None else predictive_model
        cursor.execute(
            f"INSERT INTO {table} ({owner}, customer_id, {', '.join(columns)}) "
            f"SELECT %s, customer_id, {', '.join(columns)} FROM _ml_backtest",
            [model.pk],
        )
        return cursor.rowcount


BACKTEST_COLUMNS = [
    "churn_risk",
    "predicted_value",
    "expected_purchases",
    "p_alive",
    "lifetime_value",
]
