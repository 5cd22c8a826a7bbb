"""Churn risk and expected value in the next N days: pandas, scikit-learn and the customer-base
models of clv.py.

The features are the recency-frequency-monetary ones plus what BG/NBD x Gamma-Gamma say of each
customer (P(alive), expected purchases and value in the horizon). For each target a regularised
linear model and a gradient-boosted one are fitted; the one with the better validation score is
kept, then evaluated on customers neither saw against two baselines (days since the last purchase
alone, and BG/NBD x Gamma-Gamma alone). A model that does not beat both is not activated.

Reasons are interventional attributions: a feature's effect is how much the score moves when that
feature alone is set to its typical (median) value, so a reason's direction is always the one the
model takes. docs/ml.md explains the choice.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression, PoissonRegressor
from sklearn.metrics import brier_score_loss, mean_absolute_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from segments.ml import clv
from segments.ml.reasons import MINIMUM_EFFECT, REASON_SLOTS, reason_codes, reasons_words
from segments.ml.scoring import make_scaler


class TrainingRefused(ValueError):
    """Too little history to train a model that would be more than noise."""


@dataclass
class PredictiveModels:
    churn: object  # a fitted scikit-learn classifier (predict_proba)
    value: object  # a fitted scikit-learn regressor (predict)
    features: list[str]
    metrics: dict
    lifetime: dict  # the BG/NBD and Gamma-Gamma parameters behind the lifetime features
    baseline: dict  # each feature's typical (median) value: the reference of the reasons


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


# What the models see. Total spend is left out: it is purchases x average order, and with both
# of those beside it the three share one effect in ways that flip signs.
MODEL_COLUMNS = [
    "recency",
    "frequency",
    "aov",
    "tenure",
    "purchase_interval",
    "frequency_90",
    "monetary_90",
    "events_90",
]
LIFETIME_COLUMNS = ["p_alive", "expected_purchases", "expected_value"]
FIT_CUSTOMERS = 100_000
# The linear model is kept unless the boosted one is better on validation by at least this much
# (AUC for churn, Spearman for value): it is as good on most shops, and its reasons cost one
# prediction per feature per customer at a fraction of a tree ensemble's price.
PREFER_LINEAR_WITHIN = 0.005
# Directions a gradient-boosted churn model is held to (1: more means more risk; -1: less):
# without them a tree can learn that "8 purchases raises the risk" from noise.
CHURN_MONOTONE = {
    "recency": 1,
    "frequency": -1,
    "frequency_90": -1,
    "p_alive": -1,
    "expected_purchases": -1,
}
VALUE_MONOTONE = {"recency": -1, "frequency": 1, "aov": 1, "expected_value": 1}


def lifetime_params_fit(features: pd.DataFrame, seed: int = 0) -> dict:
    """BG/NBD and Gamma-Gamma fitted on the customers' own histories (no outcome used)."""
    summary = _summary(features)
    bgnbd = clv.bgnbd_fit(summary["x"], summary["t_x"], summary["T"], seed=seed)
    gg = clv.gamma_gamma_fit(summary["n"], summary["m"], seed=seed)
    return {"bgnbd": bgnbd.as_dict(), "gamma_gamma": gg.as_dict()}


def _summary(features: pd.DataFrame) -> dict:
    n = features["frequency"].to_numpy(dtype="float64")
    T = np.maximum(features["tenure"].to_numpy(dtype="float64"), 1e-6)
    return {
        "x": np.maximum(n - 1, 0),
        "t_x": np.clip(T - features["recency"].to_numpy(dtype="float64"), 0, None),
        "T": T,
        "n": n,
        "m": features["monetary"].to_numpy(dtype="float64") / np.maximum(n, 1),
    }


def with_lifetime_features(
    features: pd.DataFrame, lifetime: dict | None, horizon_days: int
) -> pd.DataFrame:
    """The model's columns: MODEL_COLUMNS, plus LIFETIME_COLUMNS when BG/NBD could be fitted."""
    out = features.reindex(columns=MODEL_COLUMNS).astype("float64")
    if not lifetime:
        return out
    bgnbd, gg = clv.BgNbd(**lifetime["bgnbd"]), clv.GammaGamma(**lifetime["gamma_gamma"])
    s = _summary(features)
    purchases, value = clv.lifetime_value(
        bgnbd, gg, **s, horizon_days=horizon_days, annual_discount=0.0
    )
    out["p_alive"] = clv.p_alive(bgnbd, s["x"], s["t_x"], s["T"])
    out["expected_purchases"] = purchases
    out["expected_value"] = value
    return out


def _constraints(columns: list[str], directions: dict) -> list[int]:
    return [directions.get(c, 0) for c in columns]


