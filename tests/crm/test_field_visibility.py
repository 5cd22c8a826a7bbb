"""Field by field, role by role: a customer field a role may not read is never shown to it, and
it cannot be used to filter, order, search or target either (each of those reveals the value:
16 range filters bisect a birth date). The walk enumerates the customer's fields and, for each
one the role may not read, tries every way to reach it: API responses, API filters, orderings
and search, list pages, CSV exports, and rule fields in the segment preview and save (API and
page).

The second half walks the edit forms: a field the API refuses to a role (an owner other than
the user, an account the user may not see) is refused on the pages too, by the same service.
"""

import csv
import datetime as dt
import io
import json

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from crm.roles import Role
from customers.api.filters import CustomerFilter
from customers.models import Account, Customer, Note
from customers.selectors import customer_fields_hidden_from
from customers.services import customer_merge, customer_update, note_create
from segments import rules
from segments.models import Segment
from tests.customers.factories import AccountFactory, CustomerFactory
from tests.segments.factories import MembershipFactory, StaticSegmentFactory

pytestmark = pytest.mark.django_db

ROLES = ("sales_user", "marketing_user", "privacy_user", "superuser")
# What each role may not read, written out here so that a change of the map is a visible
# decision in this file, not a silent one.
MAY_NOT_READ = {
    "sales_user": set(),
    "marketing_user": {"phone", "birth_date"},
    "privacy_user": set(),
    "superuser": set(),
}
SEGMENT_READERS = ("sales_user", "marketing_user", "superuser")
SEGMENT_MANAGERS = ("marketing_user", "superuser")

PHONE = "+49 30 555 0199"
BORN = dt.date(1983, 7, 19)


@pytest.fixture
def greta(sales_user):
    return CustomerFactory(
        owner=sales_user,
        first_name="Greta",
        last_name="Lind",
        email="greta@example.org",
        phone=PHONE,
        birth_date=BORN,
    )


@pytest.fixture
def greta_segment(greta):
    segment = StaticSegmentFactory(name="Greta's segment")
    MembershipFactory(segment=segment, customer=greta)
    return segment


def _user(request, role):
    return request.getfixturevalue(role)


def _hidden_fields(user) -> list[str]:
    """The customer's fields, enumerated from the model, that the user may not read."""
    hidden = customer_fields_hidden_from(user)
    return [f.name for f in Customer._meta.concrete_fields if f.name in hidden]


def _value(customer: Customer, field: str) -> str:
    value = getattr(customer, field)
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _csv(response) -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


# --- The map --------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_not_read_exactly_what_the_map_says(request, role):
    user = _user(request, role)

    assert set(_hidden_fields(user)) == MAY_NOT_READ[role]


# --- API ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_api_answers_carry_no_field_the_role_may_not_read(request, api_client_for, role, greta):
    user = _user(request, role)
    client = api_client_for(user)

    listed = client.get("/api/customers/").content.decode()
    detail = client.get(f"/api/customers/{greta.pk}/")

    assert detail.status_code == 200
    for field in _hidden_fields(user):
        assert _value(greta, field) not in listed
        assert _value(greta, field) not in detail.content.decode()
        assert detail.data[field] is None
    for field in {"phone", "birth_date"} - MAY_NOT_READ[role]:
        assert detail.data[field] == _value(greta, field)


def _filter_params(field: str) -> set[str]:
    """Every query parameter that filters on the field: the declared filters reading it (a
    range filter takes _after/_before or _min/_max) and the bare name."""
    params = {field, f"{field}_after", f"{field}_before", f"{field}_min", f"{field}_max"}
    for name, spec in CustomerFilter.base_filters.items():
        if (spec.field_name or name).split("__")[0] == field:
            params |= {name, f"{name}_after", f"{name}_before", f"{name}_min", f"{name}_max"}
    return params


