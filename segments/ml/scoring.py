"""RFM scores and classes, clustering, cluster profiles and names: pandas and scikit-learn only.

DataFrame in, labels out; no ORM, no settings, so it is tested and benchmarked on plain frames.
"""

import io
from dataclasses import dataclass, field

import joblib
import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from threadpoolctl import threadpool_limits

# RFM --------------------------------------------------------------------------------------------

# Rows R 5..1, columns FM 1..5 (FM = F and M scores averaged, rounded half up). docs/ml.md.
RFM_GRID = {
    5: ["New", "Potential loyalist", "Potential loyalist", "Champions", "Champions"],
    4: ["Promising", "Potential loyalist", "Potential loyalist", "Champions", "Champions"],
    3: ["About to sleep", "Needs attention", "Needs attention", "Loyal", "Loyal"],
    2: ["Hibernating", "About to sleep", "At risk", "At risk", "At risk"],
    1: ["Lost", "Hibernating", "At risk", "Cannot lose them", "Cannot lose them"],
}
RFM_CLASSES = [
    "Champions",
    "Loyal",
    "Potential loyalist",
    "New",
    "Promising",
    "Needs attention",
    "About to sleep",
    "At risk",
    "Cannot lose them",
    "Hibernating",
    "Lost",
]


def quantile_score(values: pd.Series, *, higher_is_better: bool = True) -> pd.Series:
    """Scores 1..5 in equal-frequency bins that never split a tie, filled from the lowest score.

    The distinct values, in order, are grouped into five bins of as equal a size as ties allow:
    each bin takes whole blocks of equal values until it is as close as it can get to an equal
    share of the customers not yet scored, and the share is recomputed for the next bin. So a
    better value never gets a lower score, equal values always share one, and a big block of
    ties (60% one-time buyers) takes score 1 alone while the rest are spread over 2..5, instead
    of jumping from 1 to 4. With fewer than five distinct values they are spread over the scale
    (two values: 1 and 5; four: 1, 2, 4, 5); one value: ceil(5 / customers), the tie's lowest
    rank as a quintile (5 for a lone customer).
    """
    if values.empty:
        return pd.Series([], dtype="int64", index=values.index)
    ordered = (values if higher_is_better else -values).to_numpy(dtype="float64")
    distinct, inverse, counts = np.unique(ordered, return_inverse=True, return_counts=True)
    if len(distinct) < 5:  # too few values for five bins: spread them over the scale
        spread = np.rint(1 + 4 * np.arange(len(distinct)) / max(len(distinct) - 1, 1))
        if len(distinct) == 1:  # nothing to rank: the tie's lowest rank, as a quintile
            spread = np.array([min(5, int(np.ceil(5 / len(ordered))))])
        spread = spread.astype("int64")
        return pd.Series(spread[inverse], index=values.index, dtype="int64")
    block_score = np.zeros(len(distinct), dtype="int64")
    start, remaining = 0, int(counts.sum())
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    levels = 5
    for level in range(1, levels + 1):
        blocks_left = len(distinct) - start
        if blocks_left <= 0:
            break
        levels_left = levels - level + 1
        if level == levels:
            end = len(distinct)
        else:
            target = cumulative[start] + remaining / levels_left
            # The first block end whose cumulative count reaches the target, or the one before
            # it when that is closer; at least one block, and one left for every later level.
            end = int(np.searchsorted(cumulative, target, side="left"))
            end = min(max(end, start + 1), len(distinct))
            if end - 1 > start and (
                abs(cumulative[end - 1] - target) < abs(cumulative[end] - target)
            ):
                end -= 1
            end = min(end, len(distinct) - max(0, min(levels_left - 1, blocks_left - 1)))
            end = max(end, start + 1)
        block_score[start:end] = level
        remaining -= int(cumulative[end] - cumulative[start])
        start = end
    return pd.Series(block_score[inverse], index=values.index, dtype="int64")