def churn_candidates(columns: list[str], seed: int) -> dict:
    return {
        "logistic regression": Pipeline(
            [*make_scaler("log_standard"), ("model", LogisticRegression(C=1.0, max_iter=2000))]
        ),
        "gradient boosting": HistGradientBoostingClassifier(
            max_iter=100,
            learning_rate=0.1,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            monotonic_cst=_constraints(columns, CHURN_MONOTONE),
            early_stopping=False,
            random_state=seed,
        ),
    }


def value_candidates(columns: list[str], seed: int) -> dict:
    return {
        "Poisson regression": Pipeline(
            [*make_scaler("log_standard"), ("model", PoissonRegressor(alpha=1e-3, max_iter=1000))]
        ),
        "gradient boosting": HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=100,
            learning_rate=0.1,
            max_leaf_nodes=15,
            min_samples_leaf=40,
            l2_regularization=1.0,
            monotonic_cst=_constraints(columns, VALUE_MONOTONE),
            early_stopping=False,
            random_state=seed,
        ),
    }


def predictive_fit(features: pd.DataFrame, future: pd.DataFrame, **options) -> "PredictiveModels":
    with threadpool_limits(limits=1):  # see scoring.cluster_fit
        return _predictive_fit(features, future, **options)


def _choose(scores: dict, linear: str) -> str:
    """The better candidate on validation, the linear one unless beaten by PREFER_LINEAR_WITHIN."""
    best = max(scores, key=lambda k: -1.0 if scores[k] is None else scores[k])
    if best != linear and (scores[best] or 0) - (scores[linear] or 0) < PREFER_LINEAR_WITHIN:
        return linear
    return best


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    return float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else None


def _lift(y: np.ndarray, score: np.ndarray, share: float = 0.1) -> float | None:
    """Churn among the `share` scored riskiest, over the base rate (1 = no better than chance)."""
    if not len(y) or y.mean() == 0:
        return None
    top = max(1, int(round(len(y) * share)))
    order = np.argsort(-score, kind="stable")[:top]
    return float(y[order].mean() / y.mean())


def _spearman(a: np.ndarray, b: np.ndarray) -> float | None:
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return float(stats.spearmanr(a, b).statistic)


