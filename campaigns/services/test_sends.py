"""A test message to the marketer who asks for it: the variant as one sample customer of the
audience would get it, sent through the configured email backend to the marketer's own address.
It is not a send of the campaign: no send row, no tracking, nothing in the report."""

import smtplib

from anymail.exceptions import AnymailError
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import transaction

from campaigns.models import Campaign, Variant
from campaigns.previews import preview_render
from campaigns.rendering import RenderFailed
from campaigns.services.access import _require_marketer
from customers.models import Customer
from privacy.audit import audit_record
from privacy.models import AuditEntry

TEST_SUBJECT_PREFIX = "[Test] "


def campaign_test_send(
    *, campaign: Campaign, variant: Variant, customer: Customer, actor: AbstractBaseUser
) -> str:
    """Send the variant written for `customer` to the actor's own address; answer the address.

    The message carries the customer's data to a staff mailbox: the audit log records it as an
    export of that customer, like any other copy of their data leaving the CRM."""
    _require_marketer(actor)
    address = (getattr(actor, "email", "") or "").strip()
    if not address:
        raise ValidationError(
            {"email": "your account has no email address: add one to receive test messages"}
        )
    if variant.campaign_id != campaign.pk:
        raise ValidationError({"variant": "the campaign has no such variant"})
    try:
        rendered = preview_render(campaign=campaign, variant=variant, customer=customer)
    except RenderFailed as exc:
        raise ValidationError({"variant": str(exc)}) from exc
    email = EmailMultiAlternatives(
        subject=f"{TEST_SUBJECT_PREFIX}{rendered['subject']}",
        body=rendered["text"],
        from_email=campaign.from_email or settings.DEFAULT_FROM_EMAIL,
        to=[address],
        headers={"X-CRM-Test-Message": f"campaign {campaign.pk}, variant {variant.name}"},
        connection=get_connection(fail_silently=False),
    )
    if rendered["html"]:
        email.attach_alternative(rendered["html"], "text/html")
    try:
        email.send()
    except (smtplib.SMTPException, OSError, AnymailError) as exc:
        raise ValidationError(
            {"email": f"the mail server did not take the test message ({exc.__class__.__name__})"}
        ) from exc
    with transaction.atomic():
        audit_record(
            actor=actor,
            action=AuditEntry.Action.EXPORT,
            object_kind="customer",
            object_id=customer.pk,
            details={"campaign": campaign.pk, "variant": variant.pk, "as": "test_message"},
        )
    return address