def rfm_class(r: pd.Series, f: pd.Series, m: pd.Series) -> pd.Series:
    """The named class of each (R, F, M) triple, from R and the rounded mean of F and M."""
    fm = (f + m + 1) // 2
    table = {(rr, c + 1): name for rr, row in RFM_GRID.items() for c, name in enumerate(row)}
    return pd.Series([table[(a, b)] for a, b in zip(r, fm, strict=True)], index=r.index)


def rfm_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """recency/frequency/monetary -> r_score, f_score, m_score, rfm_score (e.g. 545), rfm_class."""
    out = frame.copy()
    out["r_score"] = quantile_score(frame["recency"], higher_is_better=False)
    out["f_score"] = quantile_score(frame["frequency"])
    out["m_score"] = quantile_score(frame["monetary"])
    out["rfm_score"] = out["r_score"] * 100 + out["f_score"] * 10 + out["m_score"]
    out["rfm_class"] = rfm_class(out["r_score"], out["f_score"], out["m_score"])
    return out


def rfm_thresholds(scored: pd.DataFrame) -> dict[str, list]:
    """For each of R, F and M: the value range of each score 1..5 (for the page)."""
    out = {}
    for value, score in (("recency", "r_score"), ("frequency", "f_score"), ("monetary", "m_score")):
        grouped = scored.groupby(score)[value].agg(["min", "max"])
        out[value] = [
            [int(s), float(row["min"]), float(row["max"])] for s, row in grouped.iterrows()
        ]
    return out


# Clustering ---------------------------------------------------------------------------------


def signed_log1p(x):
    """log(1 + x) that keeps the sign, so skewed spend and counts become comparable."""
    return np.sign(x) * np.log1p(np.abs(x))


def make_scaler(scaling: str) -> list:
    steps = []
    if scaling == "log_standard":
        steps.append(("log", FunctionTransformer(signed_log1p, feature_names_out="one-to-one")))
    steps.append(("scale", StandardScaler()))
    return steps


def make_model(algorithm: str, k: int, seed: int):
    if algorithm == "kmeans":
        return KMeans(n_clusters=k, random_state=seed, n_init=4)
    if algorithm == "minibatch_kmeans":
        return MiniBatchKMeans(
            n_clusters=k, random_state=seed, n_init=3, batch_size=4096, max_no_improvement=20
        )
    if algorithm == "gaussian_mixture":
        return GaussianMixture(n_components=k, random_state=seed, covariance_type="diag", n_init=2)
    raise ValueError(f"algorithm: unknown {algorithm!r}")


def _sample(n: int, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=min(n, size), replace=False))


def choose_k(
    scaled: np.ndarray, *, algorithm: str, k_min: int, k_max: int, seed: int, sample: int = 4000
) -> tuple[int, dict[int, float]]:
    """The k with the best silhouette, each candidate fitted and scored on one sample."""
    rows = scaled[_sample(len(scaled), sample, seed)]
    scores: dict[int, float] = {}
    for k in range(k_min, min(k_max, len(rows) - 1) + 1):
        labels = make_model(algorithm, k, seed).fit_predict(rows)
        if len(set(labels)) < 2:
            continue
        scores[k] = float(silhouette_score(rows, labels, random_state=seed))
    if not scores:
        return k_min, scores
    return max(scores, key=lambda k: (round(scores[k], 6), -k)), scores


@dataclass
class Clustering:
    pipeline: Pipeline
    labels: np.ndarray
    k: int
    metrics: dict
    profiles: list[dict]
    projection: dict
    names: list[str] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)


def cluster_fit(features: pd.DataFrame, *, threads: int = 1, **options) -> "Clustering":
    """Fit with a fixed number of BLAS/OpenMP threads: on a shared machine the default (one per
    core, spinning) is many times slower than one thread."""
    with threadpool_limits(limits=threads):
        return _cluster_fit(features, **options)


