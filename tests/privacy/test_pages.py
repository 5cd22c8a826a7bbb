import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from privacy.models import (
    AuditEntry,
    BulkConsentJob,
    ConsentRecord,
    ConsentWording,
    DataSubjectRequest,
)
from privacy.selectors import dsr_counts
from tests.confirming import press_confirm
from tests.customers.factories import CustomerFactory
from tests.privacy.factories import DataSubjectRequestFactory

pytestmark = pytest.mark.django_db

PAGES = [
    "privacy:request_queue",
    "privacy:request_create",
    "privacy:audit_log",
    "privacy:retention",
    "privacy:processing",
    "privacy:wordings",
    "privacy:bulk_consent",
]


@pytest.mark.parametrize("name", PAGES)
def test_privacy_pages_open_for_privacy_officers_and_superusers(
    client, privacy_user, superuser, name
):
    for user in (privacy_user, superuser):
        client.force_login(user)
        assert client.get(reverse(name)).status_code == 200


@pytest.mark.parametrize("name", PAGES)
def test_privacy_pages_are_refused_to_sales_and_marketing_and_anonymous(
    client, sales_user, marketing_user, name
):
    assert client.get(reverse(name)).status_code == 302  # to the sign-in page
    for user in (sales_user, marketing_user):
        client.force_login(user)
        assert client.get(reverse(name)).status_code == 403


def test_queue_is_sorted_by_deadline_and_highlights_overdue_requests(client, privacy_user):
    today = timezone.localdate()
    later = DataSubjectRequestFactory(received_on=today)
    overdue = DataSubjectRequestFactory(received_on=today - dt.timedelta(days=60))
    DataSubjectRequestFactory(status="completed", received_on=today - dt.timedelta(days=90))
    client.force_login(privacy_user)

    html = client.get(reverse("privacy:request_queue")).content.decode()

    assert html.index(f'data-request="{overdue.pk}"') < html.index(f'data-request="{later.pk}"')
    assert f'class="overdue" data-request="{overdue.pk}"' in html
    assert dsr_counts() == {"open": 2, "overdue": 1, "due_this_week": 0}


def test_staff_record_a_request_with_its_deadline(client, privacy_user):
    customer = CustomerFactory()
    client.force_login(privacy_user)

    response = client.post(
        reverse("privacy:request_create"),
        {"customer_id": customer.pk, "type": "access", "law": "ccpa", "received_on": "2025-01-31"},
    )

    dsr = DataSubjectRequest.objects.get()
    assert response.status_code == 302
    assert dsr.deadline == dt.date(2025, 3, 17)


def test_a_request_without_customer_or_email_is_refused_naming_the_field(client, privacy_user):
    client.force_login(privacy_user)

    response = client.post(
        reverse("privacy:request_create"),
        {"type": "access", "law": "gdpr", "received_on": "2025-01-01"},
    )

    assert response.status_code == 400
    assert b"Choose the customer or give the requester" in response.content


def test_rejecting_without_a_reason_shows_an_error_and_keeps_the_request_open(client, privacy_user):
    dsr = DataSubjectRequestFactory()
    client.force_login(privacy_user)

    response = client.post(
        reverse("privacy:request_transition", args=[dsr.pk]), {"status": "rejected"}, follow=True
    )

    dsr.refresh_from_db()
    assert dsr.status == "received"
    assert b"a rejection needs a reason" in response.content


def test_a_refused_status_change_keeps_the_chosen_status_and_reason(client, privacy_user):
    dsr = DataSubjectRequestFactory()
    client.force_login(privacy_user)

    reason = "Not the account holder: " + "x" * 2000

    response = client.post(
        reverse("privacy:request_transition", args=[dsr.pk]),
        {"status": "rejected", "reason": reason},
    )

    page = response.content.decode()
    dsr.refresh_from_db()
    assert response.status_code == 400
    assert dsr.status == "received"
    assert '<option value="rejected" selected>' in page
    assert f'value="{reason}"' in page


def test_a_refused_extension_keeps_the_reason_typed(client, privacy_user):
    dsr = DataSubjectRequestFactory()
    client.force_login(privacy_user)
    reason = "Complex request: " + "x" * 2000

    response = client.post(reverse("privacy:request_extend", args=[dsr.pk]), {"reason": reason})

    dsr.refresh_from_db()
    assert response.status_code == 400
    assert not dsr.extended
    assert f"{reason}</textarea>" in response.content.decode()
    assert b"Ensure this value has at most 2000 characters" in response.content


