"""The pure pandas / scikit-learn parts: RFM scores, clustering, churn model, refusal."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score, roc_auc_score

from segments.ml.churn import (
    TrainingRefused,
    _predictor,
    attributions,
    check_history,
    churn_candidates,
    predictive_fit,
    predictive_score,
    reasons_for_rows,
    reasons_in_words,
    value_candidates,
    with_lifetime_features,
)
from segments.ml.features import PREDICTIVE_COLUMNS
from segments.ml.reasons import reasons_words
from segments.ml.scoring import (
    RFM_CLASSES,
    cluster_assign,
    cluster_fit,
    quantile_score,
    rfm_scores,
    stability,
)


def planted_clusters(seed: int = 7, per: int = 400) -> tuple[pd.DataFrame, np.ndarray]:
    """Three groups of customers far apart in spend, frequency and recency."""
    rng = np.random.default_rng(seed)
    centres = [(10, 1, 40), (40, 12, 2000), (300, 3, 300)]  # recency, frequency, monetary
    rows, truth = [], []
    for label, (r, f, m) in enumerate(centres):
        rows.append(
            np.column_stack(
                [
                    rng.normal(r, r * 0.1, per).clip(0),
                    rng.normal(f, max(f * 0.1, 0.2), per).clip(0),
                    rng.normal(m, m * 0.1, per).clip(0),
                ]
            )
        )
        truth += [label] * per
    frame = pd.DataFrame(np.vstack(rows), columns=["recency", "frequency", "monetary"])
    return frame, np.array(truth)


@pytest.mark.parametrize("algorithm", ["kmeans", "minibatch_kmeans", "gaussian_mixture"])
def test_planted_clusters_are_recovered_by_every_algorithm(algorithm):
    frame, truth = planted_clusters()

    result = cluster_fit(frame, scaling="log_standard", algorithm=algorithm, k=3, seed=1)

    assert adjusted_rand_score(truth, result.labels) > 0.9


def test_k_chosen_by_silhouette_finds_the_planted_number_of_clusters():
    frame, truth = planted_clusters()

    result = cluster_fit(frame, scaling="log_standard", algorithm="kmeans", k=None, seed=1, k_max=6)

    assert result.k == 3
    assert adjusted_rand_score(truth, result.labels) > 0.9
    assert set(result.metrics["k_silhouettes"]) == {2, 3, 4, 5, 6}


def test_clusters_are_named_in_words_from_their_profile():
    frame, truth = planted_clusters()

    result = cluster_fit(frame, scaling="log_standard", algorithm="kmeans", k=3, seed=1)

    big_spenders = result.labels[truth == 1][0]
    assert "high spend" in result.names[big_spenders].lower()
    assert "frequent" in result.names[big_spenders].lower()
    assert len(set(result.names)) == 3
    assert result.profiles[big_spenders]["z"]["monetary"] > 0.5


def test_the_stored_pipeline_assigns_the_same_labels_and_stability_is_one():
    frame, _truth = planted_clusters()
    result = cluster_fit(frame, scaling="standard", algorithm="kmeans", k=3, seed=1)

    labels = cluster_assign(result.pipeline, frame)

    assert (labels == result.labels).all()
    assert stability(pd.Series(result.labels), pd.Series(labels)) == 1.0


values = st.lists(st.integers(0, 50) | st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300)


@settings(max_examples=200, deadline=None)
@given(values)
def test_a_higher_value_never_gets_a_lower_score(numbers):
    series = pd.Series(numbers, dtype="float64")

    scores = quantile_score(series)
    inverted = quantile_score(series, higher_is_better=False)

    order = np.argsort(series.to_numpy(), kind="stable")
    assert scores.between(1, 5).all() and inverted.between(1, 5).all()
    assert (np.diff(scores.to_numpy()[order]) >= 0).all()
    assert (np.diff(inverted.to_numpy()[order]) <= 0).all()
    # equal values, equal scores
    assert (scores.groupby(series).nunique() == 1).all()


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 700), st.integers(1, 40), st.integers(1, 10000)),
        min_size=1,
        max_size=200,
    )
)
def test_every_customer_gets_one_of_the_eleven_classes(rows):
    frame = pd.DataFrame(rows, columns=["recency", "frequency", "monetary"])

    scored = rfm_scores(frame)

    assert set(scored["rfm_class"]) <= set(RFM_CLASSES)
    assert scored["rfm_score"].between(111, 555).all()


def test_recent_frequent_big_spenders_are_champions_and_long_gone_small_ones_are_lost():
    frame = pd.DataFrame(
        {"recency": list(range(1, 101)), "frequency": list(range(100, 0, -1)),
         "monetary": list(range(1000, 0, -10))}
    )  # fmt: skip

    scored = rfm_scores(frame)

    assert scored.loc[0, "rfm_class"] == "Champions"
    assert scored.loc[99, "rfm_class"] == "Lost"


def planted_churn(n: int = 2000, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Customers whose chance of buying again falls with recency: a signal the model must find."""
    rng = np.random.default_rng(seed)
    recency = rng.uniform(0, 400, n)
    frequency = rng.integers(1, 15, n).astype(float)
    monetary = frequency * rng.lognormal(4, 0.5, n)
    frame = pd.DataFrame(
        {
            "recency": recency,
            "frequency": frequency,
            "monetary": monetary,
            "aov": monetary / frequency,
            "tenure": recency + rng.uniform(0, 400, n),
            "purchase_interval": rng.uniform(10, 100, n),
            "frequency_90": (recency < 90) * rng.integers(0, 3, n),
            "monetary_90": rng.uniform(0, 50, n),
            "events_90": rng.poisson(3, n).astype(float),
        },
        index=pd.Index(range(1, n + 1), name="customer_id"),
    )[PREDICTIVE_COLUMNS]
    buys = rng.uniform(0, 1, n) < 1 / (1 + np.exp((recency - 150) / 40))
    future = pd.DataFrame(
        {"frequency": buys.astype(float), "monetary": buys * rng.lognormal(4, 0.5, n)},
        index=frame.index,
    )
    return frame, future[future["frequency"] > 0]