def _predictive_fit(
    features: pd.DataFrame,
    future: pd.DataFrame,
    *,
    horizon_days: int,
    seed: int = 0,
    test_size: float = 0.25,
    validation_size: float = 0.25,
) -> PredictiveModels:
    """Fit churn (no purchase in the horizon) and value (spend in the horizon) on a cut-off.

    `features` are as of the cut-off, one row per past buyer (features.PREDICTIVE_COLUMNS);
    `future` holds each customer's purchases and spend after it. Candidates are chosen on a
    validation split and the chosen ones evaluated on a test split against the baselines.
    """
    spent_all = future["monetary"].reindex(features.index).fillna(0.0).clip(lower=0)
    churned_all = (future["frequency"].reindex(features.index).fillna(0) == 0).astype("int64")
    if churned_all.nunique() < 2:
        raise TrainingRefused(
            "Too little history to train the churn model: every past buyer "
            + ("churned" if churned_all.iloc[0] else "bought again")
            + f" in the {horizon_days} days after the cut-off, so there is nothing to learn."
        )
    try:
        lifetime = lifetime_params_fit(features, seed=seed)
    except clv.FitFailed:
        lifetime = {}
    frame = with_lifetime_features(features, lifetime, horizon_days)
    columns = list(frame.columns)
    x = frame.to_numpy(dtype="float64")
    y = churned_all.to_numpy()
    v = spent_all.to_numpy()
    index = np.arange(len(x))
    rest, test = train_test_split(index, test_size=test_size, random_state=seed, stratify=y)
    train, valid = train_test_split(
        rest,
        test_size=validation_size / (1 - test_size),
        random_state=seed,
        stratify=y[rest],
    )
    # Past FIT_CUSTOMERS the models learn nothing more worth the time: each split is a seeded
    # sample of that size (the test split included; its metrics then carry a sampling error far
    # below their differences).
    sampler = np.random.default_rng(seed)
    train, valid, test = (
        np.sort(sampler.choice(part, FIT_CUSTOMERS, replace=False))
        if len(part) > FIT_CUSTOMERS
        else part
        for part in (train, valid, test)
    )
    if len(np.unique(y[train])) < 2 or len(np.unique(y[valid])) < 2:
        raise TrainingRefused(
            "Too little history to train the churn model: too few customers churned or bought "
            "again to hold some out."
        )

    churn_scores = {}
    churn_models = {}
    for name, model in churn_candidates(columns, seed).items():
        model.fit(x[train], y[train])
        churn_models[name] = model
        churn_scores[name] = _auc(y[valid], model.predict_proba(x[valid])[:, 1])
    churn_name = _choose(churn_scores, "logistic regression")
    churn = churn_models[churn_name]

    cap = float(max(v[train].max(), 1.0) * 5)
    value_scores = {}
    value_models = {}
    for name, model in value_candidates(columns, seed).items():
        model.fit(x[train], v[train])
        value_models[name] = model
        with np.errstate(over="ignore"):
            predicted = np.clip(np.nan_to_num(model.predict(x[valid])), 0, cap)
        value_scores[name] = _spearman(predicted, v[valid])
    value_name = _choose(value_scores, "Poisson regression")
    value = value_models[value_name]

    # Held-out evaluation against the baselines.
    xt, yt, vt = x[test], y[test], v[test]
    test_frame = frame.iloc[test]
    p_test = churn.predict_proba(xt)[:, 1]
    with np.errstate(over="ignore"):
        v_pred = np.clip(np.nan_to_num(value.predict(xt)), 0, cap)
    recency = test_frame["recency"].to_numpy()
    churn_metrics = {
        "model": churn_name,
        "candidates": churn_scores,
        "roc_auc": _auc(yt, p_test),
        "lift_top10": _lift(yt, p_test),
        "baselines": {
            "recency": {"roc_auc": _auc(yt, recency), "lift_top10": _lift(yt, recency)},
        },
    }
    past = features.iloc[test]
    rate = (past["monetary"] / past["tenure"].clip(lower=horizon_days)).to_numpy()
    naive = rate * horizon_days
    value_metrics = {
        "model": value_name,
        "candidates": value_scores,
        "spearman": _spearman(v_pred, vt),
        "mae": float(mean_absolute_error(vt, v_pred)),
        "aggregate_error": _relative(v_pred.sum(), vt.sum()),
        "baselines": {
            "past rate": {
                "spearman": _spearman(naive, vt),
                "mae": float(mean_absolute_error(vt, naive)),
                "aggregate_error": _relative(naive.sum(), vt.sum()),
            },
        },
    }
    if lifetime:
        bg_risk = -test_frame["expected_purchases"].to_numpy()
        churn_metrics["baselines"]["BG/NBD"] = {
            "roc_auc": _auc(yt, bg_risk),
            "lift_top10": _lift(yt, bg_risk),
        }
        bg_value = test_frame["expected_value"].to_numpy()
        value_metrics["baselines"]["BG/NBD x Gamma-Gamma"] = {
            "spearman": _spearman(bg_value, vt),
            "mae": float(mean_absolute_error(vt, bg_value)),
            "aggregate_error": _relative(bg_value.sum(), vt.sum()),
        }
    verdict = _verdict(churn_metrics, value_metrics, has_lifetime=bool(lifetime))
    metrics = {
        "horizon_days": horizon_days,
        "train_customers": int(len(train)),
        "validation_customers": int(len(valid)),
        "test_customers": int(len(test)),
        "churn_rate": float(y.mean()),
        "roc_auc": churn_metrics["roc_auc"],
        "random_auc": 0.5,
        "brier": float(brier_score_loss(yt, p_test)),
        "brier_base_rate": float(brier_score_loss(yt, np.full(len(yt), y[train].mean()))),
        "calibration": calibration_table(yt, p_test),
        "churn": churn_metrics,
        "value": value_metrics,
        "value_cap": cap,
        "value_mae": value_metrics["mae"],
        "value_naive_mae": value_metrics["baselines"]["past rate"]["mae"],
        "value_mean_mae": float(mean_absolute_error(vt, np.full(len(vt), v[train].mean()))),
        "value_total_actual": float(vt.sum()),
        "value_total_predicted": float(v_pred.sum()),
        **verdict,
    }
    baseline = {c: float(np.nanmedian(x[train][:, i])) for i, c in enumerate(columns)}
    return PredictiveModels(churn, value, columns, metrics, lifetime, baseline)


def _relative(predicted: float, actual: float) -> float | None:
    return float(predicted / actual - 1) if actual else None


def _verdict(churn: dict, value: dict, *, has_lifetime: bool) -> dict:
    """Margins over the baselines, and whether the models may be activated (with the reasons)."""
    reasons = []
    margins = {}
    auc = churn["roc_auc"] or 0.0
    for name, base in churn["baselines"].items():
        margin = auc - (base["roc_auc"] or 0.0)
        margins[f"churn AUC over {name}"] = margin
        if margin <= 0:
            reasons.append(
                f"the churn model's held-out ROC AUC {auc:.3f} does not beat {name} alone "
                f"({base['roc_auc']:.3f})"
            )
    spearman = value["spearman"] or 0.0
    for name, base in value["baselines"].items():
        margin = spearman - (base["spearman"] or 0.0)
        margins[f"value Spearman over {name}"] = margin
        if name != "past rate" and margin <= 0:
            reasons.append(
                f"the value model's held-out Spearman {spearman:.3f} does not beat {name} "
                f"({(base['spearman'] or 0.0):.3f})"
            )
    if not has_lifetime:
        reasons.append(
            "BG/NBD could not be fitted (too few repeat buyers), so there is no BG/NBD baseline "
            "to beat"
        )
    return {
        "margins": margins,
        "beats_baselines": not reasons,
        "refused": ("Not activated: " + "; ".join(reasons) + ".") if reasons else "",
    }


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