def test_matching_an_unknown_customer_keeps_the_number_typed(client, privacy_user):
    dsr = DataSubjectRequestFactory(customer=None, email="someone@example.com")
    client.force_login(privacy_user)

    response = client.post(
        reverse("privacy:request_match", args=[dsr.pk]), {"customer_id": "987654"}
    )

    dsr.refresh_from_db()
    assert response.status_code == 400
    assert dsr.customer_id is None
    assert 'value="987654"' in response.content.decode()
    assert b"Customer: no such customer, choose one from the list." in response.content


def test_staff_record_consent_with_evidence_from_the_customer_page(client, privacy_user):
    customer = CustomerFactory()
    wording = ConsentWording.objects.create(
        purpose_id="sms_marketing", version="2", text="SMS ok", effective_from=dt.date(2025, 1, 1)
    )
    client.force_login(privacy_user)

    client.post(
        reverse("privacy:consent_record", args=[customer.pk]),
        {
            "purpose": "sms_marketing",
            "state": "granted",
            "source": "form",
            "wording": wording.pk,
            "recorded_at": "2025-03-01T10:00",
            "evidence": "Paper form 1234",
        },
    )

    record = ConsentRecord.objects.get(customer=customer)
    assert (record.state, record.source, record.wording, record.evidence) == (
        "granted",
        "form",
        wording,
        "Paper form 1234",
    )
    assert record.actor == privacy_user
    assert AuditEntry.objects.filter(action="consent", object_id=customer.pk).exists()


def test_marketing_cannot_record_consent(client, marketing_user):
    customer = CustomerFactory()
    client.force_login(marketing_user)

    response = client.post(
        reverse("privacy:consent_record", args=[customer.pk]), {"purpose": "profiling"}
    )

    assert response.status_code == 403


def test_sales_cannot_record_consent_for_a_customer_they_do_not_own(
    client, sales_user, other_sales_user
):
    customer = CustomerFactory(owner=other_sales_user)
    client.force_login(sales_user)

    response = client.post(
        reverse("privacy:consent_record", args=[customer.pk]),
        {"purpose": "profiling", "state": "granted", "source": "staff", "evidence": "call"},
    )

    assert response.status_code == 404
    assert not ConsentRecord.objects.exists()


def test_a_bulk_csv_withdrawal_changes_every_matched_customer(
    client, privacy_user, django_capture_on_commit_callbacks
):
    a = CustomerFactory(email="a@example.com")
    b = CustomerFactory(external_id="EXT-B")
    CustomerFactory(email="untouched@example.com")
    client.force_login(privacy_user)
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile(
        "list.csv", b"email\nA@example.com\nEXT-B\nnobody@example.com\n", "text/csv"
    )
    asked = client.post(
        reverse("privacy:bulk_consent"),
        {
            "purpose": "email_marketing",
            "state": "withdrawn",
            "evidence": "Complaint list 2025-03",
            "file": upload,
        },
    )
    assert "<dt>Customers whose consent changes</dt>\n    <dd>2</dd>" in asked.content.decode()
    assert not BulkConsentJob.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        press_confirm(client, asked)

    job = BulkConsentJob.objects.get()
    assert (job.status, job.matched, job.unmatched, job.changed) == ("done", 2, 1, 2)
    assert set(ConsentRecord.objects.values_list("customer_id", "source")) == {
        (a.pk, "bulk"),
        (b.pk, "bulk"),
    }
    assert job.identifiers == ""


def test_a_new_wording_version_is_saved_and_a_duplicate_version_refused(client, privacy_user):
    client.force_login(privacy_user)
    data = {
        "purpose": "email_marketing",
        "version": "3",
        "text": "News by email",
        "effective_from": "2025-05-01",
    }

    client.post(reverse("privacy:wordings"), data)
    again = client.post(reverse("privacy:wordings"), data)

    assert ConsentWording.objects.filter(version="3").count() == 1
    assert again.status_code == 400


def test_records_of_processing_lists_every_registered_category(client, privacy_user):
    client.force_login(privacy_user)

    html = client.get(reverse("privacy:processing")).content.decode()

    for category in (
        "Identity and contact details",
        "Purchases",
        "Consent records",
        "Data-subject requests",
        "Imported spreadsheets",  # files in media storage, not a table
    ):
        assert category in html


