"""RFM runs, ML segment training and assignment, predictive scores, on the real database."""

import datetime as dt

import pytest
from django.utils import timezone
from sklearn.metrics import adjusted_rand_score

from customers.models import Event
from segments.compiler import compile_rule
from segments.ml.churn import TrainingRefused
from segments.ml.models import BacktestScore, ClusterAssignment, CustomerScore, MLJob, RfmRun
from segments.ml.services import (
    cluster_rename,
    ml_job_run,
    ml_segment_create,
    ml_segment_train,
    predictive_train,
    rfm_refresh,
)
from segments.ml.tasks import predictive_score_task
from segments.models import Segment
from segments.services import segment_create, segment_refresh
from tests.customers.factories import CustomerFactory
from tests.segments.ml.conftest import buy

pytestmark = pytest.mark.django_db


def test_rfm_run_scores_buyers_and_names_their_class(champion, lost_customer, buyers_in_between):
    run = rfm_refresh()

    assert run.status == RfmRun.Status.DONE
    assert run.customers == 10
    assert CustomerScore.objects.get(customer=champion).rfm_class == "Champions"
    assert CustomerScore.objects.get(customer=lost_customer).rfm_class == "Lost"
    assert CustomerScore.objects.get(customer=champion).rfm_score == 555


def test_each_rfm_class_is_a_ready_segment_with_its_members(
    champion, lost_customer, buyers_in_between
):
    rfm_refresh()

    champions = Segment.objects.get(slug="rfm-champions")
    assert champions.rule == {"field": "rfm_class", "op": "eq", "value": "Champions"}
    members = set(champions.memberships.values_list("customer_id", flat=True))
    assert champion.pk in members
    assert members == set(
        CustomerScore.objects.filter(rfm_class="Champions").values_list("customer_id", flat=True)
    )
    assert Segment.objects.filter(slug__startswith="rfm-").count() == 11


def test_a_second_run_counts_the_customers_who_moved_class(
    champion, lost_customer, buyers_in_between
):
    rfm_refresh()
    for days in (1, 2, 3, 4, 5, 6, 7, 8):
        buy(lost_customer, days_ago=days, amount="900")

    run = rfm_refresh()

    score = CustomerScore.objects.get(customer=lost_customer)
    assert score.previous_rfm_class == "Lost"
    assert score.rfm_class != "Lost"
    assert run.moved >= 1
    assert ["Lost", score.rfm_class] in [m[:2] for m in run.moves]


def test_a_reference_date_in_the_past_scores_the_history_as_it_was_apart_from_today(champion):
    run = rfm_refresh(reference_date=timezone.localdate() - dt.timedelta(days=50), window_days=365)

    assert run.backtest and run.customers == 1
    assert sum(run.classes.values()) == 1
    frequencies = {low for _score, low, _high in run.thresholds["frequency"]}
    assert frequencies == {3}  # the purchases 60, 80 and 100 days ago
    recencies = {low for _score, low, _high in run.thresholds["recency"]}
    assert recencies <= {9, 10}  # from the end of the reference day
    assert not CustomerScore.objects.filter(customer=champion).exists()  # today's scores: none


def test_score_fields_compile_and_customers_without_scores_are_empty(champion, lost_customer):
    never_bought = CustomerFactory()
    rfm_refresh()
    CustomerScore.objects.filter(customer=champion).update(churn_risk=0.1, predicted_value=250)
    CustomerScore.objects.filter(customer=lost_customer).update(churn_risk=0.9, predicted_value=0)

    def ids(rule):
        return set(compile_rule(rule).values_list("pk", flat=True))

    assert ids({"field": "rfm_class", "op": "eq", "value": "Champions"}) == {champion.pk}
    assert ids({"field": "rfm_class", "op": "is_empty"}) == {never_bought.pk}
    assert ids({"field": "rfm_class", "op": "ne", "value": "Champions"}) == {
        lost_customer.pk,
        never_bought.pk,
    }
    assert ids({"field": "churn_risk", "op": "gt", "value": 0.5}) == {lost_customer.pk}
    assert ids({"field": "predicted_value", "op": "gte", "value": "100"}) == {champion.pk}
    assert ids({"field": "rfm_monetary", "op": "between", "value": [1000, 5000]}) == {champion.pk}
    assert ids({"field": "rfm_frequency", "op": "lt", "value": 2}) == {lost_customer.pk}
    assert ids({"field": "rfm_score", "op": "gte", "value": 500}) == {champion.pk}
    assert ids({"field": "rfm_recency", "op": "is_empty"}) == {never_bought.pk}


