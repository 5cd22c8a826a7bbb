"""Churn risk and expected value in the next N days: pandas and scikit-learn only.

Both models are linear on log-scaled, standardised features, so each customer's score splits into
per-feature contributions that the customer page states in words. docs/ml.md explains the choice.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.metrics import brier_score_loss, mean_absolute_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from segments.ml.scoring import make_scaler


class TrainingRefused(ValueError):
    """Too little history to train a model that would be more than noise."""


@dataclass
class PredictiveModels:
    churn: Pipeline
    value: Pipeline
    features: list[str]
    metrics: dict


def check_history(
    *, buyers: int, history_days: float, min_buyers: int, min_history_days: int
) -> None:
    """Refuse, with the reason, when there are too few buyers or too short a purchase history."""
    problems = []
    if buyers < min_buyers:
        problems.append(
            f"{buyers} customers bought before the cut-off (at least {min_buyers} needed)"
        )
    if history_days < min_history_days:
        problems.append(
            f"purchases span {history_days:.0f} days (at least {min_history_days} needed)"
        )
    if problems:
        raise TrainingRefused(
            "Too little history to train the churn model: " + "; ".join(problems) + "."
        )


def predictive_fit(features: pd.DataFrame, future: pd.DataFrame, **options) -> "PredictiveModels":
    with threadpool_limits(limits=1):  # see scoring.cluster_fit
        return _predictive_fit(features, future, **options)


def _predictive_fit(
    features: pd.DataFrame,
    future: pd.DataFrame,
    *,
    horizon_days: int,
    seed: int = 0,
    test_size: float = 0.25,
) -> PredictiveModels:
    """Fit churn (no purchase in the horizon) and value (spend in the horizon) on a cut-off.

    `features` are as of the cut-off, one row per past buyer; `future` holds each customer's
    purchases and spend after it. Evaluated on held-out customers.
    """
    columns = list(features.columns)
    spent = future["monetary"].reindex(features.index).fillna(0.0).clip(lower=0)
    churned = (future["frequency"].reindex(features.index).fillna(0) == 0).astype("int64")
    if churned.nunique() < 2:
        raise TrainingRefused(
            "Too little history to train the churn model: every past buyer "
            + ("churned" if churned.iloc[0] else "bought again")
            + f" in the {horizon_days} days after the cut-off, so there is nothing to learn."
        )
    x = features.to_numpy(dtype="float64")
    x_train, x_test, y_train, y_test, v_train, v_test = train_test_split(
        x,
        churned.to_numpy(),
        spent.to_numpy(),
        test_size=test_size,
        random_state=seed,
        stratify=churned.to_numpy(),
    )
    churn = Pipeline([*make_scaler("log_standard"), ("model", LogisticRegression(max_iter=2000))])
    churn.fit(x_train, y_train)
    p_test = churn.predict_proba(x_test)[:, 1]
    value = Pipeline(
        [*make_scaler("log_standard"), ("model", PoissonRegressor(alpha=1e-3, max_iter=1000))]
    )
    value.fit(x_train, v_train)
    # A log-link model can extrapolate wildly on outliers: cap at five times the largest spend seen.
    cap = float(max(v_train.max(), 1.0) * 5)
    v_pred = np.clip(value.predict(x_test), 0, cap)
    # The naive forecast: each customer's past spend rate carried forward.
    frame_test = pd.DataFrame(x_test, columns=columns)
    rate = frame_test["monetary"] / frame_test["tenure"].clip(lower=horizon_days)
    naive = (rate * horizon_days).to_numpy()
    metrics = {
        "horizon_days": horizon_days,
        "train_customers": int(len(x_train)),
        "test_customers": int(len(x_test)),
        "churn_rate": float(churned.mean()),
        "roc_auc": float(roc_auc_score(y_test, p_test)),
        "random_auc": 0.5,
        "brier": float(brier_score_loss(y_test, p_test)),
        "brier_base_rate": float(brier_score_loss(y_test, np.full(len(y_test), y_train.mean()))),
        "calibration": calibration_table(y_test, p_test),
        "value_cap": cap,
        "value_mae": float(mean_absolute_error(v_test, v_pred)),
        "value_naive_mae": float(mean_absolute_error(v_test, naive)),
        "value_mean_mae": float(mean_absolute_error(v_test, np.full(len(v_test), v_train.mean()))),
        "value_total_actual": float(v_test.sum()),
        "value_total_predicted": float(v_pred.sum()),
    }
    return PredictiveModels(churn, value, columns, metrics)


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict]:
    """Held-out customers in bins of predicted risk: mean prediction against observed churn."""
    frame = pd.DataFrame({"y": y, "p": p})
    edges = np.linspace(0, 1, bins + 1)
    frame["bin"] = np.clip(np.digitize(frame["p"], edges[1:-1]), 0, bins - 1)
    out = []
    for b, group in frame.groupby("bin"):
        out.append(
            {
                "low": float(edges[b]),
                "high": float(edges[b + 1]),
                "customers": int(len(group)),
                "predicted": float(group["p"].mean()),
                "observed": float(group["y"].mean()),
            }
        )
    return out


def contributions(pipeline: Pipeline, x: np.ndarray) -> np.ndarray:
    """Per-row, per-feature contribution to the linear score (log-odds or log of the value)."""
    scaled = Pipeline(pipeline.steps[:-1]).transform(x)
    return np.nan_to_num(scaled) * pipeline.steps[-1][1].coef_.ravel()


def predictive_score(
    models_churn: Pipeline, models_value: Pipeline, features: pd.DataFrame, value_cap: float = 1e9
):
    """churn_risk, predicted_value and the contributions of each, for every row."""
    x = features.to_numpy(dtype="float64")
    risk = models_churn.predict_proba(np.nan_to_num(x))[:, 1]
    with np.errstate(over="ignore"):
        value = np.clip(np.nan_to_num(models_value.predict(np.nan_to_num(x))), 0, value_cap)
    return risk, value, contributions(models_churn, x), contributions(models_value, x)


FACTS = {
    "recency": lambda v: f"last purchase {v:.0f} days ago",
    "frequency": lambda v: f"{v:.0f} purchase{'s' if round(v) != 1 else ''} in total",
    "monetary": lambda v: f"spent {v:,.2f} in total",
    "aov": lambda v: f"average order {v:,.2f}",
    "tenure": lambda v: f"first purchase {v:.0f} days ago",
    "purchase_interval": lambda v: f"buys every {v:.0f} days on average",
    "frequency_90": lambda v: f"{v:.0f} purchase{'s' if round(v) != 1 else ''} in the last 90 days",
    "monetary_90": lambda v: f"spent {v:,.2f} in the last 90 days",
    "events_90": lambda v: f"{v:.0f} interaction{'s' if round(v) != 1 else ''} in the last 90 days",
}


def reasons_in_words(
    columns: list[str], values: np.ndarray, churn_c: np.ndarray, value_c: np.ndarray, top: int = 3
) -> dict:
    """The features that push this customer's risk up the most, and those that drive the value."""

    def fact(i: int) -> str:
        text = FACTS.get(columns[i], lambda v: f"{columns[i]} {v:.4g}")(float(values[i]))
        return text[0].upper() + text[1:]

    churn_order = [i for i in np.argsort(-churn_c) if churn_c[i] > 0][:top]
    if not churn_order:
        churn_order = list(np.argsort(churn_c))[:top]
    churn = [
        {
            "feature": columns[i],
            "text": f"{fact(i)}: {'raises' if churn_c[i] > 0 else 'lowers'} the risk",
            "effect": round(float(churn_c[i]), 3),
        }
        for i in churn_order
    ]
    value_order = list(np.argsort(-np.abs(value_c)))[:top]
    value = [
        {
            "feature": columns[i],
            "text": f"{fact(i)}: {'raises' if value_c[i] > 0 else 'lowers'} the expected value "
            f"(×{np.exp(value_c[i]):.2f})",
            "effect": round(float(value_c[i]), 3),
        }
        for i in value_order
    ]
    return {"churn": churn, "value": value}
