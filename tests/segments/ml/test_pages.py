"""The pages of RFM, ML segments and the churn model, for marketers only; the customer panel."""

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from segments.ml.models import CustomerScore, MLJob, MLSegment
from segments.ml.reasons import REASON_FEATURES
from segments.ml.services import ml_segment_create, ml_segment_train, rfm_refresh

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained_ml_segment(three_planted_groups, marketing_user):
    ml_segment = ml_segment_create(
        name="Shoppers", owner=marketing_user, features=["rfm", "aov"], k=3, seed=1
    )
    ml_segment_train(ml_segment=ml_segment)
    return ml_segment


def test_marketer_sees_the_rfm_grid_with_counts_and_moves(
    client, marketing_user, champion, lost_customer
):
    rfm_refresh()
    client.force_login(marketing_user)

    response = client.get(reverse("segments_ml:rfm"))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-r="5" data-f="5"' in body
    assert "Champions" in body and "rfm-moved" in body
    assert "style=" not in body


def test_marketer_sees_the_model_page_with_clusters_metrics_and_chart_data(
    client, marketing_user, trained_ml_segment
):
    client.force_login(marketing_user)

    response = client.get(reverse("segments_ml:detail", args=[trained_ml_segment.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="ml-chart-data"' in body and "metric-silhouette" in body
    for cluster in trained_ml_segment.clusters.all():
        assert cluster.name in body


def test_marketer_creates_an_ml_segment_with_the_form_and_training_is_queued(
    client, marketing_user
):
    client.force_login(marketing_user)

    response = client.post(
        reverse("segments_ml:create"),
        {"name": "Buyers", "features": ["rfm", "tenure"], "scaling": "log_standard",
         "algorithm": "minibatch_kmeans", "k": "", "k_min": 2, "k_max": 4, "seed": 3,
         "window_days": 365, "train": "1"},
    )  # fmt: skip

    ml_segment = MLSegment.objects.get(name="Buyers")
    assert response.status_code == 302
    assert ml_segment.k is None and ml_segment.algorithm == "minibatch_kmeans"
    assert MLJob.objects.filter(ml_segment=ml_segment, kind="train").exists()


def test_the_form_names_the_field_of_a_bad_value(client, marketing_user):
    client.force_login(marketing_user)

    response = client.post(
        reverse("segments_ml:create"),
        {"name": "Bad", "features": ["rfm"], "scaling": "log_standard", "algorithm": "kmeans",
         "k_min": 5, "k_max": 3, "seed": 0, "window_days": 365},
    )  # fmt: skip

    assert response.status_code == 200
    assert "must be at least k_min" in response.content.decode()
    assert not MLSegment.objects.filter(name="Bad").exists()


def test_renaming_a_cluster_renames_its_segment(client, marketing_user, trained_ml_segment):
    client.force_login(marketing_user)
    cluster = trained_ml_segment.clusters.first()

    client.post(reverse("segments_ml:cluster_rename", args=[cluster.pk]), {"name": "VIPs"})

    cluster.refresh_from_db()
    assert cluster.name == "VIPs" and cluster.renamed
    assert cluster.segment.name == "Shoppers: VIPs"


@pytest.mark.parametrize("name", ["rfm", "predictive", "list", "create"])
def test_sales_staff_are_turned_away_from_the_ml_pages(client, sales_user, name):
    client.force_login(sales_user)

    response = client.get(reverse(f"segments_ml:{name}"))

    assert response.status_code == 403


def test_the_customer_page_shows_churn_risk_and_its_reasons(client, marketing_user, champion):
    rfm_refresh()
    CustomerScore.objects.filter(customer=champion).update(
        churn_risk=0.42,
        predicted_value=123,
        reason_features=[REASON_FEATURES.index("recency"), -1, -1, -1, -1, -1],
        reason_values=[200, 0, 0, 0, 0, 0],
        reason_effects=[0.12, 0, 0, 0, 0, 0],
    )
    client.force_login(marketing_user)

    response = client.get(reverse("customers:customer_detail", args=[champion.pk]))

    body = response.content.decode()
    assert "42%" in body
    assert "Last purchase 200 days ago: raises the risk (+12.0 points)" in body
    assert "Champions" in body


def test_marketer_reaches_rfm_ml_and_predictive_pages_from_the_segment_list(client, marketing_user):
    client.force_login(marketing_user)

    page = client.get("/segments/").content.decode()

    for path in ("/segments/ml/rfm/", "/segments/ml/", "/segments/ml/predictive/"):
        assert f'href="{path}"' in page
        assert client.get(path).status_code == 200


def test_the_predictive_page_compares_the_model_with_both_baselines_and_says_why_one_was_refused(
    client, marketing_user
):
    from segments.ml.services import predictive_train
    from tests.segments.ml.test_services import engaged_shop

    engaged_shop()
    predictive_train(min_buyers=40, min_history_days=90)
    client.force_login(marketing_user)

    body = client.get(reverse("segments_ml:predictive")).content.decode()

    assert 'id="churn-baselines"' in body and "BG/NBD alone" in body and "recency alone" in body
    assert 'id="value-baselines"' in body and "BG/NBD x Gamma-Gamma" in body
    assert 'name="as_of"' in body and 'id="fit-lifetime"' in body

    from segments.ml.models import PredictiveModel

    PredictiveModel.objects.create(
        trained_at=timezone.now(), cutoff=timezone.localdate(), as_of=timezone.localdate(),
        active=False, churn_pipeline=b"", value_pipeline=b"",
        metrics={"refused": "Not activated: the churn model does not beat recency alone."},
    )  # fmt: skip
    body = client.get(reverse("segments_ml:predictive")).content.decode()
    assert 'id="model-refused"' in body and "does not beat recency alone" in body


def test_a_lifetime_fit_as_of_a_future_day_is_refused_on_the_page_naming_the_field(
    client, marketing_user
):
    client.force_login(marketing_user)
    tomorrow = timezone.localdate() + dt.timedelta(days=1)

    response = client.post(
        reverse("segments_ml:lifetime_fit"),
        {"as_of": tomorrow.isoformat(), "horizon_days": 365, "annual_discount": 0.1},
        follow=True,
    )

    assert "As of: cannot be in the future" in response.content.decode()
    assert not MLJob.objects.exists()


def test_the_customer_page_shows_lifetime_value_and_the_chance_of_still_buying(
    client, marketing_user, champion
):
    CustomerScore.objects.create(
        customer=champion, expected_purchases=3.2, p_alive=0.87, lifetime_value="412.50"
    )
    client.force_login(marketing_user)

    body = client.get(reverse("customers:customer_detail", args=[champion.pk])).content.decode()

    assert "412.50" in body and "87% chance still active" in body