def test_lifetime_value_and_p_alive_are_rule_fields_and_customers_without_them_are_empty(
    champion, lost_customer
):
    never_bought = CustomerFactory()
    CustomerScore.objects.create(customer=champion, lifetime_value=900, p_alive=0.95)
    CustomerScore.objects.create(customer=lost_customer, lifetime_value="12.50", p_alive=0.1)

    def ids(rule):
        return set(compile_rule(rule).values_list("pk", flat=True))

    assert ids({"field": "predicted_lifetime_value", "op": "gte", "value": "500"}) == {champion.pk}
    assert ids({"field": "predicted_lifetime_value", "op": "lt", "value": 12.51}) == {
        lost_customer.pk
    }
    assert ids({"field": "p_alive", "op": "lt", "value": 0.5}) == {lost_customer.pk}
    assert never_bought.pk not in ids({"field": "p_alive", "op": "lte", "value": 1})
    assert ids({"field": "p_alive", "op": "between", "value": [0.9, 1]}) == {champion.pk}
    # A customer with no score (never bought) is in none of them; the spend so far keeps its
    # name, a different number from the forecast.
    assert ids({"field": "lifetime_value", "op": "gte", "value": 0}) >= {champion.pk}


def test_training_finds_the_planted_groups_and_makes_each_cluster_a_segment(three_planted_groups):
    ml_segment = ml_segment_create(name="Shoppers", owner=None, features=["rfm"], k=3, seed=1)

    version = ml_segment_train(ml_segment=ml_segment)

    truth = {c.pk: g for g, members in enumerate(three_planted_groups) for c in members}
    labels = dict(ClusterAssignment.objects.values_list("customer_id", "label"))
    assert adjusted_rand_score([truth[c] for c in truth], [labels[c] for c in truth]) > 0.9
    assert version.version == 1 and version.k == 3
    assert sorted(version.metrics["sizes"]) == [12, 12, 12]
    clusters = list(ml_segment.clusters.select_related("segment"))
    assert len(clusters) == 3
    for cluster in clusters:
        assert cluster.segment.kind == Segment.Kind.STATIC
        assert cluster.segment.memberships.count() == cluster.size == 12
    assert len({c.name for c in clusters}) == 3
    assert any("high spend" in c.name.lower() for c in clusters)


def test_a_cluster_is_usable_in_a_rule_segment(three_planted_groups):
    ml_segment = ml_segment_create(name="Shoppers", owner=None, features=["rfm"], k=3, seed=1)
    ml_segment_train(ml_segment=ml_segment)
    cluster = ml_segment.clusters.order_by("-profile__z__monetary").first()

    segment = segment_create(
        name="Big spenders in DE",
        owner=None,
        rule={
            "all": [
                {"segment": cluster.segment_id},
                {"field": "country", "op": "eq", "value": "DE"},
            ]
        },
    )
    run = segment_refresh(segment=segment)

    assert run.size == 12
    assert set(segment.memberships.values_list("customer_id", flat=True)) == {
        c.pk for c in three_planted_groups[0]
    }


def test_retraining_keeps_the_cluster_segments_and_names_and_reports_stability(
    three_planted_groups,
):
    ml_segment = ml_segment_create(name="Shoppers", owner=None, features=["rfm"], k=3, seed=1)
    ml_segment_train(ml_segment=ml_segment)
    first = {c.segment_id for c in ml_segment.clusters.all()}
    cluster_rename(cluster=ml_segment.clusters.first(), name="Our favourites")
    ml_segment.seed = 5
    ml_segment.save()

    version = ml_segment_train(ml_segment=ml_segment)

    assert version.version == 2
    assert version.stability_ari == pytest.approx(1.0)
    assert {c.segment_id for c in ml_segment.clusters.filter(active=True)} == first
    assert ml_segment.clusters.filter(name="Our favourites", renamed=True).exists()
    assert Segment.objects.filter(name="Shoppers: Our favourites").exists()


def test_training_job_records_progress_and_result(three_planted_groups):
    ml_segment = ml_segment_create(name="Shoppers", owner=None, features=["rfm", "aov"], seed=1)
    job = MLJob.objects.create(kind=MLJob.Kind.TRAIN, ml_segment=ml_segment)

    job = ml_job_run(job=job)

    assert job.status == MLJob.Status.DONE
    assert job.progress == 100
    assert "trained" in job.message


def test_churn_training_is_refused_with_a_clear_message_when_history_is_short(
    champion, lost_customer
):
    with pytest.raises(TrainingRefused, match=r"at least 500 needed"):
        predictive_train()

    job = ml_job_run(job=MLJob.objects.create(kind=MLJob.Kind.PREDICTIVE))
    assert job.status == MLJob.Status.FAILED
    assert "Too little history" in job.message


