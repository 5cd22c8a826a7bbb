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


def test_the_audit_log_names_segments_and_campaigns_instead_of_numbers(
    client, privacy_user, django_assert_max_num_queries
):
    from privacy.audit import audit_record
    from tests.campaigns.factories import CampaignFactory
    from tests.segments.factories import SegmentFactory

    segment = SegmentFactory(name="VIP customers")
    campaign = CampaignFactory(name="Spring sale")
    customer = CustomerFactory(first_name="Greta", last_name="Sample")
    audit_record(actor=privacy_user, action="export", object_kind="segment_members",
                 object_id=segment.pk)  # fmt: skip
    for _ in range(5):
        audit_record(actor=privacy_user, action="export", object_kind="customer",
                     object_id=customer.pk, details={"campaign": campaign.pk, "as": "test_message"})  # fmt: skip
    audit_record(actor=privacy_user, action="consent", object_kind="bulk_consent_job", object_id=9,
                 details={"segment": segment.pk, "customers": 1200})  # fmt: skip
    client.force_login(privacy_user)
    client.get(reverse("privacy:audit_log"))

    with django_assert_max_num_queries(10):
        page = client.get(reverse("privacy:audit_log")).content.decode()

    assert "Segment members VIP customers" in page
    assert "Customer Greta Sample" in page
    assert "Campaign: Spring sale (#" in page and "As: Test message" in page
    assert "Segment: VIP customers (#" in page and "Customers: 1,200" in page


def test_sources_and_consent_states_read_as_words(client, superuser):
    from privacy.services import consent_record

    customer = CustomerFactory(source="web_form")
    consent_record(customer=customer, purpose="email_marketing", state="granted", source="form")
    client.force_login(superuser)

    page = client.get(reverse("customers:customer_detail", args=[customer.pk])).content.decode()

    assert "<dd>Web form</dd>" in page and "web_form" not in page
    assert '<span class="badge consent-granted granted">Granted</span>' in page


def test_a_source_typed_in_words_is_shown_as_written():
    from crm.labels import code_label

    assert code_label("LinkedIn Ads") == "LinkedIn Ads"
    assert code_label("job_title") == "Job title"
    assert code_label("account.size") == "Account size"
