"""Property-based fuzzing of every REST API operation, driven by the OpenAPI schema.

Schemathesis turns each operation of the schema the app itself generates into a Hypothesis
strategy of requests (body, query string, path ids; both valid and deliberately invalid ones).
Each request goes through Django's test client as a signed-in user, and whatever it holds:

- the API never answers 5xx (nor raises);
- a 400 to a JSON write is an object of errors by field (`non_field_errors` when the body as
  a whole is the problem), not a bare `detail`, so a client knows what to fix; and the fields
  it names are fields of the body the documentation shows (ERRORS_BEYOND_BODY lists what
  else a few operations name, and why).

Path ids are drawn either from the generated values or from objects that exist, so requests
also reach the code behind a found object and not only the 404 path.

Bodies are sent as JSON, the one request format of the API (the member uploads of segments
also take multipart). The runs are derandomized and small (MAX_EXAMPLES per operation and role) to keep
CI deterministic and quick; set CRM_API_FUZZ_EXAMPLES (e.g. 100) to search harder locally.
"""

import json
import os
from decimal import Decimal
from urllib.parse import urlencode

import pytest
import schemathesis
from django.core.cache import cache
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.core import NOT_SET
from schemathesis.generation import GenerationMode

from campaigns.models import Campaign, Variant
from privacy.models import DataExport, Purpose, RequestType
from segments.ml.models import MLSegment
from segments.models import RefreshRun
from tests.customers.factories import (
    AccountFactory,
    CustomerFactory,
    EventFactory,
    NoteFactory,
    ProductFactory,
    PurchaseFactory,
)
from tests.privacy.factories import DataSubjectRequestFactory
from tests.segments.factories import MembershipFactory

MAX_EXAMPLES = int(os.environ.get("CRM_API_FUZZ_EXAMPLES", "10"))

SCHEMA = SchemaGenerator().get_schema(request=None, public=True)
API = schemathesis.openapi.from_dict(json.loads(json.dumps(SCHEMA, default=str)))

# Endpoints a sales user works with (their own accounts and customers, and what hangs off them).
SALES_PREFIXES = ("/api/accounts/", "/api/customers/", "/api/notes/", "/api/purchases/",
                  "/api/events/", "/api/products/")  # fmt: skip

# Operations left out of the fuzzing, each with the reason. (Celery runs eagerly in tests, so
# operations that queue a task are fuzzed like the rest.)
SKIPPED: dict[tuple[str, str], str] = {}

WRITE_METHODS = {"POST", "PUT", "PATCH"}

# Operations whose 400s may name more than the fields of the documented body: what else.
ERRORS_BEYOND_BODY: dict[tuple[str, str], set[str]] = {
    # A provider's batch is answered with counts and its errors by position (400 when none of
    # its events was recorded).
    ("POST", "/api/campaigns/provider-events/"): {"recorded", "unknown", "errors"},
    # A data-subject request refuses a change its state does not allow under the field of the
    # request that is in the way (closed, already extended, not matched, no export yet).
    ("POST", "/api/data-requests/{id}/extend/"): {"extended", "status"},
    ("POST", "/api/data-requests/{id}/match/"): {"status"},
    ("POST", "/api/data-requests/{id}/transition/"): {"customer", "exports"},
}


def _documented_fields(method: str, path: str) -> set[str]:
    """The fields of the JSON body the schema documents for an operation."""
    body = SCHEMA["paths"][path][method.lower()].get("requestBody") or {}
    schema = body.get("content", {}).get("application/json", {}).get("schema", {})
    if "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return set(schema.get("properties", {}))


def _operations() -> list[tuple[str, str]]:
    found = []
    for path, item in SCHEMA["paths"].items():
        for method in item:
            if method in ("get", "post", "put", "patch", "delete"):
                found.append((method.upper(), path))
    return found


def _cases() -> list:
    cases = []
    for method, path in _operations():
        roles = ["marketing", "superuser"]
        if path.startswith(SALES_PREFIXES):
            roles.append("sales")
        for role in roles:
            marks = []
            if (method, path) in SKIPPED:
                marks.append(pytest.mark.skip(reason=SKIPPED[method, path]))
            cases.append(
                pytest.param(method, path, role, id=f"{role}-{method}-{path}", marks=marks)
            )
    return cases


