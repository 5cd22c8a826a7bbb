"""The OpenAPI document is a contract a client can be generated from: bodies are JSON (a file
upload is multipart), choices that may be blank or null say so, and a rule is typed by the rule
language's schema. The generated client's journey is tests/integration/test_generated_client.py.
"""

import pytest
from drf_spectacular.generators import SchemaGenerator

UPLOADS = {"/api/segments/{id}/add-members/", "/api/segments/{id}/remove-members/"}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def _bodies(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "requestBody" in operation:
                yield path, method, set(operation["requestBody"]["content"])


def test_every_body_is_json_and_only_uploads_are_also_multipart(schema):
    bodies = {(path, method): types for path, method, types in _bodies(schema)}

    assert bodies
    for (path, _method), types in bodies.items():
        expected = {"application/json", "multipart/form-data"} if path in UPLOADS else None
        assert types == (expected or {"application/json"}), path


@pytest.mark.django_db
def test_a_form_encoded_body_is_refused_as_unsupported(api_client_for, sales_user):
    response = api_client_for(sales_user).post(
        "/api/customers/",
        "first_name=Ada&last_name=Lovelace",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 415
    assert "application/x-www-form-urlencoded" in response.json()["detail"]


def _component(schema, ref):
    return schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[-1]]


@pytest.mark.parametrize(
    ("component", "field", "enum"),
    [
        ("CustomerList", "income_band", "IncomeBandEnum"),
        ("CustomerDetail", "income_band", "IncomeBandEnum"),
        ("CustomerDetail", "gender", "GenderEnum"),
        ("CustomerWriteRequest", "gender", "GenderEnum"),
    ],
)
def test_a_choice_a_customer_may_leave_blank_documents_the_blank_choice(
    schema, component, field, enum
):
    documented = schema["components"]["schemas"][component]["properties"][field]

    refs = {ref["$ref"].rsplit("/", 1)[-1] for ref in documented["oneOf"]}
    # A write may also send null for "not given", which the field's cleaner stores as blank.
    assert refs - {"NullEnum"} == {enum, "BlankEnum"}
    assert "NullEnum" not in refs or component.endswith("Request")
    assert schema["components"]["schemas"]["BlankEnum"] == {"enum": [""]}


def test_the_rule_fields_document_the_rule_language(schema):
    components = schema["components"]["schemas"]
    preview_rule = components["SegmentPreviewRequest"]["properties"]["rule"]
    segment_rule = components["Segment"]["properties"]["rule"]
    write_rule = components["SegmentWriteRequest"]["properties"]["rule"]

    assert preview_rule == {"$ref": "#/components/schemas/SegmentRule"}
    assert {"$ref": "#/components/schemas/SegmentRule"} in segment_rule["anyOf"]
    assert write_rule["anyOf"] == segment_rule["anyOf"]
    branches = {ref["$ref"].rsplit("/", 1)[-1] for ref in components["SegmentRule"]["anyOf"]}
    assert {"SegmentRuleAll", "SegmentRuleAny", "SegmentRuleNot", "SegmentRuleConsent"} <= branches
    assert components["SegmentRuleAll"]["properties"]["all"]["items"] == {
        "$ref": "#/components/schemas/SegmentRule"
    }
    age = components["SegmentRuleFieldAgeValue"]["properties"]
    assert age["field"]["enum"] == ["age"]
    assert age["value"] == {"type": "integer", "minimum": 0, "maximum": 200}