def _cluster_fit(
    features: pd.DataFrame,
    *,
    scaling: str,
    algorithm: str,
    k: int | None,
    seed: int,
    k_min: int = 2,
    k_max: int = 8,
    progress=lambda pct, step: None,
) -> Clustering:
    """Scale, choose k if asked, fit, label every row, and describe the clusters."""
    if len(features) < 3:
        raise ValueError("too few customers to cluster (at least 3 needed)")
    values = features.to_numpy(dtype="float64")
    scaler = Pipeline(make_scaler(scaling))
    scaled = scaler.fit_transform(values)
    scaled = np.nan_to_num(scaled)
    k_scores: dict[int, float] = {}
    if k is None:
        progress(20, "choosing the number of clusters by silhouette")
        k, k_scores = choose_k(scaled, algorithm=algorithm, k_min=k_min, k_max=k_max, seed=seed)
    k = max(1, min(k, len(features) - 1))
    progress(45, f"fitting {algorithm} with k={k}")
    model = make_model(algorithm, k, seed)
    model.fit(scaled)
    labels = model.predict(scaled).astype("int64")
    pipeline = Pipeline([*scaler.steps, ("model", model)])
    progress(70, "measuring and describing the clusters")
    sizes = np.bincount(labels, minlength=k)
    metrics: dict = {"sizes": [int(s) for s in sizes], "k": int(k), "k_silhouettes": k_scores}
    idx = _sample(len(scaled), 5000, seed)
    if len(set(labels[idx])) > 1:
        metrics["silhouette"] = float(silhouette_score(scaled[idx], labels[idx], random_state=seed))
    if hasattr(model, "inertia_"):
        metrics["inertia"] = float(model.inertia_)
    if isinstance(model, GaussianMixture):
        metrics["log_likelihood"] = float(model.score(scaled))
        metrics["bic"] = float(model.bic(scaled))
    profiles = cluster_profiles(features, scaled, labels, k)
    names, descriptions = cluster_names(profiles)
    projection = pca_projection(scaled, labels, seed)
    return Clustering(pipeline, labels, k, metrics, profiles, projection, names, descriptions)


def cluster_assign(pipeline: Pipeline, features: pd.DataFrame) -> np.ndarray:
    """Labels of customers from a stored pipeline (re-assignment on a schedule)."""
    with threadpool_limits(limits=1):
        return pipeline.predict(np.nan_to_num(features.to_numpy(dtype="float64"))).astype("int64")


def cluster_profiles(
    features: pd.DataFrame, scaled: np.ndarray, labels: np.ndarray, k: int
) -> list:
    """Per cluster: size, the mean of each feature, and how many standard deviations (of the
    scaled feature) the cluster's mean lies from the overall mean."""
    columns = list(features.columns)
    overall = features.mean()
    z_all = pd.DataFrame(scaled, columns=columns)
    z_means = z_all.groupby(labels).mean()
    raw_means = features.groupby(labels).mean()
    out = []
    for c in range(k):
        if c not in raw_means.index:
            out.append({"label": c, "size": 0, "means": {}, "z": {}, "overall": {}})
            continue
        out.append(
            {
                "label": c,
                "size": int((labels == c).sum()),
                "means": {col: round(float(raw_means.loc[c, col]), 4) for col in columns},
                "z": {col: round(float(z_means.loc[c, col]), 4) for col in columns},
                "overall": {col: round(float(overall[col]), 4) for col in columns},
            }
        )
    return out


WORDS = {
    "recency": ("bought recently", "not bought for a long time"),
    "frequency": ("rare buyers", "frequent"),
    "monetary": ("low spend", "high spend"),
    "tenure": ("new customers", "long-standing"),
    "aov": ("small baskets", "large baskets"),
    "purchase_interval": ("short gaps between purchases", "long gaps between purchases"),
    "one_time_buyer": ("repeat buyers", "one-time buyers"),
    "age": ("younger", "older"),
}
LABELS = {
    "recency": "days since last purchase",
    "frequency": "purchases",
    "monetary": "spend",
    "tenure": "days as a customer",
    "aov": "average order value",
    "purchase_interval": "days between purchases",
    "one_time_buyer": "share who bought once",
    "age": "age",
}


