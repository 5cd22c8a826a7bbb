"""Every API endpoint, called as every role: nobody reads or writes what they should not.

The endpoints are discovered from the router and the URL resolver, so an endpoint added later
without a row in ENDPOINTS (or OTHER_URLS) fails here until someone decides who may use it.

Each row gives, per role, one letter per action (list, retrieve, create, update, delete):

  O  allowed: list shows the object; retrieve 200; create 201; update 200; delete 204
  E  list answers 200 but without the object (it belongs to someone else)
  D  denied: 401/403, and nothing changed
  H  hidden: 404 for the object, or a 400 naming the parent field on create (a customer or
     account the user may not see does not exist for them); nothing changed
  A  absent: the endpoint does not offer the action (405, or 404 when there is no such URL;
     401/403 for callers who are turned away before that); nothing changed

The object under test belongs to (or hangs off a customer of) `sales_owner`.
"""

from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from crm.api.urls import router
from privacy.models import ConsentRecord, Purpose
from privacy.services import consent_grant
from tests.customers.factories import (
    AccountFactory,
    CustomerFactory,
    EventFactory,
    NoteFactory,
    ProductFactory,
    PurchaseFactory,
)

ROLES = ("anonymous", "no_role", "sales_owner", "other_sales", "marketing", "privacy", "superuser")
ACTIONS = ("list", "retrieve", "create", "update", "delete")


@dataclass
class Endpoint:
    obj: str  # attribute of World holding the object under test
    create: callable  # World -> payload that is valid for someone allowed to create
    update: dict
    expect: dict[str, str]
    parent_field: str = "customer"  # named in the 400 when the parent is hidden
    extra: dict = field(default_factory=dict)


def _expect(**rows: str) -> dict[str, str]:
    rows = {role: letters.replace(" ", "") for role, letters in rows.items()}
    assert set(rows) == set(ROLES), f"every role needs a row, got {sorted(rows)}"
    assert all(len(v) == len(ACTIONS) for v in rows.values())
    return rows


ENDPOINTS: dict[str, Endpoint] = {
    "account": Endpoint(
        obj="account",
        create=lambda w: {"name": "Globex", "country": "FR"},
        update={"industry": "Shipping"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO OOA",
            other_sales="EH OHA",
            marketing="OO DDA",
            privacy="OO DDA",
            superuser="OO OOA",
        ),
    ),
    "customer": Endpoint(
        obj="customer",
        create=lambda w: {"first_name": "Nia", "email": "nia@example.org", "account": w.account.pk},
        update={"city": "Hamburg"},
        parent_field="account",
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO OOA",
            other_sales="EH HHA",
            marketing="OO DDA",
            privacy="OO DDA",
            superuser="OO OOA",
        ),
    ),
    "product": Endpoint(
        obj="product",
        create=lambda w: {"sku": "NEW-1", "name": "Trail shoe", "price": "89.00"},
        update={"name": "Renamed shoe"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO DDD",
            other_sales="OO DDD",
            marketing="OO OOD",
            privacy="DD DDD",
            superuser="OO OOO",
        ),
    ),
    "purchase": Endpoint(
        obj="purchase",
        create=lambda w: {
            "customer": w.customer.pk,
            "purchased_at": (timezone.now() - timedelta(days=1)).isoformat(),
            "amount": "42.50",
            "external_id": "ORDER-NEW",
        },
        update={"amount": "1.00"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO OAA",
            other_sales="EH HAA",
            marketing="OO DAA",
            privacy="OO DAA",
            superuser="OO OAA",
        ),
    ),
    "event": Endpoint(
        obj="event",
        create=lambda w: {
            "customer": w.customer.pk,
            "type": "email_click",
            "occurred_at": timezone.now().isoformat(),
            "properties": {"campaign": 7},
        },
        update={"type": "page_view"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO DAA",
            other_sales="EH DAA",
            marketing="OO OAA",
            privacy="OO DAA",
            superuser="OO OAA",
        ),
    ),
    "note": Endpoint(
        obj="note",
        create=lambda w: {"customer": w.customer.pk, "body": "Wants a quote", "kind": "call"},
        update={"body": "Changed"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="OO OOD",
            other_sales="EH HHD",
            marketing="OO DDD",
            privacy="OO DDD",
            superuser="OO OOO",
        ),
    ),
    "consent": Endpoint(
        obj="consent",
        create=lambda w: {
            "customer": w.customer.pk,
            "purpose": "sms_marketing",
            "state": "granted",
        },
        update={"state": "withdrawn"},
        expect=_expect(
            anonymous="DA DAA",
            no_role="DA DAA",
            sales_owner="OA DAA",
            other_sales="EA DAA",
            marketing="DA DAA",
            privacy="OA OAA",
            superuser="OA OAA",
        ),
    ),
    "purpose": Endpoint(
        obj="purpose",
        create=lambda w: {"code": "new_purpose", "name": "New"},
        update={"name": "Renamed"},
        expect=_expect(
            anonymous="DD DDD",
            no_role="DD DDD",
            sales_owner="DD AAA",
            other_sales="DD AAA",
            marketing="DD AAA",
            privacy="OO AAA",
            superuser="OO AAA",
        ),
    ),
}

# API URLs outside the resources above: name -> the status a GET gets, per role.
_PUBLIC = dict.fromkeys(ROLES, 200)
OTHER_URLS: dict[str, dict[str, int]] = {
    "api-root": {**dict.fromkeys(ROLES, 200), "anonymous": 403},
    "api-schema": _PUBLIC,
    "api-docs": _PUBLIC,
}


