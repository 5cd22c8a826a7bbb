"""The customer and account pages as staff use them."""

import base64
import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from crm.roles import Role
from customers.models import Customer, Note, Tag
from customers.services import customer_stats_refresh
from privacy.services import consent_grant, consent_withdraw
from tests.customers.factories import (
    AccountFactory,
    CustomerFactory,
    EventFactory,
    NoteFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def sales_client(client, sales_user):
    client.force_login(sales_user)
    return client


@pytest.fixture
def owned_customer(sales_user):
    return CustomerFactory(
        owner=sales_user, first_name="Greta", last_name="Lindqvist", email="greta@example.com"
    )


@pytest.fixture
def customer_with_history(owned_customer):
    for days in (3, 40, 400):
        PurchaseFactory(
            customer=owned_customer,
            amount=Decimal("120.00"),
            purchased_at=timezone.now() - dt.timedelta(days=days),
        )
    EventFactory(customer=owned_customer, type="email_click")
    NoteFactory(customer=owned_customer, body="Asked about winter boots.")
    customer_stats_refresh(customer_ids=[owned_customer.pk])
    owned_customer.refresh_from_db()
    return owned_customer


def test_customer_page_shows_figures_purchases_and_timeline(sales_client, customer_with_history):
    response = sales_client.get(
        reverse("customers:customer_detail", args=[customer_with_history.pk])
    )

    assert response.status_code == 200
    page = response.content.decode()
    assert "Greta Lindqvist" in page
    assert "360.00" in page  # lifetime value
    assert "Days since last" in page
    assert "Asked about winter boots." in page
    assert "Email click" in page
    assert page.count("Purchase 120.00 EUR") == 3


def test_customer_page_shows_current_consent_per_purpose(sales_client, owned_customer):
    consent_grant(customer=owned_customer, purpose="email_marketing", source="staff")
    consent_withdraw(customer=owned_customer, purpose="sms_marketing", source="staff")

    page = sales_client.get(
        reverse("customers:customer_detail", args=[owned_customer.pk])
    ).content.decode()

    assert "granted" in page.lower()
    assert "withdrawn" in page.lower()


def test_customer_list_shows_only_the_salespersons_own_customers(
    sales_client, owned_customer, other_sales_user
):
    CustomerFactory(owner=other_sales_user, last_name="Elsewhere")

    page = sales_client.get(reverse("customers:customer_list")).content.decode()

    assert "Lindqvist" in page
    assert "Elsewhere" not in page


def test_customer_list_searches_by_name_email_phone_and_external_id(sales_client, sales_user):
    CustomerFactory(
        owner=sales_user,
        last_name="Zander",
        email="zed@example.com",
        phone="+49301234",
        external_id="EXT-77",
    )
    CustomerFactory(
        owner=sales_user,
        last_name="Other",
        email="other@example.com",
        phone="+1555",
        external_id="EXT-88",
    )
    url = reverse("customers:customer_list")

    for term in ("zand", "ZED@EXAMPLE", "+49301", "EXT-77"):
        page = sales_client.get(url, {"q": term}).content.decode()
        assert "Zander" in page, term
        assert "Other" not in page, term


@pytest.mark.parametrize("sort", ["name", "-lifetime_value", "-last_purchase_at"])
def test_search_pages_walk_every_match_once_in_order(sales_client, sales_user, sort):
    """A search matches through several conditions (last name in three casings, email, external
    id); paging through it shows each match exactly once, in the list's order."""
    names = ["Schmidt", "schmitz", "SCHMALZ", "Schmidt", "Becker", "Schmidt"]
    expected = set()
    for i, name in enumerate(names):
        c = CustomerFactory(
            owner=sales_user, last_name=name, first_name=f"F{i}", email=f"p{i}@x.de"
        )
        if name.lower().startswith("schm"):
            expected.add(c.pk)
        PurchaseFactory(customer=c, amount=Decimal(10 + i), purchased_at=timezone.now())
    by_email = CustomerFactory(owner=sales_user, last_name="Becker", email="schmo@x.de")
    by_id = CustomerFactory(owner=sales_user, last_name="Arndt", external_id="schm")
    CustomerFactory(
        owner=sales_user, last_name="Schmidt", email="gone@x.de", erased_at=timezone.now()
    )
    expected |= {by_email.pk, by_id.pk}
    customer_stats_refresh()
    url = reverse("customers:customer_list")

    seen, after = [], ""
    while True:
        params = {"q": "schm", "sort": sort, "size": 2} | ({"after": after} if after else {})
        page = sales_client.get(url, params).context["page"]
        seen.extend(page.rows)
        after = page.next_cursor
        if not after:
            break

    assert sorted(c.pk for c in seen) == sorted(expected)
    from customers.search import CUSTOMER_ORDERS

    order = CUSTOMER_ORDERS[sort]
    everything = Customer.objects.filter(pk__in=expected).order_by(*order.order_by())
    if order.nullable:
        everything = list(everything.filter(**{f"{order.lead}__isnull": False})) + list(
            everything.filter(**{f"{order.lead}__isnull": True}).order_by("-pk")
        )
    assert [c.pk for c in seen] == [c.pk for c in everything]


def test_customer_list_filters_by_country_tag_owner_and_consent(sales_client, sales_user):
    vip = Tag.objects.create(name="vip")
    match = CustomerFactory(owner=sales_user, last_name="Match", country="FR")
    match.tags.add(vip)
    consent_grant(customer=match, purpose="email_marketing", source="staff")
    CustomerFactory(owner=sales_user, last_name="Nomatch", country="FR")

    page = sales_client.get(
        reverse("customers:customer_list"),
        {"country": "fr", "tag": "vip", "owner": sales_user.pk, "consent": "email_marketing"},
    ).content.decode()

    assert "Match" in page
    assert "Nomatch" not in page


def test_owner_filter_offers_those_who_own_or_can_own_customers(
    client, superuser, sales_user, marketing_user, privacy_user, make_user
):
    former_sales = make_user("fred.former", Role.MARKETING)
    CustomerFactory(owner=former_sales)
    client.force_login(superuser)

    form = client.get(reverse("customers:customer_list")).context["form"]

    offered = set(form.fields["owner"].queryset.values_list("username", flat=True))
    assert offered == {superuser.username, sales_user.username, "fred.former"}


def test_customer_list_with_a_bad_filter_shows_the_error_not_a_crash(sales_client):
    response = sales_client.get(
        reverse("customers:customer_list"), {"country": "Narnia", "sort": "bogus"}
    )

    assert response.status_code == 200
    assert "is not a country" in response.content.decode()


@pytest.mark.parametrize(
    "sort", ["name", "-lifetime_value", "lifetime_value", "-last_purchase_at", "last_purchase_at"]
)
def test_keyset_pages_walk_every_customer_once_in_order(sales_client, sales_user, sort):
    customers = [
        CustomerFactory(owner=sales_user, last_name=f"N{i % 4}", first_name=f"F{i}")
        for i in range(13)
    ]
    for i, c in enumerate(customers[:9]):
        PurchaseFactory(
            customer=c,
            amount=Decimal(10 + (i % 3)),
            purchased_at=timezone.now() - dt.timedelta(days=i % 4),
        )
    customer_stats_refresh()
    url = reverse("customers:customer_list")

    seen, after = [], ""
    for _ in range(10):
        response = sales_client.get(
            url, {"sort": sort, "size": 25, "after": after} if after else {"sort": sort, "size": 25}
        )
        seen.extend(c.pk for c in response.context["page"].rows)
        after = response.context["page"].next_cursor
        if not after:
            break
        # smaller pages: walk again with 25 and compare below
    small_pages, after = [], ""
    from customers.search import CUSTOMER_ORDERS
    from customers.views.pagination import keyset_page

    while True:
        page = keyset_page(
            Customer.objects.all(), order=CUSTOMER_ORDERS[sort], cursor=after, size=4
        )
        small_pages.extend(c.pk for c in page.rows)
        after = page.next_cursor
        if not after:
            break

    assert sorted(small_pages) == sorted(c.pk for c in customers)
    assert small_pages == seen


def test_customer_list_query_count_does_not_grow_with_page_size(
    client, sales_user, django_assert_max_num_queries
):
    for i in range(60):
        c = CustomerFactory(owner=sales_user, last_name=f"Person{i:02d}")
        c.tags.add(Tag.objects.get_or_create(name=f"t{i % 3}")[0])
    client.force_login(sales_user)
    url = reverse("customers:customer_list")

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    counts = {}
    for size in (25, 50):
        with CaptureQueriesContext(connection) as ctx:
            response = client.get(url, {"size": size, "sort": "-lifetime_value"})
        assert len(response.context["page"].rows) == size
        counts[size] = len(ctx.captured_queries)

    assert counts[25] == counts[50]
    assert counts[50] <= 12


def test_a_forged_cursor_starts_from_the_first_page(sales_client, owned_customer):
    response = sales_client.get(
        reverse("customers:customer_list"), {"after": "not-a-cursor!!", "sort": "-last_purchase_at"}
    )

    assert response.status_code == 200
    assert owned_customer in response.context["page"].rows


@pytest.mark.parametrize("after", ['["Lind\\u0000", "", 1]', '["\\ud800", "", 1]'])
def test_a_cursor_forged_with_text_no_customer_can_hold_starts_from_the_first_page(
    sales_client, owned_customer, after
):
    cursor = base64.urlsafe_b64encode(after.encode()).decode()

    response = sales_client.get(reverse("customers:customer_list"), {"after": cursor})

    assert response.status_code == 200
    assert owned_customer in response.context["page"].rows


@pytest.mark.parametrize("term", ["Lind\x00", "Lind\U0010ffff", "Lind\ud7ff"])
def test_a_search_term_with_characters_no_name_holds_is_answered_not_an_error(
    sales_client, owned_customer, term
):
    found = sales_client.get(reverse("customers:search"), {"q": term})
    listed = sales_client.get(reverse("customers:customer_list"), {"q": term})

    assert found.status_code == listed.status_code == 200
    # The NUL is dropped, so the term is still a prefix of her name; the others find no one.
    assert ("Lindqvist" in found.content.decode()) == (term == "Lind\x00")


def test_global_search_finds_visible_customers_and_accounts_only(
    sales_client, sales_user, other_sales_user
):
    CustomerFactory(owner=sales_user, last_name="Hofmann")
    CustomerFactory(owner=other_sales_user, last_name="Hoffnung")
    AccountFactory(owner=sales_user, name="Hofbräu Trading")

    page = sales_client.get(reverse("customers:search"), {"q": "hof"}).content.decode()

    assert "Hofmann" in page
    assert "Hofbräu Trading" in page
    assert "Hoffnung" not in page


def test_adding_a_note_with_htmx_returns_the_updated_notes(sales_client, owned_customer):
    response = sales_client.post(
        reverse("customers:customer_note_create", args=[owned_customer.pk]),
        {"body": "Called, wants a quote.", "kind": "call"},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    assert 'id="notes"' in response.content.decode()
    assert "Called, wants a quote." in response.content.decode()
    assert Note.objects.get(customer=owned_customer).kind == "call"


def test_an_empty_note_shows_the_error_next_to_the_body(sales_client, owned_customer):
    response = sales_client.post(
        reverse("customers:customer_note_create", args=[owned_customer.pk]),
        {"body": "", "kind": "note"},
        HTTP_HX_REQUEST="true",
    )

    assert "This field is required." in response.content.decode()
    assert not Note.objects.filter(customer=owned_customer).exists()


def test_completing_a_follow_up_marks_it_done(sales_client, owned_customer, sales_user):
    note = NoteFactory(customer=owned_customer, author=sales_user, due_date=timezone.localdate())

    sales_client.post(reverse("customers:note_complete", args=[note.pk]), HTTP_HX_REQUEST="true")

    note.refresh_from_db()
    assert note.done and note.done_at is not None


def test_editing_a_customer_with_an_invalid_email_shows_the_error_next_to_the_field(
    sales_client, owned_customer
):
    response = sales_client.post(
        reverse("customers:customer_edit", args=[owned_customer.pk]),
        {"first_name": "Greta", "last_name": "Lindqvist", "email": "not-an-email", "country": "SE"},
    )

    assert response.status_code == 400
    assert 'id="id_email_error"' in response.content.decode()
    owned_customer.refresh_from_db()
    assert owned_customer.email == "greta@example.com"


def test_editing_a_customer_saves_fields_tags_and_owner(
    sales_client, owned_customer, other_sales_user
):
    response = sales_client.post(
        reverse("customers:customer_edit", args=[owned_customer.pk]),
        {
            "first_name": "Greta",
            "last_name": "Lind",
            "email": "greta@example.com",
            "country": "se",
            "tags": "vip, Winter",
            "owner": owned_customer.owner_id,
        },
    )

    assert response.status_code == 302
    owned_customer.refresh_from_db()
    assert owned_customer.last_name == "Lind"
    assert owned_customer.country == "SE"
    assert sorted(t.name for t in owned_customer.tags.all()) == ["Winter", "vip"]


def test_an_email_used_by_another_customer_is_refused_whatever_its_case(
    sales_client, owned_customer, sales_user
):
    CustomerFactory(owner=sales_user, email="taken@example.com")

    response = sales_client.post(
        reverse("customers:customer_edit", args=[owned_customer.pk]),
        {"last_name": "Lindqvist", "email": "TAKEN@example.com"},
    )

    assert "Another customer already has this email address." in response.content.decode()


def test_creating_a_customer_makes_the_creator_the_owner_by_default(sales_client, sales_user):
    response = sales_client.post(
        reverse("customers:customer_create"),
        {
            "first_name": "New",
            "last_name": "Lead",
            "email": "lead@example.com",
            "owner": sales_user.pk,
        },
    )

    customer = Customer.objects.get(email="lead@example.com")
    assert response.status_code == 302
    assert customer.owner == sales_user


def test_account_page_shows_its_customers_and_combined_figures(sales_client, sales_user):
    account = AccountFactory(owner=sales_user, name="Nordwind GmbH")
    for amount in ("100.00", "50.00"):
        PurchaseFactory(
            customer=CustomerFactory(owner=sales_user, account=account), amount=Decimal(amount)
        )
    customer_stats_refresh()

    response = sales_client.get(reverse("customers:account_detail", args=[account.pk]))

    assert response.status_code == 200
    assert response.context["figures"]["customers"] == 2
    assert response.context["figures"]["lifetime_value"] == Decimal("150.00")


def test_creating_and_editing_an_account(sales_client, sales_user):
    sales_client.post(
        reverse("customers:account_create"),
        {"name": "Acme", "kind": "company", "owner": sales_user.pk},
    )
    from customers.models import Account

    account = Account.objects.get(name="Acme")
    response = sales_client.post(
        reverse("customers:account_edit", args=[account.pk]),
        {"name": "Acme AG", "kind": "company", "website": "not a url", "owner": sales_user.pk},
    )
    assert response.status_code == 400
    assert "Enter a valid URL." in response.content.decode()

    sales_client.post(
        reverse("customers:account_edit", args=[account.pk]),
        {"name": "Acme AG", "kind": "company", "owner": sales_user.pk, "tags": "key account"},
    )
    account.refresh_from_db()
    assert account.name == "Acme AG"
    assert [t.name for t in account.tags.all()] == ["key account"]


def test_account_notes_and_follow_ups_can_be_added(sales_client, sales_user):
    account = AccountFactory(owner=sales_user)

    sales_client.post(
        reverse("customers:account_note_create", args=[account.pk]),
        {"body": "Renewal talk", "kind": "meeting", "due_date": "2030-01-15"},
    )

    note = Note.objects.get(account=account)
    assert note.due_date == dt.date(2030, 1, 15)


def test_export_streams_the_filtered_list_with_formulas_neutralised(sales_client, sales_user):
    CustomerFactory(
        owner=sales_user, first_name='=HYPERLINK("http://x")', last_name="Evil", country="DE"
    )
    CustomerFactory(owner=sales_user, last_name="Elsewhere", country="FR")

    response = sales_client.get(reverse("customers:customer_export"), {"country": "DE"})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["last_name"] for r in rows] == ["Evil"]
    assert rows[0]["first_name"].startswith("'=")


def test_marketing_export_leaves_out_phone_and_birth_date(client, marketing_user):
    CustomerFactory(phone="+4930111")
    client.force_login(marketing_user)

    response = client.get(reverse("customers:customer_export"))

    header = b"".join(response.streaming_content).decode().splitlines()[0].split(",")
    assert "phone" not in header and "birth_date" not in header
    assert "email" in header


def test_the_lists_link_to_the_import_page(sales_client):
    for url in (reverse("customers:customer_list"), reverse("customers:account_list")):
        assert f'href="{reverse("customer_import:list")}"' in sales_client.get(url).content.decode()


def test_a_filter_a_higher_app_registers_appears_on_the_list_and_narrows_it(
    sales_client, sales_user, monkeypatch
):
    from customers import registry

    wanted = CustomerFactory(owner=sales_user, last_name="Inside")
    CustomerFactory(owner=sales_user, last_name="Outside")
    monkeypatch.setitem(
        registry._list_filters,
        "segment",
        registry.CustomerListFilter(
            key="segment",
            label="Segment",
            choices=lambda: [("7", "Champions")],
            apply=lambda qs, value: qs.filter(pk=wanted.pk) if value == "7" else qs.none(),
        ),
    )

    page = sales_client.get(reverse("customers:customer_list"), {"segment": "7"}).content.decode()

    assert "Champions" in page
    assert "Inside" in page and "Outside" not in page
