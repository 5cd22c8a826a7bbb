"""Lifetime value: BG/NBD x Gamma-Gamma recover a known world, score every buyer from the SQL
summary, and a back-test (as of a past day) never touches the current scores."""

import datetime as dt
import time
import uuid
from decimal import Decimal

import numpy as np
import pytest
from django.utils import timezone

from bench.generator import BGNBD_TRUTH, BgNbdWorld
from customers.models import Customer, Purchase
from segments.ml import clv, features
from segments.ml.models import BacktestScore, CustomerScore, LifetimeModel, MLJob
from segments.ml.services import lifetime_model_fit
from segments.ml.services.runs import _reference
from segments.ml.tasks import predictive_score_task
from tests.customers.factories import CustomerFactory

NOW = 1_750_000_000


def test_the_fit_recovers_a_known_world_and_forecasts_its_next_twelve_months():
    """100,000 customers simulated by the bench generator's `--world bgnbd` (seeded): every
    parameter within 10% of the truth, and the 12-month forecast of purchases and spend within
    5% of what the simulated customers then do. (At 20,000 customers a and b have a standard
    error near 4%, so 10% would fail for about one seed in ten: the size keeps the test honest.)"""
    world = BgNbdWorld(customers=100_000, seed=1, now=NOW)
    s = world.summary()
    started = time.monotonic()

    bgnbd = clv.bgnbd_fit(s["x"], s["t_x"], s["T"])
    gg = clv.gamma_gamma_fit(s["n"], s["m"])
    purchases, value = clv.lifetime_value(
        bgnbd, gg, x=s["x"], t_x=s["t_x"], T=s["T"], n=s["n"], m=s["m"],
        horizon_days=365, annual_discount=0.0,
    )  # fmt: skip

    fitted = bgnbd.as_dict() | gg.as_dict()
    for name, truth in BGNBD_TRUTH.items():
        assert fitted[name] == pytest.approx(truth, rel=0.10), name
    assert purchases.sum() == pytest.approx(world.future_purchases.sum(), rel=0.05)
    assert value.sum() == pytest.approx(world.future_spend.sum(), rel=0.05)
    assert time.monotonic() - started < 30


def test_a_customer_who_stopped_buying_long_ago_is_less_likely_alive_than_a_regular():
    model = clv.BgNbd(r=0.9, alpha=70.0, a=0.8, b=2.5)
    alive = clv.p_alive(model, x=[10, 10, 0], t_x=[300, 50, 0], T=[310, 310, 310])
    assert alive[0] > 0.9 > 0.2 > alive[1]
    assert alive[2] == 1.0  # one purchase: BG/NBD's customers can only drop out after a repeat


def test_discounting_lowers_the_value_and_a_longer_horizon_raises_it():
    bgnbd = clv.BgNbd(r=0.9, alpha=70.0, a=0.8, b=2.5)
    gg = clv.GammaGamma(p=6.0, q=4.0, gamma=15.0)
    args = {"x": [4], "t_x": [200], "T": [240], "n": [5], "m": [40.0]}
    _, plain = clv.lifetime_value(bgnbd, gg, **args, horizon_days=365, annual_discount=0.0)
    _, discounted = clv.lifetime_value(bgnbd, gg, **args, horizon_days=365, annual_discount=0.2)
    _, longer = clv.lifetime_value(bgnbd, gg, **args, horizon_days=730, annual_discount=0.2)
    assert discounted[0] < plain[0] < longer[0]


def _load_world(world: BgNbdWorld) -> list[Customer]:
    """The simulated purchases as customers and purchases in the database."""
    count = len(world.first_purchase)
    customers = CustomerFactory.create_batch(count)
    ids = np.array([c.pk for c in customers])
    Purchase.objects.bulk_create(
        Purchase(
            customer_id=int(ids[c]),
            purchased_at=dt.datetime.fromtimestamp(int(w), tz=dt.UTC),
            amount=Decimal(int(cents)) / 100,
            dedup_key=uuid.uuid4().hex,
        )
        for c, w, cents in zip(world.customer, world.when, world.cents, strict=True)
    )
    return customers


