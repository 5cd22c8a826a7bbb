"""Each request gets an id, answered in X-Request-ID and logged in one JSON line; /metrics shows
request latency by view to a scraper with the token, and to nobody else."""

import json
import logging

import pytest

from crm.logs import JsonFormatter, RequestIdFilter

pytestmark = pytest.mark.django_db


def test_a_request_gets_an_id_in_its_answer_and_in_its_log_line(client, caplog):
    with caplog.at_level(logging.INFO, logger="crm.request"):
        answer = client.get("/login/")

    request_id = answer["X-Request-ID"]
    assert len(request_id) == 32
    [record] = [r for r in caplog.records if r.name == "crm.request"]
    line = json.loads(JsonFormatter().format(_filtered(record)))
    assert line["request_id"] == request_id
    assert (line["method"], line["path"], line["status"], line["view"]) == (
        "GET",
        "/login/",
        200,
        "login",
    )
    assert line["duration_ms"] >= 0


def test_the_proxy_request_id_is_kept_when_well_formed(client):
    answer = client.get("/login/", HTTP_X_REQUEST_ID="lb-4f1c2a9e-0001")

    assert answer["X-Request-ID"] == "lb-4f1c2a9e-0001"


def test_a_request_id_that_could_forge_log_lines_is_replaced(client):
    answer = client.get("/login/", HTTP_X_REQUEST_ID='x" , "level": "ERROR')

    assert answer["X-Request-ID"] != 'x" , "level": "ERROR'
    assert len(answer["X-Request-ID"]) == 32


def test_metrics_are_refused_without_the_token(client, settings):
    settings.METRICS_TOKEN = "scrape-secret-123"

    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403


def test_metrics_show_request_latency_by_view_to_the_scraper(client, settings):
    settings.METRICS_TOKEN = "scrape-secret-123"
    client.get("/login/")

    answer = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret-123")

    assert answer.status_code == 200
    text = answer.content.decode()
    assert 'crm_request_duration_seconds_count{method="GET",status="200",view="login"}' in text
    assert "crm_task_duration_seconds" in text


def test_metrics_answer_an_allowed_address(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = ["127.0.0.1"]

    assert client.get("/metrics").status_code == 200


def _filtered(record):
    RequestIdFilter().filter(record)
    return record
