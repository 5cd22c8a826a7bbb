"""Who may receive a message, one table of customers walked through every place that decides it:
the audience at launch, the re-check just before an email goes (in a group over SMTP, and one
message at a time), and the webhook channel's check before it posts."""

import json

import pytest
from django.core import mail

from campaigns.delivery import send_batch
from campaigns.models import Channel, Send
from campaigns.services import campaign_launch
from customers.models import Customer
from privacy.erasure import customer_erase
from privacy.models import ConsentState
from privacy.services import consent_grant, consent_withdraw
from privacy.suppression import suppression_add
from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.customers.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def _never_consented(customer):
    ConsentState.objects.filter(customer=customer, purpose="email_marketing").delete()


def _withdrawn(customer):
    consent_withdraw(customer=customer, purpose="email_marketing", source="unsubscribe")


def _granted_for_another_purpose(customer):
    _never_consented(customer)
    consent_grant(customer=customer, purpose="sms_marketing", source="form")


def _email_suppressed(customer):
    suppression_add(reason="unsubscribe", email=customer.email.upper())


def _phone_suppressed(customer):
    suppression_add(reason="complaint", phone=customer.phone.replace(" ", ""))


def _sale_opted_out(customer):
    consent_withdraw(customer=customer, purpose="data_sale", source="form")


def _no_email(customer):
    customer.email = None
    customer.save()


def _erased(customer):
    customer_erase(customer=customer)


# What makes each customer of the table what they are, applied to someone who may receive
# everything: before the launch for the audience, after it for the re-check.
CASES = {
    "may receive": lambda customer: None,
    "never consented": _never_consented,
    "withdrew consent": _withdrawn,
    "consented to SMS only": _granted_for_another_purpose,
    "email suppressed": _email_suppressed,
    "phone suppressed": _phone_suppressed,
    "opted out of data sale": _sale_opted_out,
    "no email address": _no_email,
    "erased": _erased,
}

NO_CONSENT = "consent withdrawn before sending"
# (status, reason) of each customer's send row; None: no row (an erased person is in no segment).
AUDIENCE = {
    Channel.EMAIL: {
        "may receive": ("pending", ""),
        "never consented": ("excluded", "no_consent"),
        "withdrew consent": ("excluded", "no_consent"),
        "consented to SMS only": ("excluded", "no_consent"),
        "email suppressed": ("excluded", "suppressed"),
        "phone suppressed": ("excluded", "suppressed"),
        "opted out of data sale": ("pending", ""),
        "no email address": ("excluded", "no_address"),
        "erased": None,
    },
    Channel.WEBHOOK: {
        "may receive": ("pending", ""),
        "never consented": ("excluded", "no_consent"),
        "withdrew consent": ("excluded", "no_consent"),
        "consented to SMS only": ("excluded", "no_consent"),
        "email suppressed": ("excluded", "suppressed"),
        "phone suppressed": ("excluded", "suppressed"),
        "opted out of data sale": ("excluded", "do_not_sell"),
        "no email address": ("pending", ""),
        "erased": None,
    },
}
AT_SEND = {
    Channel.EMAIL: {
        "may receive": ("sent", ""),
        "never consented": ("skipped", NO_CONSENT),
        "withdrew consent": ("skipped", NO_CONSENT),
        "consented to SMS only": ("skipped", NO_CONSENT),
        "email suppressed": ("skipped", "on the suppression list"),
        "phone suppressed": ("skipped", "on the suppression list"),
        "opted out of data sale": ("sent", ""),
        "no email address": ("skipped", "no email address"),
        "erased": ("cancelled", "personal data erased"),
    },
    Channel.WEBHOOK: {
        "may receive": ("sent", ""),
        "never consented": ("skipped", NO_CONSENT),
        "withdrew consent": ("skipped", NO_CONSENT),
        "consented to SMS only": ("skipped", NO_CONSENT),
        "email suppressed": ("skipped", "on the suppression list"),
        "phone suppressed": ("skipped", "on the suppression list"),
        "opted out of data sale": ("skipped", "opted out of data sharing"),
        "no email address": ("sent", ""),
        "erased": ("cancelled", "personal data erased"),
    },
}