@dataclass
class World:
    users: dict
    account: object
    customer: object
    product: object
    purchase: object
    event: object
    note: object
    consent: object
    purpose: object


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    cache.clear()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Seven users per test: the production hasher would spend seconds on each test."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def world(make_user, sales_user, other_sales_user, marketing_user, privacy_user, superuser):
    owner = sales_user
    account = AccountFactory(owner=owner)
    customer = CustomerFactory(owner=owner, account=account)
    return World(
        users={
            "anonymous": None,
            "no_role": make_user("nora.norole"),
            "sales_owner": owner,
            "other_sales": other_sales_user,
            "marketing": marketing_user,
            "privacy": privacy_user,
            "superuser": superuser,
        },
        account=account,
        customer=customer,
        product=ProductFactory(),
        purchase=PurchaseFactory(customer=customer, amount=Decimal("10.00")),
        event=EventFactory(customer=customer),
        note=NoteFactory(customer=customer, author=owner),
        consent=consent_grant(customer=customer, purpose="email_marketing", source="staff"),
        purpose=Purpose.objects.get(code="email_marketing"),
    )


def _api_url_names() -> set[str]:
    """Names of every URL pattern under /api/, found by walking the project's URL resolver."""
    names: set[str] = set()

    def walk(patterns, prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            elif isinstance(pattern, URLPattern) and route.startswith("api/") and pattern.name:
                names.add(pattern.name)

    walk(get_resolver().url_patterns, "")
    return names


def _row(model, pk) -> dict | None:
    obj = model.objects.filter(pk=pk).first()
    return None if obj is None else model_to_dict(obj)


def _ids(response) -> list:
    items = response.data["results"] if isinstance(response.data, dict) else response.data
    return [item.get("id", item.get("code")) for item in items]


def test_every_api_url_has_a_row_in_the_role_table():
    known = {"api-root", *OTHER_URLS}
    for basename in ENDPOINTS:
        known |= {f"{basename}-list", f"{basename}-detail"}

    missing = _api_url_names() - known

    assert not missing, f"API URLs with no row in the role table: {sorted(missing)}"


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("prefix,basename", [(p, b) for p, _v, b in router.registry])
def test_role_reads_and_writes_only_what_it_may(world, api_client_for, prefix, basename, role):
    if basename not in ENDPOINTS:
        pytest.fail(f"/api/{prefix}/ ({basename}) has no row in ENDPOINTS: decide who may use it")
    spec = ENDPOINTS[basename]
    expect = dict(zip(ACTIONS, spec.expect[role], strict=True))
    client = api_client_for(world.users[role])
    obj = getattr(world, spec.obj)
    model = type(obj)
    list_url, detail_url = f"/api/{prefix}/", f"/api/{prefix}/{obj.pk}/"
    turned_away = {401, 403}
    absent = {404, 405} | (turned_away if role in ("anonymous", "no_role") else set())

    def check(action: str, response, unchanged) -> None:
        letter = expect[action]
        where = f"{role} {action} {basename}: got {response.status_code} {response.content[:200]!r}"
        if letter == "O":
            assert response.status_code in (200, 201, 204), where
            return
        if letter == "E":
            assert response.status_code == 200, where
            assert obj.pk not in _ids(response), where
            return
        if letter == "D":
            assert response.status_code in turned_away, where
        elif letter == "H":
            if action == "create":
                assert response.status_code == 400, where
                assert spec.parent_field in response.data, where
            else:
                assert response.status_code == 404, where
        elif letter == "A":
            assert response.status_code in absent, where
        assert unchanged(), f"{where}: the data changed"

    # list
    response = client.get(list_url)
    check("list", response, lambda: True)
    if expect["list"] == "O":
        assert obj.pk in _ids(response), f"{role} does not see the {basename} in the list"
    # retrieve
    response = client.get(detail_url)
    check("retrieve", response, lambda: True)
    # create
    before = model.objects.count()
    response = client.post(list_url, spec.create(world), format="json")
    check("create", response, lambda: model.objects.count() == before)
    if expect["create"] == "O":
        assert model.objects.count() == before + 1
    # update
    before_row = _row(model, obj.pk)
    response = client.patch(detail_url, spec.update, format="json")
    check("update", response, lambda: _row(model, obj.pk) == before_row)
    if expect["update"] == "O":
        field_name, value = next(iter(spec.update.items()))
        assert str(_row(model, obj.pk)[field_name]) == str(value)
    # delete
    response = client.delete(detail_url)
    check("delete", response, lambda: model.objects.filter(pk=obj.pk).exists())
    if expect["delete"] == "O":
        assert not model.objects.filter(pk=obj.pk).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name", sorted(OTHER_URLS))
def test_other_api_urls_answer_each_role_as_the_table_says(world, api_client_for, name, role):
    from django.urls import reverse

    response = api_client_for(world.users[role]).get(reverse(name))

    assert response.status_code == OTHER_URLS[name][role]


@pytest.mark.django_db
def test_consent_ledger_has_no_way_to_change_a_record(world, api_client_for):
    client = api_client_for(world.users["superuser"])
    record = world.consent

    responses = [
        client.put(f"/api/consents/{record.pk}/", {"state": "withdrawn"}, format="json"),
        client.patch(f"/api/consents/{record.pk}/", {"state": "withdrawn"}, format="json"),
        client.delete(f"/api/consents/{record.pk}/"),
    ]

    assert {r.status_code for r in responses} <= {404, 405}
    assert ConsentRecord.objects.get(pk=record.pk).state == "granted"


@pytest.mark.django_db
def test_sales_see_every_customer_when_the_setting_opens_them(world, api_client_for, settings):
    settings.CRM_SALES_SEE_ALL = True
    client = api_client_for(world.users["other_sales"])

    response = client.get(f"/api/customers/{world.customer.pk}/")

    assert response.status_code == 200
