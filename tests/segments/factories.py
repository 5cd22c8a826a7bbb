"""factory-boy factories for segments."""

import factory

from segments.models import Membership, Segment


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    name = factory.Sequence(lambda n: f"Segment {n}")
    slug = factory.Sequence(lambda n: f"segment-{n}")
    kind = Segment.Kind.RULE
    rule = factory.LazyFunction(lambda: {"field": "country", "op": "eq", "value": "DE"})
    min_size_warning = 1


class StaticSegmentFactory(SegmentFactory):
    kind = Segment.Kind.STATIC
    rule = factory.LazyFunction(dict)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    segment = factory.SubFactory(StaticSegmentFactory)
    since = factory.Faker("date_time_this_year", tzinfo=__import__("datetime").timezone.utc)
