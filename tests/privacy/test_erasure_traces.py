"""After an erasure nothing in the database or in media storage names the person, however it was
written down (a mail server's refusal, a note on the household, a segment rule, a file name, a
request's extension reason), and their old email links record nothing any more.

PostgreSQL only: the scan reads every text and JSON column from the catalogue."""

import email as email_lib
import socket
import threading
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models import Sum
from django.urls import reverse

from campaigns.links import click_url, open_url, unsubscribe_url
from campaigns.models import Send
from campaigns.services import campaign_launch
from campaigns.tracking import provider_events_record
from customers.importing import import_job_create, import_job_run
from customers.models import Account, ImportJob, Purchase
from privacy.data_requests import data_request_create, data_request_extend, data_request_transition
from privacy.exports import data_export_build
from privacy.links import preference_url
from privacy.models import DataExport, RequestStatus, RequestType
from privacy.services import consent_bulk_job_create, consent_grant
from segments.models import RefreshRun, Segment
from segments.services import segment_create, segment_refresh
from tests.campaigns.factories import CampaignFactory, VariantFactory
from tests.customers.factories import (
    AccountFactory,
    CustomerFactory,
    EventFactory,
    NoteFactory,
    PurchaseFactory,
)

pytestmark = pytest.mark.django_db

FIRST, LAST = "Zebulon", "Quixotaris"
EMAIL = "zebulon.quixotaris@example.org"
PHONE = "+49 30 5550199"
# What the scan looks for, in any table and file: letters and digits only, lower-cased, so that
# "Zebulon_Quixotaris.csv", "ZEBULON.QUIXOTARIS@EXAMPLE.ORG" and "+49 (30) 555-0199" all count.
NEEDLES = {
    "email": "zebulonquixotarisexampleorg",
    "name": "zebulonquixotaris",
    "reversed name": "quixotariszebulon",
    "phone": "49305550199",
}
SHOP = "https://shop.example/sale"


class RefusingSmtpServer:
    """A real SMTP server on loopback that refuses some recipients, quoting them as servers do."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.refusing: set[str] = set()
        self.delivered: list[str] = []
        self.lock = threading.Lock()
        server = self

        class Handler:
            async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
                if address.lower() in server.refusing:
                    return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, smtp, session, envelope):
                email_lib.message_from_bytes(envelope.content)
                with server.lock:
                    server.delivered.extend(envelope.rcpt_tos)
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)


@pytest.fixture
def smtp_server(settings):
    server = RefusingSmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.CAMPAIGNS_SITE_URL = "http://testserver"
    settings.CAMPAIGNS_PROVIDER_SECRET = "provider-secret"
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    mail.outbox = []
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


def _text_columns() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_name, c.column_name
            FROM information_schema.columns c
            JOIN information_schema.tables t
              ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
              AND c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
            ORDER BY 1, 2
            """
        )
        return list(cursor.fetchall())


def _tables() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
        )
        return [row[0] for row in cursor.fetchall()]


def _database_traces() -> list[str]:
    """Every "table.column: identifier" whose text (JSON as text) still holds the person."""
    found = []
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table, column in _text_columns():
            cursor.execute(
                f"""
                SELECT needle FROM unnest(%s::text[]) AS needle
                WHERE EXISTS (
                    SELECT 1 FROM {quote(table)}
                    WHERE lower(regexp_replace(CAST({quote(column)} AS text), '[^[:alnum:]]+',
                                               '', 'g')) LIKE '%%' || needle || '%%'
                )
                """,
                [list(NEEDLES.values())],
            )
            names = {v: k for k, v in NEEDLES.items()}
            found += [f"{table}.{column}: {names[row[0]]}" for row in cursor.fetchall()]
    return found