def test_audit_log_is_searchable_by_object(client, privacy_user):
    customer = CustomerFactory()
    from customers.registry import access_record

    access_record(
        user=privacy_user,
        action="view",
        object_kind="customer",
        object_id=customer.pk,
        details={"q": "smith john"},
    )
    client.force_login(privacy_user)

    page = client.get(
        reverse("privacy:audit_log"), {"object_kind": "customer", "object_id": customer.pk}
    )

    entry = AuditEntry.objects.get(object_id=customer.pk)
    assert entry.details == {"q": "[removed]"}  # free text could be personal data
    assert list(page.context["page"]) == [entry]


def test_the_customer_page_shows_current_consent_history_and_the_consent_form(
    client, privacy_user, consenting_customer
):
    client.force_login(privacy_user)

    html = client.get(
        reverse("customers:customer_detail", args=[consenting_customer.pk])
    ).content.decode()

    assert 'id="consent"' in html
    assert "consent-granted" in html and "Web form" in html
    assert reverse("privacy:consent_record", args=[consenting_customer.pk]) in html
    assert AuditEntry.objects.filter(
        action="view", object_kind="customer", object_id=consenting_customer.pk
    ).exists()


def test_marketing_sees_the_consent_panel_without_the_form(
    client, marketing_user, consenting_customer
):
    client.force_login(marketing_user)

    html = client.get(
        reverse("customers:customer_detail", args=[consenting_customer.pk])
    ).content.decode()

    assert "consent-granted" in html
    assert reverse("privacy:consent_record", args=[consenting_customer.pk]) not in html


def test_sales_staff_are_not_offered_the_preference_centre_link_they_may_not_open(
    client, sales_user
):
    customer = CustomerFactory(owner=sales_user)
    client.force_login(sales_user)

    html = client.get(reverse("customers:customer_detail", args=[customer.pk])).content.decode()
    link_page = client.get(reverse("privacy:preference_link", args=[customer.pk]))

    assert reverse("privacy:consent_record", args=[customer.pk]) in html
    assert "Preference-centre link" not in html
    assert link_page.status_code == 403


def test_privacy_officers_open_the_preference_centre_link_from_the_customer_page(
    client, privacy_user
):
    customer = CustomerFactory()
    client.force_login(privacy_user)

    html = client.get(reverse("customers:customer_detail", args=[customer.pk])).content.decode()
    link_page = client.get(reverse("privacy:preference_link", args=[customer.pk]))

    assert reverse("privacy:preference_link", args=[customer.pk]) in html
    assert link_page.status_code == 200
    assert "/privacy/p/" in link_page.content.decode()


def test_a_consent_entry_with_an_error_keeps_what_the_officer_typed(client, privacy_user):
    customer = CustomerFactory()
    client.force_login(privacy_user)
    future = (timezone.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")

    response = client.post(
        reverse("privacy:consent_record", args=[customer.pk]),
        {
            "purpose": "profiling",
            "state": "granted",
            "source": "staff",
            "recorded_at": future,
            "evidence": "Phone call, ticket 4471",
        },
    )

    html = response.content.decode()
    assert response.status_code == 400
    assert "Consent cannot be recorded in the future." in html
    assert 'value="Phone call, ticket 4471"' in html
    assert f'value="{future}"' in html
    assert not ConsentRecord.objects.filter(customer=customer).exists()


def test_a_bulk_grant_to_a_segment_counts_only_those_whose_consent_changes_then_runs(
    client, privacy_user, django_capture_on_commit_callbacks
):
    from privacy.services import consent_grant
    from tests.campaigns.factories import members_add
    from tests.segments.factories import StaticSegmentFactory

    segment = StaticSegmentFactory(name="Fair visitors")
    already, new = CustomerFactory(), CustomerFactory()
    members_add(segment, [already, new])
    consent_grant(customer=already, purpose="email_marketing", source="form")
    client.force_login(privacy_user)

    asked = client.post(
        reverse("privacy:bulk_consent"),
        {
            "purpose": "email_marketing",
            "state": "granted",
            "evidence": "Fair sign-up sheet",
            "audience": f"segment:{segment.pk}",
        },
    )

    html = asked.content.decode()
    assert "Change 1 customers to granted?" in html
    assert "<dt>Already in that state</dt>\n    <dd>1</dd>" in html
    assert not BulkConsentJob.objects.exists()

    with django_capture_on_commit_callbacks(execute=True):
        press_confirm(client, asked)

    job = BulkConsentJob.objects.get()
    assert (job.status, job.matched) == ("done", 2)
