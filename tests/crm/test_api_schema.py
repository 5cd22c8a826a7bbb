"""The API documentation (/api/schema/, /api/docs/) shows what each custom action really takes
and answers: the body it validates, not the body of the resource it hangs off.
"""

import pytest
from drf_spectacular.generators import SchemaGenerator

from campaigns.services import campaign_launch
from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory


@pytest.fixture(scope="module")
def schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _component(schema: dict, ref: str) -> dict:
    return schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]


def documented_body(schema: dict, method: str, path: str) -> dict | None:
    """The documented JSON body of an operation: its writable fields and the required ones."""
    body = schema["paths"][path][method].get("requestBody")
    if body is None:
        return None
    component = _component(schema, body["content"]["application/json"]["schema"]["$ref"])
    properties = component.get("properties", {})
    read_only = {name for name, field in properties.items() if field.get("readOnly")}
    return {
        "fields": set(properties) - read_only,
        "required": set(component.get("required", [])) - read_only,
        "body_required": body.get("required", False),
    }


def documented_answer(schema: dict, method: str, path: str, status: str) -> set[str]:
    """The field names of an operation's documented answer with this status."""
    answer = schema["paths"][path][method]["responses"][status]["content"]["application/json"]
    return set(_component(schema, answer["schema"]["$ref"])["properties"])


WRITE_BODIES = [
    # method, path, fields it accepts, the required ones among them
    ("post", "/api/campaigns/{id}/preview/", {"customer", "variant"}, {"customer"}),
    (
        "post",
        "/api/campaigns/{id}/variants/",
        {"name", "subject", "html", "text", "share"},
        {"subject", "text"},
    ),
    (
        "patch",
        "/api/campaigns/{id}/variants/{variant_id}/",
        {"name", "subject", "html", "text", "share"},
        set(),
    ),
    (
        "put",
        "/api/campaigns/{id}/promotion/",
        {"discount", "value", "code_mode", "shared_code", "expires_at", "redemption_cap"},
        {"value"},
    ),
    ("post", "/api/campaigns/provider-events/", {"events"}, {"events"}),
    ("post", "/api/segments/preview/", {"rule", "segment", "sample_size"}, {"rule"}),
    ("post", "/api/segments/{id}/add-members/", {"customer_ids", "file"}, set()),
    ("post", "/api/segments/{id}/remove-members/", {"customer_ids", "file"}, set()),
    (
        "post",
        "/api/segments/",
        {"name", "slug", "description", "kind", "rule", "refresh_interval", "min_size_warning"},
        {"name"},
    ),
    (
        "post",
        "/api/ml-segments/",
        {"name", "description", "features", "attribute_keys", "scaling", "algorithm"}
        | {"k", "k_min", "k_max", "seed", "window_days"},
        {"name", "features"},
    ),
    ("post", "/api/ml-segments/{id}/clusters/{cluster_id}/rename/", {"name"}, {"name"}),
    ("post", "/api/scores/rfm/run/", {"reference_date", "window_days"}, set()),
    ("post", "/api/scores/churn/train/", {"horizon_days", "as_of"}, set()),
    ("post", "/api/scores/lifetime/fit/", {"as_of", "horizon_days", "annual_discount"}, set()),
    ("post", "/api/data-requests/{id}/transition/", {"status", "reason", "confirm"}, {"status"}),
]


@pytest.mark.parametrize(
    "method,path,fields,required",
    WRITE_BODIES,
    ids=[f"{method.upper()} {path}" for method, path, _, _ in WRITE_BODIES],
)
def test_documented_body_of_a_write_action_is_the_one_it_accepts(
    schema, method, path, fields, required
):
    body = documented_body(schema, method, path)

    assert body is not None, f"{method.upper()} {path} documents no body"
    assert body["fields"] == fields
    assert body["required"] == required
    assert body["body_required"] == bool(required)


NO_BODY = [
    "/api/campaigns/{id}/launch/",
    "/api/campaigns/{id}/pause/",
    "/api/campaigns/{id}/resume/",
    "/api/campaigns/{id}/cancel/",
    "/api/campaigns/{id}/stop/",
    "/api/segments/{id}/refresh/",
    "/api/ml-segments/{id}/train/",
    "/api/ml-segments/{id}/assign/",
]


@pytest.mark.parametrize("path", NO_BODY)
def test_action_that_takes_no_body_documents_none(schema, path):
    assert documented_body(schema, "post", path) is None


def test_campaign_preview_documents_the_rendered_message(schema):
    answer = documented_answer(schema, "post", "/api/campaigns/{id}/preview/", "200")

    assert answer == {"subject", "html", "text"}