def _alnum(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _media_traces() -> list[str]:
    """Every "file: identifier" in media storage whose name or content holds the person."""
    found = []
    root = Path(django_settings.MEDIA_ROOT)
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        name = _alnum(str(path.relative_to(root)))
        content = _alnum(path.read_bytes().decode("utf-8", errors="replace"))
        found += [f"{path.name}: {what}" for what, n in NEEDLES.items() if n in name]
        found += [f"{path.name} (content): {what}" for what, n in NEEDLES.items() if n in content]
    return found


def _row_counts() -> dict[str, int]:
    quote = connection.ops.quote_name
    counts = {}
    with connection.cursor() as cursor:
        for table in _tables():
            cursor.execute(f"SELECT COUNT(*) FROM {quote(table)}")
            counts[table] = cursor.fetchone()[0]
    return counts


def _launch(campaign, actor, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        campaign_launch(campaign=campaign, actor=actor)
    campaign.refresh_from_db()
    return campaign


@pytest.fixture
def person_in_every_feature(
    smtp_server, privacy_user, marketing_user, superuser, django_capture_on_commit_callbacks
):
    """One person across every feature, with every trace an erasure once left and more."""
    household = AccountFactory(name=f"{LAST} household", kind=Account.Kind.HOUSEHOLD)
    person = CustomerFactory(
        first_name=FIRST,
        last_name=LAST,
        email=EMAIL,
        phone=PHONE,
        external_id="EXT-ZQ-000001",
        account=household,
        city="Quedlinburg",
    )
    other = CustomerFactory(
        first_name="Olga", last_name="Petrova", email="olga.petrova@example.com"
    )
    PurchaseFactory(customer=person, amount=Decimal("120.50"), external_id="ORDER-ZQ-1")
    PurchaseFactory(customer=person, amount=Decimal("79.50"))
    PurchaseFactory(customer=other, amount=Decimal("10.00"))
    NoteFactory(customer=person, body=f"{FIRST} prefers calls on {PHONE}")
    NoteFactory(
        customer=None,
        account=household,
        body=f"{FIRST} {LAST} moved in; call on +49 (30) 555-0199 or {EMAIL.upper()}.",
    )
    NoteFactory(customer=other, body=f"Olga's neighbour is {LAST}, {FIRST}; keep separate.")
    EventFactory(customer=person, properties={"email": EMAIL, "page": "/shoes"})
    EventFactory(customer=other, properties={"referred_by": EMAIL, "phone": 49305550199})
    for customer in (person, other):
        consent_grant(
            customer=customer,
            purpose="email_marketing",
            source="form",
            ip_address="203.0.113.9",
            evidence=f"Signup form of {customer.email}",
        )
    # Segments whose rules name the person, next to values that name no one.
    named = segment_create(
        name="Hand-picked VIPs",
        owner=marketing_user,
        rule={
            "any": [
                {"field": "email", "op": "in", "value": [EMAIL, "olga.petrova@example.com"]},
                {"field": "city", "op": "eq", "value": "Quedlinburg"},
            ]
        },
    )
    only_them = segment_create(
        name="Just one",
        owner=marketing_user,
        rule={
            "all": [
                {"field": "country", "op": "eq", "value": "DE"},
                {"field": "email", "op": "eq", "value": EMAIL.upper()},
            ]
        },
    )
    for segment in (named, only_them):
        segment_refresh(segment=segment)
    segment_create(name=f"{FIRST} {LAST} and friends", owner=marketing_user, kind="static")
    # One campaign delivered to them, one the mail server refused with their address quoted.
    delivered = CampaignFactory(created_by=marketing_user, name="Spring sale")
    delivered.target_segments.add(named)
    VariantFactory(campaign=delivered, name="A", html=f'<p>Hi</p><a href="{SHOP}">Sale</a>')
    _launch(delivered, marketing_user, django_capture_on_commit_callbacks)
    smtp_server.refusing = {EMAIL}
    refused = CampaignFactory(created_by=marketing_user, name="Summer sale")
    refused.target_segments.add(named)
    VariantFactory(campaign=refused, name="A", html=f'<p>Hi</p><a href="{SHOP}">Sale</a>')
    _launch(refused, marketing_user, django_capture_on_commit_callbacks)
    send = Send.objects.get(campaign=delivered, customer=person, status=Send.Status.SENT)
    links = {
        "open": open_url(send_id=send.pk),
        "click": click_url(send_id=send.pk, url=SHOP),
        "unsubscribe": unsubscribe_url(send_id=send.pk),
        "preferences": preference_url(customer_id=person.pk),
    }
    provider_events_record(
        [{"type": "bounce", "send_id": send.pk, "detail": f"mailbox full: {EMAIL}"}]
    )
    # An import whose file is named after them, with a row that fails (the report quotes it).
    upload = (
        "first_name,last_name,email,phone\n"
        f"{FIRST},{LAST},{EMAIL},{PHONE}\n"
        f"{FIRST},{LAST},not-an-email {EMAIL},{PHONE}\n"
        "Olga,Petrova,olga.petrova@example.com,\n"
    )
    job = import_job_create(
        user=superuser,
        kind=ImportJob.Kind.CUSTOMERS,
        file=SimpleUploadedFile(f"{FIRST} {LAST} {EMAIL}.csv", upload.encode()),
    )
    import_job_run(job=job)
    # An access request answered with an export; an erasure request extended with a reason.
    access = data_request_create(
        type=RequestType.ACCESS, customer=person, details=f"Send it to {EMAIL}", actor=privacy_user
    )
    data_export_build(export=DataExport.objects.create(customer=person, request=access))
    erasure = data_request_create(
        type=RequestType.ERASURE, customer=person, details="Delete me", actor=privacy_user
    )
    data_request_extend(
        request=erasure,
        reason=f"Two customers called {FIRST} {LAST}; verifying {EMAIL} by phone {PHONE}.",
        actor=privacy_user,
    )
    with django_capture_on_commit_callbacks(execute=True):
        consent_bulk_job_create(
            purpose="email_marketing",
            state="granted",
            evidence=f"Fair sign-up sheet, {FIRST} {LAST} and Olga",
            actor=privacy_user,
            csv_text=f"email\n{EMAIL}\nolga.petrova@example.com\n",
        )
    return {
        "person": person,
        "other": other,
        "request": erasure,
        "links": links,
        "segments": (named, only_them),
        "refused": refused,
    }


def _erase(seeded, privacy_user, django_capture_on_commit_callbacks) -> None:
    """Through the real path: the privacy officer completes the erasure request."""
    with django_capture_on_commit_callbacks(execute=True):
        data_request_transition(
            request=seeded["request"], status=RequestStatus.COMPLETED, actor=privacy_user
        )


def test_the_seeded_person_is_found_in_the_places_issue_15_named(person_in_every_feature):
    traces = _database_traces()
    person = person_in_every_feature["person"]
    refused = Send.objects.get(campaign=person_in_every_feature["refused"], customer=person)

    assert refused.status == Send.Status.FAILED and EMAIL in refused.reason
    assert "campaigns_send.reason: email" in traces
    assert "segments_segment.rule: email" in traces
    assert "segments_segment.slug: name" in traces
    assert "customers_note.body: name" in traces
    assert "privacy_datasubjectrequest.extension_reason: email" in traces
    assert "customers_importjob.original_name: email" in traces
    assert "customers_importjob.file: name" in traces
    assert _media_traces()


def test_after_an_erasure_no_column_and_no_file_names_the_person(
    person_in_every_feature, privacy_user, django_capture_on_commit_callbacks
):
    revenue_before = Purchase.objects.aggregate(total=Sum("amount"))["total"]

    _erase(person_in_every_feature, privacy_user, django_capture_on_commit_callbacks)

    assert _database_traces() == []
    assert _media_traces() == []
    assert Purchase.objects.aggregate(total=Sum("amount"))["total"] == revenue_before
    assert Purchase.objects.filter(customer=person_in_every_feature["person"]).count() == 2


def test_a_rule_naming_the_erased_person_keeps_its_other_values_and_says_an_erasure_edited_it(
    person_in_every_feature, privacy_user, django_capture_on_commit_callbacks
):
    named, only_them = person_in_every_feature["segments"]

    _erase(person_in_every_feature, privacy_user, django_capture_on_commit_callbacks)

    named.refresh_from_db()
    only_them.refresh_from_db()
    assert named.rule == {
        "any": [
            {"field": "email", "op": "in", "value": ["olga.petrova@example.com"]},
            {"field": "city", "op": "eq", "value": "Quedlinburg"},
        ]
    }
    # Dropping the condition from an "all" would widen the segment to all of Germany.
    assert only_them.rule == {"all": [{"field": "country", "op": "eq", "value": "DE"}, {"any": []}]}
    for segment in (named, only_them):
        run = segment.runs.get(trigger=RefreshRun.Trigger.ERASURE)
        assert "erasure" in run.message
        assert segment_refresh(segment=segment).status == RefreshRun.Status.DONE
    assert not Segment.objects.get(pk=only_them.pk).memberships.exists()


def test_the_segment_page_shows_that_an_erasure_edited_the_rule(
    person_in_every_feature,
    privacy_user,
    marketing_user,
    django_capture_on_commit_callbacks,
    client,
):
    named, _only_them = person_in_every_feature["segments"]
    _erase(person_in_every_feature, privacy_user, django_capture_on_commit_callbacks)
    client.force_login(marketing_user)

    response = client.get(reverse("segments:detail", args=[named.pk]))

    assert response.status_code == 200
    assert b"Rule edited by an erasure" in response.content


def test_the_erased_persons_old_links_answer_a_neutral_page_and_record_nothing(
    person_in_every_feature, privacy_user, django_capture_on_commit_callbacks, client
):
    links = person_in_every_feature["links"]
    _erase(person_in_every_feature, privacy_user, django_capture_on_commit_callbacks)
    before = _row_counts()

    opened = client.get(links["open"])
    clicked = client.get(links["click"])
    unsubscribe_page = client.get(links["unsubscribe"])
    unsubscribed = client.post(links["unsubscribe"], REMOTE_ADDR="198.51.100.7")
    one_click = client.post(links["unsubscribe"], {"List-Unsubscribe": "One-Click"})
    preferences = client.get(links["preferences"], HTTP_SEC_GPC="1")
    changed = client.post(links["preferences"], {"email_marketing": "granted"})
    token = links["preferences"].rstrip("/").rsplit("/", 1)[1]
    everything = client.post(reverse("privacy:preference_unsubscribe", args=[token]))
    asked = client.post(
        reverse("privacy:preference_request", args=[token]), {"type": "access", "details": "x"}
    )
    provider = provider_events_record(
        [
            {
                "type": "complaint",
                "send_id": Send.objects.filter(customer=person_in_every_feature["person"])
                .first()
                .pk,
                "detail": f"abuse report from {EMAIL}",
            }
        ]  # fmt: skip
    )

    assert _row_counts() == before
    assert opened.status_code == 200 and opened["Content-Type"] == "image/gif"
    assert clicked.status_code == 302 and clicked["Location"] == SHOP
    for response in (unsubscribe_page, unsubscribed, one_click):
        assert response.status_code == 200
        assert b"no longer hold personal data" in response.content
        assert b"<form" not in response.content
    for response in (preferences, changed, everything, asked):
        assert b"no longer hold personal data" in response.content
    assert provider["recorded"] == 0
