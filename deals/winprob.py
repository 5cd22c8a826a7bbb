"""The win probability of an open deal, learned from how closed deals went: pandas and
scikit-learn only (a DataFrame in, probabilities, metrics and reasons out; no ORM, no settings).

Examples are snapshots: every time a deal that has since been won or lost entered an open stage,
with what was known at that moment (the stage, how far along the pipeline it is and its default
probability, the deal's age, moves so far and whether it went backwards, amount, source, whether
it is on a person or a company, activities logged so far); the label is whether it was won. An
open deal is scored with the same features as of its entry into its current stage, so the model
never sees what it could not know.

The held-out set is the most recently closed quarter of the deals (by close date, all of a deal's
snapshots on one side): a model is judged on deals it never saw, closed after those it learned
from. Its Brier score and AUC are compared with the stage's default probability on the same
snapshots; a model that does not beat it is kept for the record but not used.

The model is a regularised logistic regression on scaled numbers and one-hot categories. Its
reasons are exact in log-odds: each feature's contribution is its coefficients times how far the
deal is from the typical training example (the median, or the most frequent category), so a
reason's direction is the model's.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from threadpoolctl import threadpool_limits

NUMERIC = [
    "stage_share",
    "stage_probability",
    "age_days",
    "moves",
    "moved_back",
    "log_amount",
    "activities",
    "has_customer",
    "has_account",
]
CATEGORICAL = ["source", "pipeline"]
FEATURES = NUMERIC + CATEGORICAL
LABELS = {
    "stage_share": "How far along the pipeline",
    "stage_probability": "The stage's default probability",
    "age_days": "Days since the deal was opened",
    "moves": "Stage moves so far",
    "moved_back": "Moved back a stage",
    "log_amount": "Amount",
    "activities": "Calls, meetings and emails logged",
    "has_customer": "On a person",
    "has_account": "On an account",
    "source": "Source",
    "pipeline": "Pipeline",
}
HOLDOUT_SHARE = 0.25
FIT_ROWS = 300_000


class TrainingRefused(ValueError):
    """Too little closed history to learn anything more than noise."""


@dataclass
class WinFit:
    model: Pipeline
    metrics: dict
    typical: dict  # each feature's typical value: the reference of the reasons


def check_history(frame: pd.DataFrame, *, min_closed: int, min_each: int) -> None:
    """Refuse, with the reason, when too few deals were closed, or too few won or lost."""
    deals = frame.drop_duplicates("deal_id")
    won = int(deals["won"].sum())
    lost = len(deals) - won
    problems = []
    if len(deals) < min_closed:
        problems.append(f"{len(deals)} deals were won or lost (at least {min_closed} needed)")
    if won < min_each:
        problems.append(f"{won} were won (at least {min_each} needed)")
    if lost < min_each:
        problems.append(f"{lost} were lost (at least {min_each} needed)")
    if problems:
        raise TrainingRefused(
            "Too little history to learn win probabilities: " + "; ".join(problems) + "."
        )


def prepare(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's columns from the raw ones (amount, source, pipeline id, ...)."""
    out = pd.DataFrame(index=frame.index)
    out["stage_share"] = frame["stage_rank"] / frame["open_stages"].clip(lower=1)
    out["stage_probability"] = frame["stage_probability"].astype(float) / 100
    out["age_days"] = frame["age_days"].astype(float).clip(lower=0)
    out["moves"] = frame["moves"].astype(float)
    out["moved_back"] = frame["moved_back"].astype(float)
    out["log_amount"] = np.log1p(frame["amount"].astype(float).clip(lower=0))
    out["activities"] = np.log1p(frame["activities"].astype(float))
    out["has_customer"] = frame["has_customer"].astype(float)
    out["has_account"] = frame["has_account"].astype(float)
    out["source"] = frame["source"].fillna("").astype(str).str.lower().replace("", "(none)")
    out["pipeline"] = frame["pipeline"].astype(str)
    return out


def _pipeline() -> Pipeline:
    encode = ColumnTransformer(
        [
            ("numbers", StandardScaler(), NUMERIC),
            (
                "categories",
                OneHotEncoder(handle_unknown="ignore", min_frequency=20, sparse_output=False),
                CATEGORICAL,
            ),
        ]
    )
    return Pipeline([("encode", encode), ("model", LogisticRegression(C=0.5, max_iter=1000))])