def attributions(
    model, x: np.ndarray, baseline: np.ndarray, kind: str, cap: float = 1e12
) -> np.ndarray:
    """Per-row, per-feature effect on the score: score(x) - score(x with that feature alone set
    to its baseline). Churn in probability points, value in currency. By construction a
    positive effect means the feature, as it is, raises the score."""
    linear = _linear_parts(model)
    if linear is not None:
        return _linear_attributions(*linear, x, baseline, kind, cap)
    predict = _predictor(model, kind, cap)
    full = predict(x)
    out = np.empty_like(x, dtype="float64")
    for j in range(x.shape[1]):
        moved = x.copy()
        moved[:, j] = baseline[j]
        out[:, j] = full - predict(moved)
    return out


def _linear_parts(model):
    """(feature-wise transform, coefficients, intercept) of a scaled linear pipeline (the
    logistic and Poisson candidates), or None for any other model."""
    if not isinstance(model, Pipeline) or not hasattr(model[-1], "coef_"):
        return None
    if any(name not in ("log", "scale") for name, _ in model.steps[:-1]):
        return None  # a step that mixes features: the per-feature shortcut would not hold
    last = model[-1]
    return model[:-1].transform, np.ravel(last.coef_), float(np.ravel(last.intercept_)[0])


def _linear_attributions(transform, coef, intercept, x, baseline, kind: str, cap: float):
    """attributions() of a linear model in one pass: setting feature j to its baseline moves
    the linear predictor by coef_j * (t(x_j) - t(base_j)) and nothing else, so every feature's
    moved score comes from one matrix instead of one prediction per feature."""
    xs = transform(np.nan_to_num(x))
    bs = transform(np.nan_to_num(baseline)[None, :])
    z = xs @ coef + intercept
    moved = z[:, None] - (xs - bs) * coef
    if kind == "churn":
        return special.expit(z)[:, None] - special.expit(moved)
    with np.errstate(over="ignore"):
        full = np.clip(np.nan_to_num(np.exp(z)), 0, cap)
        return full[:, None] - np.clip(np.nan_to_num(np.exp(moved)), 0, cap)


def _predictor(model, kind: str, cap: float = 1e12):
    if kind == "churn":
        return lambda x: model.predict_proba(np.nan_to_num(x))[:, 1]

    def value(x):
        with np.errstate(over="ignore"):
            return np.clip(np.nan_to_num(model.predict(np.nan_to_num(x))), 0, cap)

    return value


def predictive_score(
    models_churn,
    models_value,
    features: pd.DataFrame,
    value_cap: float = 1e9,
    baseline: dict | None = None,
):
    """churn_risk, predicted_value and each one's attributions, for every row of the model's
    columns (with_lifetime_features)."""
    x = np.nan_to_num(features.to_numpy(dtype="float64"))
    risk = _predictor(models_churn, "churn")(x)
    value = _predictor(models_value, "value", value_cap)(x)
    base = np.array(
        [(baseline or {}).get(c, float(np.median(x[:, i]))) for i, c in enumerate(features)]
    )
    churn_c = attributions(models_churn, x, base, "churn")
    value_c = attributions(models_value, x, base, "value", value_cap)
    return risk, value, churn_c, value_c


def reasons_in_words(
    columns: list[str],
    values: np.ndarray,
    churn_c: np.ndarray,
    value_c: np.ndarray,
    top: int = REASON_SLOTS,
    minimum: tuple[float, float] = MINIMUM_EFFECT,
) -> dict:
    """One customer's reasons in words: the features with the largest effects on the churn
    risk and on the value, each with its direction and size (see reasons.py)."""
    codes, vals, effs = reason_codes(
        columns, np.atleast_2d(values), np.atleast_2d(churn_c), np.atleast_2d(value_c), top, minimum
    )
    return reasons_words(codes[0].tolist(), vals[0].tolist(), effs[0].tolist())


def reasons_for_rows(
    columns: list[str],
    values: np.ndarray,
    churn_c: np.ndarray,
    value_c: np.ndarray,
    top: int = REASON_SLOTS,
    minimum: tuple[float, float] = MINIMUM_EFFECT,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every row's reasons as numbers (codes, values, effects), found with one argsort per kind
    over all rows; reasons.reasons_words puts one row into words."""
    return reason_codes(columns, values, churn_c, value_c, top, minimum)
