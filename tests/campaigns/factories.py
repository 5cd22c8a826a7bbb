"""factory-boy factories and helpers for campaigns."""

import factory
from django.utils import timezone

from campaigns.models import Campaign, Variant
from privacy.services import ConsentChange, consent_record_many
from segments.models import Membership


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    consent_purpose_id = "email_marketing"


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    campaign = factory.SubFactory(CampaignFactory)
    name = factory.Sequence(lambda n: chr(ord("A") + n % 26) + str(n))
    subject = "Hello {{ customer.first_name }}"
    text = "Hi {{ customer.first_name }}, your code is {{ promotion.code }}."
    html = '<p>Hi {{ customer.first_name }}</p><a href="https://shop.example/sale">Sale</a>'


def members_add(segment, customers) -> None:
    now = timezone.now()
    Membership.objects.bulk_create(
        [Membership(segment=segment, customer=c, since=now) for c in customers]
    )


def consent_grant_all(customers, purpose: str = "email_marketing") -> None:
    consent_record_many(
        changes=[
            ConsentChange(customer_id=c.pk, purpose=purpose, state="granted") for c in customers
        ],
        source="import",
    )