def test_segment_member_change_documents_the_counts_and_unmatched_lines(schema):
    for path in ("/api/segments/{id}/add-members/", "/api/segments/{id}/remove-members/"):
        answer = documented_answer(schema, "post", path, "200")

        assert answer == {"joined", "left", "size", "unmatched"}


def test_segment_refresh_documents_the_queued_run(schema):
    answer = documented_answer(schema, "post", "/api/segments/{id}/refresh/", "202")

    assert answer == {"run", "status", "task_id", "state_url"}


def test_ml_training_documents_the_job_to_follow(schema):
    answer = documented_answer(schema, "post", "/api/ml-segments/{id}/train/", "202")

    assert {"id", "status", "progress", "url"} <= answer


def test_campaign_state_change_documents_the_campaign(schema):
    answer = documented_answer(schema, "post", "/api/campaigns/{id}/launch/", "200")

    assert {"id", "name", "status", "variants"} <= answer


def documented_answer_of(schema: dict, method: str, path: str, status: str = "200") -> dict:
    """An operation's documented answer with this status: its media types and JSON schema."""
    content = schema["paths"][path][method]["responses"][status]["content"]
    answer = content.get("application/json", {}).get("schema")
    return {"media_types": set(content), "schema": answer}


PLAIN_LISTS = [
    # path, the component of each item: answered as a list, with no page around it
    ("/api/ml-segments/", "MLSegment"),
    ("/api/ml-segments/{id}/versions/", "Version"),
    ("/api/ml-segments/{id}/clusters/", "Cluster"),
    ("/api/campaigns/{id}/variants/", "Variant"),
    ("/api/purposes/", "Purpose"),
]


@pytest.mark.parametrize("path,item", PLAIN_LISTS, ids=[path for path, _ in PLAIN_LISTS])
def test_read_that_answers_a_plain_list_documents_no_page(schema, path, item):
    answer = documented_answer_of(schema, "get", path)["schema"]

    assert answer["type"] == "array"
    assert answer["items"]["$ref"] == f"#/components/schemas/{item}"


def test_ml_segment_list_documents_no_page_parameters(schema):
    parameters = schema["paths"]["/api/ml-segments/"]["get"].get("parameters", [])

    assert "cursor" not in {parameter["name"] for parameter in parameters}


def test_ml_versions_and_clusters_document_their_own_fields(schema):
    versions = documented_answer_of(schema, "get", "/api/ml-segments/{id}/versions/")
    clusters = documented_answer_of(schema, "get", "/api/ml-segments/{id}/clusters/")

    version = _component(schema, versions["schema"]["items"]["$ref"])["properties"]
    cluster = _component(schema, clusters["schema"]["items"]["$ref"])["properties"]
    assert {"version", "trained_at", "metrics", "stability_ari"} <= set(version)
    assert {"label", "name", "size", "segment", "profile"} <= set(cluster)


def test_segment_run_documents_the_refresh_run_and_its_task_state(schema):
    answer = documented_answer(schema, "get", "/api/segments/{id}/runs/{run_id}/", "200")

    assert answer == {
        "id", "trigger", "status", "created_at", "started_at", "finished_at", "duration", "size",
        "joined", "left", "message", "state", "state_reason", "task_state",
    }  # fmt: skip


def test_segment_export_documents_a_csv_file(schema):
    answer = documented_answer_of(schema, "get", "/api/segments/{id}/export/")

    assert answer["media_types"] == {"text/csv"}


def test_suppression_check_documents_its_answer_as_200(schema):
    responses = schema["paths"]["/api/suppression-check/"]["post"]["responses"]

    assert "200" in responses
    assert "201" not in responses


def test_ml_segment_put_documents_a_partial_body(schema):
    body = documented_body(schema, "put", "/api/ml-segments/{id}/")

    assert body == documented_body(schema, "patch", "/api/ml-segments/{id}/")
    assert body["required"] == set()
    assert body["body_required"] is False
    assert {"name", "features", "k"} <= body["fields"]


def _resolved(schema: dict, field: dict) -> dict:
    """A property's schema with its component reference (plain or nullable) followed."""
    for wrapper in ("allOf", "oneOf"):
        refs = [part for part in field.get(wrapper, []) if "$ref" in part]
        if refs:
            return _component(schema, refs[0]["$ref"])
    return _component(schema, field["$ref"]) if "$ref" in field else field


def documented_fields(schema: dict, method: str, path: str, status: str = "200") -> dict:
    """The documented answer's top-level properties, by name, references followed."""
    answer = documented_answer_of(schema, method, path, status)["schema"]
    properties = _component(schema, answer["$ref"])["properties"]
    return {name: _resolved(schema, field) for name, field in properties.items()}


