"""The ML segments REST API as a client sees it."""

import pytest

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