@pytest.mark.parametrize("role", ROLES)
def test_api_filters_on_a_field_the_role_may_not_read_are_refused_naming_it(
    request, api_client_for, role, greta
):
    user = _user(request, role)
    client = api_client_for(user)

    for field in _hidden_fields(user):
        for param in sorted(_filter_params(field)):
            response = client.get("/api/customers/", {param: _value(greta, field)})

            assert response.status_code == 400, (field, param)
            assert param in response.data


@pytest.mark.parametrize("role", sorted(set(ROLES) - {"marketing_user"}))
def test_roles_that_read_the_birth_date_still_filter_on_it(request, api_client_for, role, greta):
    client = api_client_for(_user(request, role))

    inside = client.get("/api/customers/", {"birth_date_after": "1983-07-19"})
    outside = client.get("/api/customers/", {"birth_date_after": "1983-07-20"})

    assert [c["id"] for c in inside.data["results"]] == [greta.pk]
    assert outside.data["results"] == []


def test_a_marketer_cannot_bisect_a_birth_date_through_the_api_filters(
    api_client_for, marketing_user, greta
):
    client = api_client_for(marketing_user)
    low, high = dt.date(1900, 1, 1), dt.date(2030, 12, 31)
    statuses = set()

    for _ in range(16):  # 2^16 days cover 179 years
        middle = low + (high - low) // 2
        response = client.get(
            "/api/customers/",
            {"birth_date_after": low.isoformat(), "birth_date_before": middle.isoformat()},
        )
        statuses.add(response.status_code)
        found = response.status_code == 200 and any(
            c["id"] == greta.pk for c in response.data["results"]
        )
        low, high = (low, middle) if found else (middle + dt.timedelta(days=1), high)

    assert statuses == {400}
    assert low != BORN


@pytest.mark.parametrize("role", ROLES)
def test_api_orderings_by_a_field_the_role_may_not_read_are_refused(
    request, api_client_for, role, greta
):
    user = _user(request, role)
    client = api_client_for(user)

    for field in _hidden_fields(user):
        for term in (field, f"-{field}", f"{field}__year"):
            response = client.get("/api/customers/", {"ordering": term})

            assert response.status_code == 400, term
            assert "may not read" in str(response.data["ordering"])


# --- Search ---------------------------------------------------------------------------------


def _found_by(client, greta, term: str) -> dict[str, bool]:
    """Whether each search of the product finds Greta by the term."""
    api = client.get("/api/customers/", {"search": term})
    export = _csv(client.get(reverse("customers:customer_export"), {"q": term}))
    return {
        "api": any(c["id"] == greta.pk for c in api.data["results"]),
        "list page": "Greta" in client.get(reverse("customers:customer_list"), {"q": term}).text,
        "top bar": "Greta" in client.get(reverse("customers:search"), {"q": term}).text,
        "export": any(row[0] == str(greta.pk) for row in export[1:]),
    }


@pytest.mark.parametrize("role", ROLES)
def test_no_search_finds_a_customer_by_a_field_the_role_may_not_read(
    request, client, api_client_for, role, greta
):
    user = _user(request, role)
    client.force_login(user)
    both = _Both(client, api_client_for(user))

    for field in _hidden_fields(user):
        found = _found_by(both, greta, _value(greta, field)[:10])

        assert not any(found.values()), (field, found)
    if "phone" not in MAY_NOT_READ[role]:
        assert all(_found_by(both, greta, PHONE[:10]).values())


class _Both:
    """A page client that sends /api/ requests through the API client."""

    def __init__(self, pages, api):
        self.pages, self.api = pages, api

    def get(self, path, data=None):
        return (self.api if path.startswith("/api/") else self.pages).get(path, data)


# --- Pages and CSV exports ------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_pages_show_no_field_the_role_may_not_read(request, client, role, greta, greta_segment):
    user = _user(request, role)
    client.force_login(user)
    pages = [
        client.get(reverse("customers:customer_list")),
        client.get(reverse("customers:search"), {"q": "Greta"}),
        client.get(reverse("customers:customer_detail", args=[greta.pk])),
    ]
    if role in SEGMENT_READERS:
        pages.append(client.get(reverse("segments:detail", args=[greta_segment.pk])))

    for page in pages:
        assert page.status_code == 200
        assert "Greta" in page.text
        for field in _hidden_fields(user):
            assert _value(greta, field) not in page.text, (page.request["PATH_INFO"], field)