def feature_label(column: str) -> str:
    if column in LABELS:
        return LABELS[column]
    kind, _, key = column.partition(":")
    return {
        "category_share": f"share of spend on {key}",
        "events": f"{key} events",
        "attr": key.replace("_", " "),
    }.get(kind, column)


def feature_words(column: str, high: bool) -> str:
    if column in WORDS:
        return WORDS[column][1 if high else 0]
    kind, _, key = column.partition(":")
    if kind == "category_share":
        return f"mostly {key}" if high else f"little {key}"
    if kind == "events":
        return f"many {key} events" if high else f"few {key} events"
    return f"high {key.replace('_', ' ')}" if high else f"low {key.replace('_', ' ')}"


def cluster_names(profiles: list[dict], threshold: float = 0.5) -> tuple[list[str], list[str]]:
    """A short name from the (up to three) most distinctive features, and a one-line description."""
    names, descriptions = [], []
    for p in profiles:
        z = dict(p.get("z", {}))
        if p.get("means", {}).get("one_time_buyer", 0) >= 0.5:
            # Most of them bought once: the gap (the repeat buyers' median, filled in) says
            # nothing about them.
            z.pop("purchase_interval", None)
        strong = sorted((c for c in z if abs(z[c]) >= threshold), key=lambda c: -abs(z[c]))[:3]
        if not strong:
            name = "Average customers"
        else:
            name = ", ".join(feature_words(c, z[c] > 0) for c in strong)
            name = name[0].upper() + name[1:]
        names.append(name)
        parts = [
            f"{feature_label(c)} {p['means'][c]:.4g} (all: {p['overall'][c]:.4g}, {z[c]:+.1f} sd)"
            for c in sorted(z, key=lambda c: -abs(z[c]))[:4]
        ]
        descriptions.append(f"{p['size']} customers; " + "; ".join(parts) if parts else "")
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            names[i] = f"{name} ({seen[name]})"
    return names, descriptions


def pca_projection(scaled: np.ndarray, labels: np.ndarray, seed: int, size: int = 1500) -> dict:
    """A sample of customers projected on the first two principal components."""
    idx = _sample(len(scaled), size, seed)
    if scaled.shape[1] < 2:
        points = np.column_stack([scaled[idx, 0], np.zeros(len(idx))])
        explained = [1.0, 0.0]
    else:
        pca = PCA(n_components=2, random_state=seed).fit(scaled[idx])
        points = pca.transform(scaled[idx])
        explained = [float(v) for v in pca.explained_variance_ratio_]
    return {
        "explained": explained,
        "points": [
            [round(float(x), 3), round(float(y), 3), int(c)]
            for (x, y), c in zip(points, labels[idx], strict=True)
        ],
    }


def stability(previous: pd.Series, current: pd.Series) -> float | None:
    """Adjusted Rand index of two labelings on the customers both cover."""
    both = pd.concat([previous.rename("a"), current.rename("b")], axis=1, join="inner")
    if len(both) < 2:
        return None
    return float(adjusted_rand_score(both["a"], both["b"]))


def match_labels(previous: pd.Series, current: pd.Series) -> dict[int, int]:
    """new label -> old label, pairing clusters by the most shared customers (Hungarian)."""
    both = pd.concat([previous.rename("a"), current.rename("b")], axis=1, join="inner")
    if both.empty:
        return {}
    table = pd.crosstab(both["b"], both["a"])
    rows, cols = linear_sum_assignment(-table.to_numpy())
    return {
        int(table.index[r]): int(table.columns[c])
        for r, c in zip(rows, cols, strict=True)
        if table.iat[r, c] > 0
    }


def pipeline_dump(pipeline) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(pipeline, buffer, compress=3)
    return buffer.getvalue()


def pipeline_load(data: bytes):
    return joblib.load(io.BytesIO(bytes(data)))
