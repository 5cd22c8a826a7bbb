"""The ML segments REST API as a client sees it."""

import numpy as np
import pytest
from django.utils import timezone

from segments.ml.bulk import scores_write
from segments.ml.models import CustomerScore
from segments.ml.reasons import REASON_FEATURES
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "method,url",
    [
        ("get", "/api/ml-segments/null/"),
        ("patch", "/api/ml-segments/null/"),
        ("put", "/api/ml-segments/null/"),
        ("post", "/api/ml-segments/null/train/"),
        ("post", "/api/ml-segments/null/assign/"),
        ("get", "/api/ml-segments/%3A/jobs/1/"),
    ],
)
def test_ml_segment_url_with_an_id_that_is_no_number_is_not_found(
    api_client_for, marketing_user, method, url
):
    client = api_client_for(marketing_user)

    response = getattr(client, method)(url, {"name": "Spenders"}, format="json")

    assert response.status_code == 404


def test_cluster_rename_under_an_ml_segment_id_beyond_the_database_range_is_not_found(
    api_client_for, marketing_user
):
    client = api_client_for(marketing_user)

    response = client.post(
        "/api/ml-segments/7985756961191449395573572/clusters/1/rename/",
        {"name": "Big spenders"},
        format="json",
    )

    assert response.status_code == 404


def test_a_customers_scores_come_with_their_reasons_in_words(api_client_for, marketing_user):
    customer = CustomerFactory()
    CustomerScore.objects.create(
        customer=customer,
        churn_risk=0.42,
        predicted_value=80,
        reason_features=[REASON_FEATURES.index("recency"), -1, -1,
                         REASON_FEATURES.index("aov"), -1, -1],
        reason_values=[240, 0, 0, 55.5, 0, 0],
        reason_effects=[0.18, 0, 0, 12.25, 0, 0],
    )  # fmt: skip

    response = api_client_for(marketing_user).get(f"/api/scores/customers/{customer.pk}/")

    assert response.status_code == 200
    assert response.json()["reasons"] == {
        "churn": [
            {
                "feature": "recency",
                "text": "Last purchase 240 days ago: raises the risk (+18.0 points)",
                "effect": 0.18,
            }
        ],
        "value": [
            {
                "feature": "aov",
                "text": "Average order 55.50: raises the expected value (+12.25)",
                "effect": 12.25,
            }
        ],
    }


def _scores_write(customers: list) -> int:
    ids = np.array([c.pk for c in customers], dtype=np.int64)
    return scores_write(
        customer_ids=ids,
        columns={"p": ("float8", np.linspace(0, 1, len(ids)))},
        assignments={"p_alive": "t.p", "lifetime_computed_at": "%(at)s"},
        params={"at": timezone.now()},
    )


def test_the_score_write_back_takes_the_same_statements_for_any_number_of_customers(
    django_assert_max_num_queries,
):
    few, many = CustomerFactory.create_batch(3), CustomerFactory.create_batch(60)
    CustomerScore.objects.create(customer=many[0], rfm_class="Champions", p_alive=0.5)

    with django_assert_max_num_queries(12) as few_queries:
        assert _scores_write(few) == 3
    with django_assert_max_num_queries(len(few_queries.captured_queries)):
        assert _scores_write(many) == 60  # one existing row updated, 59 inserted

    kept = CustomerScore.objects.get(customer=many[0])
    assert kept.rfm_class == "Champions" and kept.p_alive == 0.0  # only the written columns
    assert CustomerScore.objects.get(customer=many[-1]).p_alive == 1.0