@pytest.fixture
def simulated_shop(db):
    now = int(_reference(timezone.localdate() - dt.timedelta(days=1)).timestamp())
    world = BgNbdWorld(customers=400, seed=3, now=now)
    return world, _load_world(world)


def test_the_sql_summary_is_the_simulated_customers_own(simulated_shop):
    world, customers = simulated_shop
    reference = _reference(timezone.localdate() - dt.timedelta(days=1))

    summary = features.lifetime_summary(reference=reference)

    truth = world.summary()
    ids = [c.pk for c in customers]
    assert list(summary.index) == sorted(ids)
    for column in ("x", "n"):
        assert (summary.loc[ids, column].to_numpy() == truth[column]).all(), column
    for column in ("t_x", "T", "m"):
        assert np.allclose(summary.loc[ids, column].to_numpy(), truth[column], atol=1e-4)


def test_every_buyer_gets_a_lifetime_value_and_non_buyers_none(simulated_shop):
    _world, customers = simulated_shop
    never_bought = CustomerFactory()

    model = lifetime_model_fit()

    assert model.active and not model.backtest and model.as_of == timezone.localdate()
    scores = CustomerScore.objects.filter(customer__in=customers)
    assert scores.exclude(lifetime_value=None).count() == len(customers)
    assert not CustomerScore.objects.filter(customer=never_bought).exclude(lifetime_value=None)
    assert all(0 <= s.p_alive <= 1 for s in scores)
    total = sum(float(s.lifetime_value) for s in scores)
    assert total == pytest.approx(model.metrics["lifetime_value_total"], rel=1e-3)


def test_a_back_test_keeps_its_scores_and_the_nightly_run_leaves_it_alone(simulated_shop):
    _world, customers = simulated_shop
    current = lifetime_model_fit()
    before = dict(CustomerScore.objects.values_list("customer_id", "lifetime_value"))

    backtest = lifetime_model_fit(as_of=timezone.localdate() - dt.timedelta(days=120))

    assert backtest.backtest and not backtest.active
    assert dict(CustomerScore.objects.values_list("customer_id", "lifetime_value")) == before
    kept = BacktestScore.objects.filter(lifetime_model=backtest)
    assert kept.count() == backtest.customers > 0
    report = backtest.metrics["report"]
    assert report["elapsed_days"] == 120
    assert report["purchases_actual"] > 0 and report["purchases_predicted"] > 0
    assert report["spend_spearman"] > 0.2

    predictive_score_task()  # the nightly run

    backtest.refresh_from_db()
    assert BacktestScore.objects.filter(lifetime_model=backtest).count() == backtest.customers
    assert backtest.metrics["report"] == report
    assert LifetimeModel.objects.get(active=True).pk != current.pk  # refitted as of today


def test_a_fit_as_of_a_future_day_is_refused_naming_the_field(db, marketing_user, api_client_for):
    client = api_client_for(marketing_user)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()

    for value, words in [(tomorrow, "future"), ("31/12/2024", "format")]:
        response = client.post("/api/scores/lifetime/fit/", {"as_of": value}, format="json")
        assert response.status_code == 400
        assert words in str(response.json()["as_of"]).lower()
    response = client.post("/api/scores/lifetime/fit/", {"horizon_days": 3}, format="json")
    assert response.status_code == 400 and "horizon_days" in response.json()
    assert not MLJob.objects.exists()


def test_a_fit_asked_for_in_the_api_is_queued_with_its_as_of_day(
    db, marketing_user, api_client_for
):
    client = api_client_for(marketing_user)
    day = (timezone.localdate() - dt.timedelta(days=30)).isoformat()

    response = client.post(
        "/api/scores/lifetime/fit/", {"as_of": day, "horizon_days": 180}, format="json"
    )

    assert response.status_code == 202, response.content
    job = MLJob.objects.get(pk=response.json()["id"])
    assert job.kind == "lifetime"
    assert job.options == {"as_of": day, "horizon_days": 180}


def test_churn_training_as_of_a_future_day_is_refused_naming_the_field(
    db, marketing_user, api_client_for
):
    client = api_client_for(marketing_user)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()

    response = client.post("/api/scores/churn/train/", {"as_of": tomorrow}, format="json")

    assert response.status_code == 400
    assert "future" in str(response.json()["as_of"])
    assert not MLJob.objects.exists()