def test_churn_model_on_a_planted_signal_beats_a_random_baseline_on_held_out_customers():
    features, future = planted_churn()

    models = predictive_fit(features, future, horizon_days=90, seed=0)

    assert models.metrics["roc_auc"] > 0.75
    assert models.metrics["random_auc"] == 0.5
    assert models.metrics["test_customers"] == 500
    assert models.metrics["value_mae"] < models.metrics["value_mean_mae"]
    rng = np.random.default_rng(0)
    y = (future["frequency"].reindex(features.index).fillna(0) == 0).to_numpy()
    assert abs(roc_auc_score(y, rng.uniform(size=len(y))) - 0.5) < 0.05


def test_training_is_refused_with_too_few_buyers_or_too_short_a_history():
    with pytest.raises(TrainingRefused, match="312 customers bought before the cut-off"):
        check_history(buyers=312, history_days=400, min_buyers=500, min_history_days=180)
    with pytest.raises(TrainingRefused, match="purchases span 90 days"):
        check_history(buyers=900, history_days=90, min_buyers=500, min_history_days=180)

    check_history(buyers=500, history_days=180, min_buyers=500, min_history_days=180)


def test_no_reason_contradicts_what_the_score_does_when_that_feature_alone_changes():
    """Each stated reason ("raises the risk") must be what the model does: with that feature
    alone set to its typical value, the score goes the other way (down for "raises")."""
    features, future = planted_churn()
    models = predictive_fit(features, future, horizon_days=90, seed=0)
    frame = with_lifetime_features(features, models.lifetime, 90).reindex(columns=models.features)
    sample = frame.iloc[:200]

    cap = models.metrics["value_cap"]
    risk, value, churn_c, value_c = predictive_score(
        models.churn, models.value, sample, value_cap=cap, baseline=models.baseline
    )

    x = sample.to_numpy(dtype="float64")
    checked = 0
    for row in range(len(sample)):
        stated = reasons_in_words(models.features, x[row], churn_c[row], value_c[row])
        for kind, score, model in (("churn", risk, models.churn), ("value", value, models.value)):
            for reason in stated[kind]:
                j = models.features.index(reason["feature"])
                moved = x[row : row + 1].copy()
                moved[0, j] = models.baseline[reason["feature"]]
                if kind == "churn":
                    after = model.predict_proba(moved)[0, 1]
                else:
                    after = min(max(model.predict(moved)[0], 0), cap)
                change = score[row] - after  # the feature as it is, against typical
                assert change != 0
                says_raises = " raises " in reason["text"]
                assert says_raises == (change > 0), (reason, change)
                assert reason["effect"] == pytest.approx(change, abs=0.01)
                checked += 1
    assert checked > 300


