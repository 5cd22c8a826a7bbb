"""Every page checks role and object: a URL typed by hand reveals nothing a button would not."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.customers.factories import AccountFactory, CustomerFactory, NoteFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def others_customer(other_sales_user):
    return CustomerFactory(owner=other_sales_user, last_name="Foreign")


@pytest.fixture
def others_account(other_sales_user):
    return AccountFactory(owner=other_sales_user, name="Foreign Ltd")


def customer_urls(pk: int) -> list[str]:
    return [
        reverse("customers:customer_detail", args=[pk]),
        reverse("customers:customer_edit", args=[pk]),
        reverse("customers:customer_merge", args=[pk]),
        reverse("customers:customer_purchases", args=[pk]),
    ]


def test_a_salesperson_cannot_open_another_owners_customer_by_url(
    client, sales_user, others_customer
):
    client.force_login(sales_user)

    statuses = [client.get(url).status_code for url in customer_urls(others_customer.pk)]

    assert statuses == [404, 404, 404, 404]


def test_a_salesperson_cannot_write_notes_on_another_owners_customer_or_account(
    client, sales_user, others_customer, others_account, other_sales_user
):
    client.force_login(sales_user)
    note = NoteFactory(customer=others_customer, author=other_sales_user, due_date="2030-01-01")

    responses = [
        client.post(
            reverse("customers:customer_note_create", args=[others_customer.pk]),
            {"body": "x", "kind": "note"},
        ),
        client.post(
            reverse("customers:account_note_create", args=[others_account.pk]),
            {"body": "x", "kind": "note"},
        ),
        client.post(reverse("customers:note_complete", args=[note.pk])),
    ]

    assert [r.status_code for r in responses] == [404, 404, 404]
    note.refresh_from_db()
    assert not note.done


def test_a_salesperson_cannot_open_another_owners_account_by_url(
    client, sales_user, others_account
):
    client.force_login(sales_user)

    assert (
        client.get(reverse("customers:account_detail", args=[others_account.pk])).status_code == 404
    )
    assert (
        client.get(reverse("customers:account_edit", args=[others_account.pk])).status_code == 404
    )


def test_with_the_see_all_setting_a_salesperson_opens_every_customer(
    client, settings, sales_user, others_customer, others_account
):
    settings.CRM_SALES_SEE_ALL = True
    client.force_login(sales_user)

    assert (
        client.get(reverse("customers:customer_detail", args=[others_customer.pk])).status_code
        == 200
    )
    assert (
        client.get(reverse("customers:account_detail", args=[others_account.pk])).status_code == 200
    )


def test_a_merge_cannot_pull_in_a_customer_the_salesperson_may_not_see(
    client, sales_user, others_customer
):
    mine = CustomerFactory(owner=sales_user)
    client.force_login(sales_user)

    response = client.post(
        reverse("customers:customer_merge", args=[mine.pk]),
        {"duplicate": others_customer.pk, "confirm": "on"},
    )

    assert response.status_code == 400
    others_customer.refresh_from_db()


def test_marketing_reads_customers_but_cannot_change_them(client, marketing_user, others_customer):
    client.force_login(marketing_user)

    assert (
        client.get(reverse("customers:customer_detail", args=[others_customer.pk])).status_code
        == 200
    )
    assert (
        client.get(reverse("customers:customer_edit", args=[others_customer.pk])).status_code == 403
    )
    assert client.get(reverse("customers:customer_create")).status_code == 403
    assert (
        client.post(
            reverse("customers:customer_note_create", args=[others_customer.pk]), {"body": "x"}
        ).status_code
        == 403
    )


def test_staff_without_a_role_are_refused(client, make_user, others_customer):
    client.force_login(make_user("nobody"))

    assert client.get(reverse("customers:customer_list")).status_code == 403
    assert client.get(reverse("customers:search"), {"q": "Foreign"}).status_code == 403
    assert client.get(reverse("customers:customer_export")).status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client, others_customer):
    urls = [
        reverse("dashboard"),
        reverse("customers:customer_list"),
        reverse("customers:account_list"),
        reverse("customers:search"),
        reverse("customers:customer_export"),
        *customer_urls(others_customer.pk),
    ]

    for url in urls:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url


def test_forms_refuse_a_post_without_the_csrf_token(sales_user):
    customer = CustomerFactory(owner=sales_user)
    client = Client(enforce_csrf_checks=True)
    client.force_login(sales_user)

    response = client.post(
        reverse("customers:customer_note_create", args=[customer.pk]), {"body": "x", "kind": "note"}
    )

    assert response.status_code == 403


def test_every_form_on_the_pages_carries_a_csrf_token(client, sales_user):
    customer = CustomerFactory(owner=sales_user)
    client.force_login(sales_user)

    for url in (
        reverse("customers:customer_detail", args=[customer.pk]),
        reverse("customers:customer_edit", args=[customer.pk]),
        reverse("dashboard"),
    ):
        page = client.get(url).content.decode()
        post_forms = re.findall(r'<form[^>]*method="post"[^>]*>(.*?)</form>', page, flags=re.S)
        assert post_forms, url
        assert all("csrfmiddlewaretoken" in body for body in post_forms), url


def test_every_page_sends_a_csp_without_unsafe_inline(client, sales_user):
    customer = CustomerFactory(owner=sales_user)
    account = AccountFactory(owner=sales_user)
    pages = [reverse("login")]
    client.get(pages[0])
    client.force_login(sales_user)
    pages += [
        reverse("dashboard"),
        reverse("customers:customer_list"),
        reverse("customers:account_list"),
        reverse("customers:customer_detail", args=[customer.pk]),
        reverse("customers:customer_edit", args=[customer.pk]),
        reverse("customers:customer_create"),
        reverse("customers:customer_merge", args=[customer.pk]),
        reverse("customers:account_detail", args=[account.pk]),
        reverse("customers:account_create"),
        reverse("password_change"),
    ]

    for url in pages:
        policy = client.get(url).headers.get("Content-Security-Policy", "")
        directives = dict(
            (d.strip().split(" ", 1) + [""])[:2] for d in policy.split(";") if d.strip()
        )
        assert "script-src" in directives, url
        assert "'unsafe-inline'" not in directives["script-src"], url
        assert "'unsafe-inline'" not in directives.get("style-src", ""), url


def test_pages_have_no_inline_styles_or_inline_scripts(client, sales_user):
    customer = CustomerFactory(owner=sales_user)
    client.force_login(sales_user)

    for url in (
        reverse("dashboard"),
        reverse("customers:customer_list"),
        reverse("customers:customer_detail", args=[customer.pk]),
    ):
        page = client.get(url).content.decode()
        assert " style=" not in page and "<style" not in page, url
        inline_scripts = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", page)
        assert inline_scripts == [], url
        assert "http://" not in " ".join(re.findall(r"<(?:script|link)[^>]*>", page)), url