@pytest.fixture
def table(segment) -> dict[str, Customer]:
    """One customer per case, each in the target segment with email marketing granted, an email
    address and a phone number: as yet, anyone may send them anything."""
    customers = {
        case: CustomerFactory(
            email=f"{case.replace(' ', '.')}@example.com", phone=f"+49 30 555 01{n:02d}"
        )
        for n, case in enumerate(CASES)
    }
    members_add(segment, list(customers.values()))
    consent_grant_all(list(customers.values()))
    return customers


def _make_cases(table: dict[str, Customer]) -> None:
    for case, customer in table.items():
        CASES[case](customer)


def _rows(campaign, table: dict[str, Customer]) -> dict[str, tuple[str, str] | None]:
    rows = {
        customer_id: (status, reason)
        for customer_id, status, reason in Send.objects.filter(campaign=campaign).values_list(
            "customer_id", "status", "reason"
        )
    }
    return {case: rows.get(customer.pk) for case, customer in table.items()}


@pytest.fixture
def campaign_on(segment, marketing_user, receiver):
    def make(channel: str):
        campaign = CampaignFactory(
            created_by=marketing_user,
            channel=channel,
            webhook_url=receiver.url if channel == Channel.WEBHOOK else "",
            webhook_secret="shop-secret" if channel == Channel.WEBHOOK else "",
        )
        campaign.target_segments.add(segment)
        VariantFactory(campaign=campaign, name="A")
        return campaign

    return make


def _launch(campaign, actor, capture) -> None:
    with capture(execute=False):  # delivery is run by the test, as a worker would
        campaign_launch(campaign=campaign, actor=actor)


def _deliver(campaign) -> None:
    pending = Send.objects.filter(campaign=campaign, status=Send.Status.PENDING)
    send_batch(campaign_id=campaign.pk, send_ids=list(pending.values_list("pk", flat=True)))


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.WEBHOOK])
def test_the_audience_leaves_out_who_may_not_receive_the_message(
    channel, table, campaign_on, marketing_user, django_capture_on_commit_callbacks
):
    campaign = campaign_on(channel)
    _make_cases(table)

    _launch(campaign, marketing_user, django_capture_on_commit_callbacks)

    assert _rows(campaign, table) == AUDIENCE[channel]


def test_the_recheck_of_emails_sent_in_groups_stops_who_may_no_longer_receive_them(
    table, campaign_on, marketing_user, django_capture_on_commit_callbacks, smtp_server, settings
):
    settings.CAMPAIGNS_GROUP_SIZE = 4
    campaign = campaign_on(Channel.EMAIL)
    _launch(campaign, marketing_user, django_capture_on_commit_callbacks)
    _make_cases(table)

    _deliver(campaign)

    assert _rows(campaign, table) == AT_SEND[Channel.EMAIL]
    assert smtp_server.delivered_to() == sorted(
        table[case].email for case, row in AT_SEND[Channel.EMAIL].items() if row[0] == "sent"
    )


def test_the_recheck_of_emails_sent_one_at_a_time_stops_who_may_no_longer_receive_them(
    table, campaign_on, marketing_user, django_capture_on_commit_callbacks
):
    campaign = campaign_on(Channel.EMAIL)
    _launch(campaign, marketing_user, django_capture_on_commit_callbacks)
    _make_cases(table)

    _deliver(campaign)

    assert _rows(campaign, table) == AT_SEND[Channel.EMAIL]
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        table[case].email for case, row in AT_SEND[Channel.EMAIL].items() if row[0] == "sent"
    )


def test_the_webhook_posts_nothing_about_who_may_no_longer_receive_the_message(
    table, campaign_on, marketing_user, django_capture_on_commit_callbacks, receiver
):
    campaign = campaign_on(Channel.WEBHOOK)
    _launch(campaign, marketing_user, django_capture_on_commit_callbacks)
    _make_cases(table)

    _deliver(campaign)

    assert _rows(campaign, table) == AT_SEND[Channel.WEBHOOK]
    posted = sorted(json.loads(body)["customer"]["id"] for _headers, body in receiver.requests)
    assert posted == sorted(
        table[case].pk for case, row in AT_SEND[Channel.WEBHOOK].items() if row[0] == "sent"
    )