def test_reasons_never_name_total_spend_beside_purchases_and_average_order():
    """Total spend is purchases x average order: beside both it would share their effect and
    flip signs ("80 purchases lowers the expected value")."""
    features, future = planted_churn()

    models = predictive_fit(features, future, horizon_days=90, seed=0)

    assert "monetary" not in models.features
    assert {"frequency", "aov"} <= set(models.features)


def test_with_sixty_percent_one_time_buyers_every_frequency_score_is_used():
    """The issue's shop: 60% bought once. Ties never split, but the rest spread over 2..5."""
    rng = np.random.default_rng(0)
    purchases = pd.Series(np.where(rng.random(10_000) < 0.6, 1, rng.geometric(0.3, 10_000) + 1))

    scores = quantile_score(purchases)

    assert sorted(scores.unique()) == [1, 2, 3, 4, 5]
    assert (scores[purchases == 1] == 1).all()
    assert (scores[purchases == 2] == 2).all()
    by_value = pd.DataFrame({"v": purchases, "s": scores}).groupby("v")["s"].agg(["min", "max"])
    assert (by_value["min"] == by_value["max"]).all()  # a tie never split
    assert by_value["min"].is_monotonic_increasing


def test_reasons_for_all_rows_at_once_are_the_ones_of_each_row():
    rng = np.random.default_rng(5)
    columns = ["recency", "frequency", "aov", "events_90"]
    values = rng.uniform(0, 100, (50, 4))
    churn_c = rng.normal(0, 0.05, (50, 4))
    value_c = rng.normal(0, 20, (50, 4))

    codes, stated, effects = reasons_for_rows(columns, values, churn_c, value_c)

    assert [reasons_words(codes[i], stated[i], effects[i]) for i in range(50)] == [
        reasons_in_words(columns, values[i], churn_c[i], value_c[i]) for i in range(50)
    ]


def test_linear_models_reasons_in_one_pass_equal_one_prediction_per_feature():
    """The scoring of a million customers takes the linear models' shortcut: its effects must be
    exactly what predicting with each feature alone moved to its typical value gives."""
    features, future = planted_churn()
    frame = with_lifetime_features(features, {}, 90)
    x = frame.to_numpy(dtype="float64")
    churned = (future["frequency"].reindex(features.index).fillna(0) == 0).to_numpy()
    spent = future["monetary"].reindex(features.index).fillna(0).to_numpy()
    columns = list(frame.columns)
    churn_model = churn_candidates(columns, 0)["logistic regression"].fit(x, churned)
    value_model = value_candidates(columns, 0)["Poisson regression"].fit(x, spent)
    baseline = np.median(x, axis=0)

    for model, kind in ((churn_model, "churn"), (value_model, "value")):
        fast = attributions(model, x, baseline, kind, cap=1e6)
        predict = _predictor(model, kind, 1e6)
        slow = np.column_stack(
            [predict(x) - predict(np.where(np.arange(x.shape[1]) == j, baseline, x))
             for j in range(x.shape[1])]
        )  # fmt: skip

        assert np.abs(fast).max() > 0
        assert np.allclose(fast, slow, rtol=1e-9, atol=1e-9), kind