@pytest.mark.parametrize("role", ROLES)
def test_csv_exports_have_no_column_the_role_may_not_read(
    request, client, api_client_for, role, greta, greta_segment
):
    user = _user(request, role)
    client.force_login(user)
    exports = [_csv(client.get(reverse("customers:customer_export")))]
    if role in SEGMENT_READERS:
        response = api_client_for(user).get(f"/api/segments/{greta_segment.pk}/export/")
        exports.append(_csv(response))

    for rows in exports:
        header, body = rows[0], rows[1:]
        assert [str(greta.pk)] == [row[0] for row in body]
        for field in _hidden_fields(user):
            assert field not in header
            assert all(_value(greta, field) not in cell for row in body for cell in row)


@pytest.mark.parametrize("role", ROLES)
def test_list_pages_never_sort_by_a_field_the_role_may_not_read(request, client, role):
    user = _user(request, role)
    CustomerFactory(owner=user, last_name="Anders", birth_date=dt.date(2000, 1, 1))
    CustomerFactory(owner=user, last_name="Zeller", birth_date=dt.date(1950, 1, 1))
    client.force_login(user)

    for field in _hidden_fields(user):
        page = client.get(reverse("customers:customer_list"), {"sort": field})
        export = _csv(client.get(reverse("customers:customer_export"), {"sort": field}))

        assert "Select a valid choice" in page.text
        assert page.text.index("Anders") < page.text.index("Zeller")
        last_names = [row[export[0].index("last_name")] for row in export[1:]]
        assert last_names == ["Anders", "Zeller"]


# --- Rule fields ----------------------------------------------------------------------------


def _unreadable_rule_fields(user) -> list[str]:
    hidden = customer_fields_hidden_from(user)
    return [name for name, spec in rules.FIELDS.items() if spec.revealed in hidden]


def test_a_marketer_has_rule_fields_that_reveal_what_they_may_not_read(marketing_user):
    assert "birth_date" in _unreadable_rule_fields(marketing_user)
    assert "age" not in _unreadable_rule_fields(marketing_user)


@pytest.mark.parametrize("role", SEGMENT_MANAGERS)
def test_rule_fields_the_role_may_not_read_are_refused_in_preview_and_save(
    request, client, api_client_for, role, greta
):
    user = _user(request, role)
    api = api_client_for(user)
    client.force_login(user)
    segment = StaticSegmentFactory()
    rule_segment = Segment.objects.create(
        name="Germans", slug="germans", rule={"field": "country", "op": "eq", "value": "DE"}
    )

    catalogue = api.get("/api/segments/catalogue/").data
    offered = {f["name"] for f in catalogue["fields"]}
    for name in _unreadable_rule_fields(user):
        rule = {"all": [{"field": name, "op": "eq", "value": _value(greta, "birth_date")}]}
        preview = api.post("/api/segments/preview/", {"rule": rule}, format="json")
        created = api.post("/api/segments/", {"name": "Bisect", "rule": rule}, format="json")
        changed = api.patch(f"/api/segments/{rule_segment.pk}/", {"rule": rule}, format="json")
        page = client.post(
            reverse("segments:create"),
            {
                "name": "Bisect page",
                "kind": "rule",
                "rule": json.dumps(rule),
                "min_size_warning": 1,
            },
        )

        assert name not in offered
        assert name not in client.get(reverse("segments:create")).text.split("rule-catalogue")[1]
        for response in (preview, created, changed):
            assert response.status_code == 400, response.data
            assert (
                f"all[0].field: field {name!r} is not visible to your role"
                in (response.data["rule"])
            )
            assert "count" not in response.data
        assert f"all[0].field: field &#x27;{name}&#x27; is not visible to your role" in page.text
        assert not Segment.objects.filter(name__startswith="Bisect").exists()
        rule_segment.refresh_from_db()
        assert rule_segment.rule == {"field": "country", "op": "eq", "value": "DE"}
    assert segment.pk  # the static segment stays untouched