@pytest.fixture
def world(sales_user, marketing_user, superuser, settings, tmp_path):
    """One object of each kind, so that generated requests can reach existing rows too."""
    settings.MEDIA_ROOT = tmp_path
    from privacy.services import consent_grant

    account = AccountFactory(owner=sales_user)
    customer = CustomerFactory(owner=sales_user, account=account)
    PurchaseFactory(customer=customer, amount=Decimal("10.00"))
    consent_grant(customer=customer, purpose="email_marketing", source="staff")
    segment = MembershipFactory(customer=customer).segment
    campaign = Campaign.objects.create(name="Draft", consent_purpose_id="email_marketing")
    variant = Variant.objects.create(
        campaign=campaign, subject="Hello", text="Hi {{ customer.first_name }}"
    )
    run = RefreshRun.objects.create(segment=segment, trigger=RefreshRun.Trigger.MANUAL)
    ids = {
        "/api/accounts/": account.pk,
        "/api/customers/": customer.pk,
        "/api/notes/": NoteFactory(customer=customer, author=sales_user).pk,
        "/api/purchases/": customer.purchases.first().pk,
        "/api/events/": EventFactory(customer=customer).pk,
        "/api/products/": ProductFactory().pk,
        "/api/segments/": segment.pk,
        "/api/campaigns/": campaign.pk,
        "/api/ml-segments/": MLSegment.objects.create(name="Clusters", features=["rfm"]).pk,
        "/api/data-requests/": DataSubjectRequestFactory(
            customer=customer, type=RequestType.ACCESS
        ).pk,
        "/api/data-exports/": DataExport.objects.create(
            customer=customer, requested_by=sales_user
        ).pk,
        "/api/purposes/": Purpose.objects.get(code="email_marketing").code,
    }
    sub_ids = {"variant_id": variant.pk, "run_id": run.pk, "customer_id": customer.pk}
    return {
        "users": {"sales": sales_user, "marketing": marketing_user, "superuser": superuser},
        "ids": ids,
        "sub_ids": sub_ids,
    }


def _real_path_parameters(path: str, world: dict) -> dict:
    """Ids of existing objects for the parameters of `path`, where the world has one."""
    known = {}
    for prefix, pk in world["ids"].items():
        if path.startswith(prefix + "{"):
            known["id" if "{id}" in path else "code"] = pk
    for name, pk in world["sub_ids"].items():
        if "{" + name + "}" in path:
            known[name] = pk
    return known


def _strategy(method: str, path: str):
    operation = API[path][method]
    return st.one_of(
        operation.as_strategy(generation_mode=mode, media_type="application/json")
        if operation.body
        else operation.as_strategy(generation_mode=mode)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    )


def _bytes_as_text(value):
    # Fields of format "binary" come out as bytes; JSON carries them as text.
    if isinstance(value, bytes):
        return value.decode("latin-1")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


@pytest.mark.django_db
@pytest.mark.parametrize("method,path,role", _cases())
def test_api_answers_generated_requests_without_server_errors(
    world, api_client_for, method, path, role
):
    client = api_client_for(world["users"][role])
    real_ids = _real_path_parameters(path, world)
    may_name = _documented_fields(method, path) | {"non_field_errors"}
    may_name |= ERRORS_BEYOND_BODY.get((method, path), set())

    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # a failing request is reported as generated, unshrunk
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_strategy(method, path), use_real_ids=st.booleans())
    def check(case, use_real_ids):
        cache.clear()  # throttle counts
        parameters = dict(case.path_parameters or {})
        if use_real_ids:
            parameters.update(real_ids)
        url = path.format(**{k: str(v) for k, v in parameters.items()})
        if case.query:
            url += "?" + urlencode(case.query, doseq=True)
        sends_json = method in WRITE_METHODS and case.body is not NOT_SET
        data = json.dumps(case.body, default=_bytes_as_text) if sends_json else None
        where = f"{method} {url} body={data!r} as {role}"

        try:
            response = client.generic(method, url, data=data or "", content_type="application/json")
        except Exception as exc:
            raise AssertionError(f"{where} raised {exc!r}") from exc

        content = b"".join(response.streaming_content) if response.streaming else response.content
        assert response.status_code < 500, f"{where}: {response.status_code} {content[:300]!r}"
        if sends_json and response.status_code == 400:
            errors = response.json()
            assert isinstance(errors, dict), f"{where}: 400 without field errors: {errors!r}"
            assert set(errors) - {"detail"}, f"{where}: 400 names no field: {errors!r}"
            unknown = set(errors) - may_name
            assert not unknown, f"{where}: 400 names {unknown} outside the body: {errors!r}"

    check()
