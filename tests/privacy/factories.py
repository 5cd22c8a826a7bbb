"""factory-boy factories for privacy data."""

import factory
from django.utils import timezone

from privacy.deadlines import deadline_for
from privacy.models import ConsentWording, DataSubjectRequest, Law, RequestType
from tests.customers.factories import CustomerFactory


class ConsentWordingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ConsentWording

    purpose_id = "email_marketing"
    version = factory.Sequence(lambda n: f"1.{n}")
    text = "Yes, send me news and offers by email. I can unsubscribe at any time."
    effective_from = factory.LazyFunction(timezone.localdate)


class DataSubjectRequestFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DataSubjectRequest

    customer = factory.SubFactory(CustomerFactory)
    type = RequestType.ERASURE
    law = Law.GDPR
    received_on = factory.LazyFunction(timezone.localdate)
    deadline = factory.LazyAttribute(lambda o: deadline_for(law=o.law, received_on=o.received_on))
