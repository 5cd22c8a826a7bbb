"""The audit log names what changed in words: the fields an edit changed (names are not
personal data; values are), with labels instead of keys."""

import pytest
from django.urls import reverse

from customers.services import customer_update
from privacy.models import AuditEntry
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_a_two_field_edit_is_logged_with_the_two_field_names(superuser):
    customer = CustomerFactory(city="Bonn")

    customer_update(customer=customer, actor=superuser, city="Köln", first_name=customer.first_name,
                    last_name="Neu", email=customer.email)  # fmt: skip

    entry = AuditEntry.objects.filter(object_kind="customer", action="change").latest("pk")
    assert entry.details == {"fields": ["city", "last_name"]}


def test_the_audit_log_lists_the_field_names_not_removed_markers(client, privacy_user, superuser):
    customer = CustomerFactory(city="Bonn")
    customer_update(customer=customer, actor=superuser, city="Köln", last_name="Neu")
    client.force_login(privacy_user)

    page = client.get(reverse("privacy:audit_log")).content.decode()

    assert "Fields: city, last name" in page
    assert "[removed]" not in page


def test_the_customer_list_page_size_selector_shows_the_size_in_use(client, superuser):
    client.force_login(superuser)

    page = client.get(reverse("customers:customer_list"), {"q": "x"}).content.decode()

    assert '<option value="50" selected>50</option>' in page