def test_a_marketer_may_target_by_age_which_reveals_the_age_only(
    api_client_for, marketing_user, greta
):
    api = api_client_for(marketing_user)
    age = rules_age(BORN, timezone.localdate())

    exact = api.post(
        "/api/segments/preview/",
        {"rule": {"field": "age", "op": "eq", "value": age}},
        format="json",
    )
    older = api.post(
        "/api/segments/preview/",
        {"rule": {"field": "age", "op": "gt", "value": age}},
        format="json",
    )

    assert exact.status_code == 200 and exact.data["count"] == 1
    assert older.data["count"] == 0
    # The sample names the customer and never a contact detail.
    assert exact.data["sample"] == [
        {"id": greta.pk, "name": "Greta Lind", "email": "greta@example.org", "country": "DE"}
    ]


def rules_age(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


# --- Forms: what the API refuses, the pages refuse ------------------------------------------


@pytest.fixture
def others_account(other_sales_user):
    return AccountFactory(owner=other_sales_user, name="Olga's account")


def _customer_form(customer: Customer, **changes) -> dict:
    data = {
        "first_name": customer.first_name,
        "last_name": customer.last_name,
        "email": customer.email or "",
        "phone": customer.phone,
        "external_id": customer.external_id or "",
        "account": customer.account_id or "",
        "owner": customer.owner_id or "",
        "birth_date": customer.birth_date.isoformat() if customer.birth_date else "",
        "gender": customer.gender,
        "country": customer.country,
        "region": customer.region,
        "city": customer.city,
        "postal_code": customer.postal_code,
        "language": customer.language,
        "income_band": customer.income_band,
        "source": customer.source,
        "tags": "",
    }
    return {**data, **changes}


def _account_form(account: Account, **changes) -> dict:
    data = {
        "name": account.name,
        "kind": account.kind,
        "industry": account.industry,
        "size": account.size,
        "website": account.website,
        "address": account.address,
        "city": account.city,
        "postal_code": account.postal_code,
        "country": account.country,
        "owner": account.owner_id or "",
        "tags": "",
    }
    return {**data, **changes}


def test_a_salesperson_cannot_hand_a_customer_to_a_colleague_through_the_edit_form(
    client, api_client_for, sales_user, other_sales_user, greta
):
    client.force_login(sales_user)

    page = client.post(
        reverse("customers:customer_edit", args=[greta.pk]),
        _customer_form(greta, owner=other_sales_user.pk, city="Hamburg"),
    )
    api = api_client_for(sales_user).patch(
        f"/api/customers/{greta.pk}/", {"owner": other_sales_user.pk}, format="json"
    )

    assert page.status_code == 400
    assert "Only an administrator can assign an owner other than you." in page.text
    assert api.status_code == 400 and "owner" in api.data
    greta.refresh_from_db()
    assert (greta.owner, greta.city) == (sales_user, "Berlin")


def test_a_salesperson_cannot_create_a_customer_for_a_colleague_through_the_form(
    client, sales_user, other_sales_user
):
    client.force_login(sales_user)

    page = client.post(
        reverse("customers:customer_create"),
        _customer_form(
            Customer(first_name="Nia", last_name="Berg", email="nia@example.org"),
            owner=other_sales_user.pk,
        ),
    )

    assert page.status_code == 400
    assert "Only an administrator can assign an owner other than you." in page.text
    assert not Customer.objects.filter(email="nia@example.org").exists()


@pytest.mark.parametrize("owner", ["other", "nobody"])
def test_a_salesperson_cannot_hand_an_account_to_someone_else_through_the_forms(
    client, sales_user, other_sales_user, owner
):
    account = AccountFactory(owner=sales_user, name="Mine")
    new_owner = other_sales_user.pk if owner == "other" else ""
    client.force_login(sales_user)

    edited = client.post(
        reverse("customers:account_edit", args=[account.pk]),
        _account_form(account, owner=new_owner),
    )
    created = client.post(
        reverse("customers:account_create"),
        _account_form(Account(name="Theirs", kind="company", country="DE"), owner=new_owner),
    )

    assert edited.status_code == 400 and created.status_code == 400
    account.refresh_from_db()
    assert account.owner == sales_user
    assert not Account.objects.filter(name="Theirs").exists()


def test_an_admin_hands_a_customer_to_a_salesperson_through_the_form(
    client, superuser, other_sales_user, greta
):
    client.force_login(superuser)

    page = client.post(
        reverse("customers:customer_edit", args=[greta.pk]),
        _customer_form(greta, owner=other_sales_user.pk),
    )

    assert page.status_code == 302
    greta.refresh_from_db()
    assert greta.owner == other_sales_user


def test_a_salesperson_who_sees_every_customer_edits_a_colleagues_customer_keeping_its_owner(
    client, settings, sales_user, other_sales_user
):
    settings.CRM_SALES_SEE_ALL = True
    theirs = CustomerFactory(owner=other_sales_user, first_name="Tom")
    client.force_login(sales_user)

    page = client.post(
        reverse("customers:customer_edit", args=[theirs.pk]),
        _customer_form(theirs, city="Hamburg"),
    )

    assert page.status_code == 302
    theirs.refresh_from_db()
    assert (theirs.owner, theirs.city) == (other_sales_user, "Hamburg")


def test_a_salesperson_who_sees_every_customer_edits_an_unowned_one_leaving_it_unowned(
    client, settings, sales_user
):
    settings.CRM_SALES_SEE_ALL = True
    nobodys = CustomerFactory(owner=None, first_name="Una")
    client.force_login(sales_user)

    page = client.post(
        reverse("customers:customer_edit", args=[nobodys.pk]),
        _customer_form(nobodys, city="Hamburg"),
    )

    assert page.status_code == 302
    nobodys.refresh_from_db()
    assert (nobodys.owner, nobodys.city) == (None, "Hamburg")


def test_the_service_refuses_an_owner_other_than_the_user_whoever_calls_it(
    sales_user, other_sales_user, greta
):
    with pytest.raises(ValidationError) as refused:
        customer_update(customer=greta, actor=sales_user, owner=other_sales_user)

    assert "owner" in refused.value.message_dict
    greta.refresh_from_db()
    assert greta.owner == sales_user


def test_the_service_refuses_an_account_the_user_may_not_see(sales_user, greta, others_account):
    with pytest.raises(ValidationError) as refused:
        customer_update(customer=greta, actor=sales_user, account=others_account)

    assert "account" in refused.value.message_dict
    greta.refresh_from_db()
    assert greta.account is None


def test_the_service_refuses_a_merge_of_a_customer_the_user_may_not_see(
    sales_user, other_sales_user, greta
):
    theirs = CustomerFactory(owner=other_sales_user)

    with pytest.raises(ValidationError) as refused:
        customer_merge(target=greta, duplicate=theirs, actor=sales_user)

    assert "duplicate" in refused.value.message_dict
    assert Customer.objects.filter(pk=theirs.pk).exists()


def test_the_service_refuses_a_note_on_a_customer_or_account_the_user_may_not_see(
    sales_user, other_sales_user, others_account
):
    theirs = CustomerFactory(owner=other_sales_user)

    with pytest.raises(ValidationError):
        note_create(author=sales_user, customer=theirs, body="I was here")
    with pytest.raises(ValidationError):
        note_create(author=sales_user, account=others_account, body="I was here")

    assert not Note.objects.exists()


def test_marketing_has_no_form_that_writes_customers(client, marketing_user, greta):
    client.force_login(marketing_user)

    response = client.post(
        reverse("customers:customer_edit", args=[greta.pk]),
        _customer_form(greta, owner=marketing_user.pk),
    )

    assert response.status_code == 403
    greta.refresh_from_db()
    assert greta.owner.groups.filter(name=Role.SALES).exists()