ANSWERS_OF_READS = [
    # method, path, the top-level fields of the answer
    (
        "get",
        "/api/campaigns/{id}/report/",
        {"campaign", "totals", "variants", "holdout", "uplift", "excluded", "excluded_total"}
        | {"promotion_redemptions", "redemption_cap", "progress", "unknown_reasons"},
    ),
    (
        "get",
        "/api/campaigns/{id}/audience-size/",
        {"targeted", "recipients", "holdout", "excluded"},
    ),
    (
        "post",
        "/api/campaigns/audience-estimate/",
        {"targeted", "recipients", "holdout", "excluded", "holdout_estimated"},
    ),
    (
        "get",
        "/api/campaigns/promotion-codes/{code}/",
        {"code", "valid", "reason", "message", "campaign", "discount", "value"}
        | {"discount_display", "expires_at", "customer", "redemptions", "redemption_cap"},
    ),
    (
        "get",
        "/api/segments/catalogue/",
        {"version", "fields", "attr_operators", "metrics", "consent_states", "channels"},
    ),
    ("get", "/api/scores/rfm/", {"last_run", "classes", "grid"}),
    ("get", "/api/scores/churn/", {"model", "refused", "backtests", "last_job"}),
    ("get", "/api/scores/lifetime/", {"model", "backtests", "last_job"}),
]


@pytest.mark.parametrize(
    "method,path,fields",
    ANSWERS_OF_READS,
    ids=[f"{method.upper()} {path}" for method, path, _ in ANSWERS_OF_READS],
)
def test_answer_documents_its_fields_not_a_bare_object(schema, method, path, fields):
    assert set(documented_fields(schema, method, path)) == fields


def test_unknown_promotion_code_documents_only_the_verdict_as_required(schema):
    answer = documented_answer_of(schema, "get", "/api/campaigns/promotion-codes/{code}/")

    required = _component(schema, answer["schema"]["$ref"])["required"]
    assert set(required) == {"code", "valid", "reason", "message"}


def test_rfm_and_churn_document_the_nested_run_model_and_job(schema):
    rfm = documented_fields(schema, "get", "/api/scores/rfm/")
    churn = documented_fields(schema, "get", "/api/scores/churn/")

    assert {"reference_date", "customers", "moved", "thresholds"} <= set(
        rfm["last_run"]["properties"]
    )
    assert {"trained_at", "horizon_days", "metrics"} <= set(churn["model"]["properties"])
    assert {"id", "status", "progress"} <= set(churn["last_job"]["properties"])
    for path, name in [("rfm", "last_run"), ("churn", "model"), ("churn", "last_job")]:
        answer = documented_answer_of(schema, "get", f"/api/scores/{path}/")["schema"]
        assert _component(schema, answer["$ref"])["properties"][name].get("nullable") is True


def test_customer_detail_documents_consents_as_nullable(schema):
    answer = documented_answer_of(schema, "get", "/api/customers/{id}/")["schema"]

    consents = _component(schema, answer["$ref"])["properties"]["consents"]
    assert consents.get("nullable") is True


@pytest.fixture
def delivered_campaign_with_holdout(settings, django_capture_on_commit_callbacks, marketing_user):
    """A campaign sent to consenting members of its segment, a share of them held out."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CAMPAIGNS_SITE_URL = "http://testserver"
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    segment = StaticSegmentFactory(name="Newsletter readers")
    customers = CustomerFactory.create_batch(12)
    members_add(segment, customers)
    consent_grant_all(customers)
    campaign = CampaignFactory(created_by=marketing_user, holdout_percent=30)
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign, name="A")
    VariantFactory(campaign=campaign, name="B")
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign, actor=marketing_user)
    return campaign


def _documented_vs_answered(schema: dict, documented: dict, answered: dict, at: str) -> list:
    """Where the documented fields and an answer's keys differ, nested objects included."""
    differences = []
    if set(documented) != set(answered):
        differences.append((at, set(documented) ^ set(answered)))
    for name in set(documented) & set(answered):
        field, value = _resolved(schema, documented[name]), answered[name]
        if field.get("type") == "array" and "$ref" in field.get("items", {}):
            field = _resolved(schema, field["items"])
            value = value[0] if value else None
        if isinstance(value, dict) and "properties" in field:
            differences += _documented_vs_answered(
                schema, field["properties"], value, f"{at}.{name}"
            )
    return differences


@pytest.mark.django_db
def test_campaign_report_answers_exactly_the_documented_fields(
    schema, api_client_for, marketing_user, delivered_campaign_with_holdout
):
    campaign = delivered_campaign_with_holdout

    report = api_client_for(marketing_user).get(f"/api/campaigns/{campaign.pk}/report/").json()

    answer = documented_answer_of(schema, "get", "/api/campaigns/{id}/report/")["schema"]
    documented = _component(schema, answer["$ref"])["properties"]
    assert report["variants"] and report["progress"]["sent"] > 0
    assert _documented_vs_answered(schema, documented, report, "report") == []