def _split(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Train on the deals closed first, hold out the last quarter (by deal, never by row)."""
    closed = frame.drop_duplicates("deal_id").sort_values(["closed_at", "deal_id"])
    cut = int(len(closed) * (1 - HOLDOUT_SHARE))
    held = set(closed["deal_id"].iloc[cut:])
    test = frame["deal_id"].isin(held).to_numpy()
    return ~test, test


def fit(frame: pd.DataFrame, *, min_closed: int, min_each: int) -> WinFit:
    """Fit on the snapshots of closed deals and measure on the held-out ones."""
    check_history(frame, min_closed=min_closed, min_each=min_each)
    train, test = _split(frame)
    if frame.loc[test, "won"].nunique() < 2 or frame.loc[train, "won"].nunique() < 2:
        raise TrainingRefused(
            "Too little history to learn win probabilities: the deals closed last were all "
            "won or all lost, so the model cannot be checked on them."
        )
    x = prepare(frame)
    y = frame["won"].astype(int).to_numpy()
    train_idx = np.flatnonzero(train)
    if len(train_idx) > FIT_ROWS:  # the most recent snapshots: the sales process drifts
        train_idx = train_idx[-FIT_ROWS:]
    with threadpool_limits(limits=1):
        model = _pipeline().fit(x.iloc[train_idx], y[train_idx])
        p_test = model.predict_proba(x[test])[:, 1]
    baseline = x.loc[test, "stage_probability"].to_numpy()
    y_test = y[test]
    metrics = {
        "train_snapshots": int(len(train_idx)),
        "test_snapshots": int(test.sum()),
        "train_deals": int(frame.loc[train, "deal_id"].nunique()),
        "test_deals": int(frame.loc[test, "deal_id"].nunique()),
        "won_share_test": round(float(y_test.mean()), 4),
        "auc": round(float(roc_auc_score(y_test, p_test)), 4),
        "brier": round(float(brier_score_loss(y_test, p_test)), 4),
        "log_loss": round(float(log_loss(y_test, np.clip(p_test, 1e-6, 1 - 1e-6))), 4),
        "baseline_auc": round(float(roc_auc_score(y_test, baseline)), 4),
        "baseline_brier": round(float(brier_score_loss(y_test, baseline)), 4),
        "baseline_log_loss": round(float(log_loss(y_test, np.clip(baseline, 0.01, 0.99))), 4),
    }
    metrics["beats_stage_default"] = metrics["brier"] < metrics["baseline_brier"]
    typical = {c: float(x.iloc[train_idx][c].median()) for c in NUMERIC}
    for c in CATEGORICAL:
        typical[c] = str(x.iloc[train_idx][c].mode().iloc[0])
    return WinFit(model=model, metrics=metrics, typical=typical)


def predict(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    if frame.empty:
        return np.zeros(0)
    with threadpool_limits(limits=1):
        return model.predict_proba(prepare(frame))[:, 1]


def reasons(fitted: WinFit, frame: pd.DataFrame, *, top: int = 3) -> list[list[dict]]:
    """Per deal, the features that move its log-odds most from the typical deal's, strongest
    first: {"feature", "label", "effect" (log-odds), "direction" ("raises" or "lowers")}."""
    if frame.empty:
        return []
    encode = fitted.model.named_steps["encode"]
    coef = fitted.model.named_steps["model"].coef_[0]
    x = prepare(frame)
    reference = pd.DataFrame([fitted.typical])[FEATURES]
    encoded = encode.transform(x[FEATURES])
    base = encode.transform(reference)[0]
    names = encode.get_feature_names_out()
    owner = [
        next(
            f
            for f in FEATURES
            if n.split("__", 1)[1] == f or n.split("__", 1)[1].startswith(f"{f}_")
        )
        for n in names
    ]
    contributions = (encoded - base) * coef
    by_feature = pd.DataFrame(contributions, columns=names).T.groupby(owner).sum().T
    result = []
    for i in range(len(x)):
        row = by_feature.iloc[i]
        strongest = row.reindex(row.abs().sort_values(ascending=False).index)[:top]
        result.append(
            [
                {
                    "feature": feature,
                    "label": LABELS[feature],
                    "effect": round(float(effect), 3),
                    "direction": "raises" if effect > 0 else "lowers",
                }
                for feature, effect in strongest.items()
                if abs(effect) >= 0.05
            ]
        )
    return result