def test_a_model_that_does_not_beat_days_since_last_purchase_is_not_activated_saying_why():
    customers = CustomerFactory.create_batch(60)
    for i, customer in enumerate(customers):
        recent = i % 2 == 0
        for j in range(4):
            buy(customer, days_ago=(100 if recent else 250) + 30 * j, amount=str(30 + i))
        if recent:  # the recent half keeps buying after the cut-off: recency says it all
            buy(customer, days_ago=20, amount="50")

    model = predictive_train(min_buyers=40, min_history_days=90)

    assert not model.active and not model.metrics["beats_baselines"]
    assert "does not beat recency alone" in model.metrics["refused"]
    assert not CustomerScore.objects.exclude(churn_risk=None).exists()
    job = ml_job_run(
        job=MLJob.objects.create(
            kind=MLJob.Kind.PREDICTIVE, options={"min_buyers": 40, "min_history_days": 90}
        )
    )
    assert job.status == MLJob.Status.DONE
    assert "Not activated: the churn model's held-out ROC AUC" in job.message


def engaged_shop(count: int = 240) -> list:
    """Customers who last bought 100 to 110 days ago; two in three browsed the shop in the weeks
    before the cut-off, and most of those bought again after it: only the events tell."""
    customers = CustomerFactory.create_batch(count)
    events = []
    for i, customer in enumerate(customers):
        for j in range(1 + i % 4):
            buy(customer, days_ago=100 + (i % 11) + 25 * j, amount=str(20 + 7 * (i % 9)))
        engaged = i % 3 != 0
        if engaged:
            events += [
                Event(customer=customer, type="page_view", occurred_at=_ago(95 + k))
                for k in range(2 + i % 3)
            ]
        if (engaged and i % 5 != 0) or (not engaged and i % 11 == 0):
            buy(customer, days_ago=30 + i % 20, amount=str(25 + 5 * (i % 7)))
    Event.objects.bulk_create(events)
    return customers


def _ago(days: float):
    return timezone.now() - dt.timedelta(days=days)


def test_a_model_that_beats_both_baselines_is_activated_and_scores_every_buyer_with_reasons():
    customers = engaged_shop()

    model = predictive_train(min_buyers=40, min_history_days=90)

    metrics = model.metrics
    assert model.active, metrics["refused"]
    assert model.as_of == timezone.localdate() and not model.backtest
    assert set(metrics["churn"]["baselines"]) == {"recency", "BG/NBD"}
    assert all(m > 0 for name, m in metrics["margins"].items() if "churn" in name)
    assert metrics["churn"]["lift_top10"] is not None
    scores = list(CustomerScore.objects.all())
    assert len(scores) == len(customers)
    assert all(0 <= s.churn_risk <= 1 for s in scores)
    assert any(r["feature"] == "events_90" for s in scores for r in s.reasons["churn"])
    assert all(r["text"] for s in scores for kind in ("churn", "value") for r in s.reasons[kind])


def test_a_back_test_keeps_its_scores_with_its_report_and_leaves_the_current_ones():
    engaged_shop()
    current = predictive_train(min_buyers=40, min_history_days=90)
    before = dict(CustomerScore.objects.values_list("customer_id", "churn_risk"))

    backtest = predictive_train(
        min_buyers=40, min_history_days=60, as_of=timezone.localdate() - dt.timedelta(days=10)
    )

    assert backtest.backtest and not backtest.active
    current.refresh_from_db()
    assert current.active
    assert dict(CustomerScore.objects.values_list("customer_id", "churn_risk")) == before
    report = backtest.metrics["report"]
    assert report["days_since"] == 10 and "Only 10 of the 90 days" in report["note"]
    assert BacktestScore.objects.filter(predictive_model=backtest).count() == report["customers"]

    predictive_score_task()  # the nightly run scores with the current model only

    assert BacktestScore.objects.filter(predictive_model=backtest).count() == report["customers"]


def test_an_rfm_run_as_of_a_past_day_keeps_its_classes_and_the_nightly_run_leaves_scores_alone(
    champion, lost_customer, buyers_in_between
):
    current = rfm_refresh()
    before = dict(CustomerScore.objects.values_list("customer_id", "rfm_class"))

    past = rfm_refresh(reference_date=timezone.localdate() - dt.timedelta(days=60))

    assert past.backtest and past.status == RfmRun.Status.DONE
    assert sum(past.classes.values()) == past.customers > 0
    assert dict(CustomerScore.objects.values_list("customer_id", "rfm_class")) == before
    from segments.ml.selectors import rfm_last_run

    assert rfm_last_run() == current
    assert not current.backtest and sum(current.classes.values()) == current.customers


def test_an_rfm_run_as_of_a_future_day_is_refused_naming_the_field(marketing_user, api_client_for):
    client = api_client_for(marketing_user)
    tomorrow = (timezone.localdate() + dt.timedelta(days=1)).isoformat()

    response = client.post("/api/scores/rfm/run/", {"reference_date": tomorrow}, format="json")

    assert response.status_code == 400
    assert "future" in str(response.json()["reference_date"])
    assert not RfmRun.objects.exists()
