"""The live count of the segment builder: how many match, who would join and who would leave,
answered by a fixed number of statements and equal to a slow reference."""

import datetime as dt
import itertools

import pytest

from segments.models import Membership
from segments.selectors import segment_preview
from segments.services import segment_add_members, segment_refresh
from tests.customers.factories import CustomerFactory
from tests.segments.factories import SegmentFactory, StaticSegmentFactory
from tests.segments.reference import Reference, load_people

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
GERMANS = {"field": "country", "op": "eq", "value": "DE"}
BERLIN = {"field": "city", "op": "eq", "value": "Berlin"}
GERMANS_OUTSIDE_BERLIN = {"all": [GERMANS, {"not": BERLIN}]}


def _customers(n: int) -> list:
    places = [("DE", "Berlin"), ("DE", "Munich"), ("FR", "Paris"), ("AT", "Wien")]
    return [
        CustomerFactory(country=c, city=city)
        for c, city in itertools.islice(itertools.cycle(places), n)
    ]


def _newest(ids: set[int], n: int) -> list[int]:
    return sorted(ids, reverse=True)[:n]


def _reference(rule: dict, segment) -> tuple[set[int], set[int], set[int]]:
    """What the rule selects, who would join and who would leave, evaluated in Python."""
    wanted = Reference(NOW).select(rule, load_people())
    saved = set(Membership.objects.filter(segment=segment).values_list("customer_id", flat=True))
    return wanted, wanted - saved, saved - wanted


@pytest.mark.parametrize("rule", [GERMANS_OUTSIDE_BERLIN, BERLIN, {"all": []}])
def test_the_live_count_equals_a_slow_reference(rule):
    _customers(14)
    segment = SegmentFactory(rule=GERMANS)
    segment_refresh(segment=segment, now=NOW)
    wanted, joining, leaving = _reference(rule, segment)

    preview = segment_preview(rule=rule, segment=segment, sample_size=3, now=NOW)

    assert (preview.count, preview.would_join, preview.would_leave) == (
        len(wanted),
        len(joining),
        len(leaving),
    )
    assert [c.pk for c in preview.sample] == _newest(wanted, 3)
    assert [c.pk for c in preview.join_sample] == _newest(joining, 3)
    assert [c.pk for c in preview.leave_sample] == _newest(leaving, 3)


def test_the_live_count_of_a_segment_whose_members_were_added_by_hand():
    """A static segment's members are compared as they are, not as any rule would make them."""
    people = _customers(8)
    segment = StaticSegmentFactory()
    segment_add_members(segment=segment, customers=[people[0].pk, people[2].pk])
    wanted, joining, leaving = _reference(GERMANS, segment)

    preview = segment_preview(rule=GERMANS, segment=segment, now=NOW)

    assert (preview.would_join, preview.would_leave) == (len(joining), len(leaving)) == (3, 1)
    assert [c.pk for c in preview.leave_sample] == [people[2].pk]


def test_without_a_segment_only_the_count_and_sample_are_given():
    _customers(5)

    preview = segment_preview(rule=GERMANS, sample_size=2, now=NOW)

    assert preview.count == 3
    assert len(preview.sample) == 2
    assert preview.would_join is preview.would_leave is preview.join_sample is None


def test_a_sample_size_of_zero_reads_no_customer(django_assert_num_queries):
    _customers(4)
    segment = SegmentFactory(rule=GERMANS)

    with django_assert_num_queries(1):
        preview = segment_preview(rule=BERLIN, segment=segment, sample_size=0, now=NOW)

    assert (preview.count, preview.would_join, preview.sample) == (1, 1, [])


@pytest.mark.parametrize("customers", [4, 40])
def test_the_edit_page_count_takes_the_same_statements_whatever_the_data(
    customers, api_client_for, marketing_user, django_assert_num_queries
):
    """The user's roles, the segment, the purposes a rule may name; then one statement for the
    three numbers and the sample ids, and one for the sampled customers."""
    _customers(customers)
    segment = SegmentFactory(rule=GERMANS)
    segment_refresh(segment=segment)
    client = api_client_for(marketing_user)
    body = {"rule": GERMANS_OUTSIDE_BERLIN, "segment": segment.pk}

    with django_assert_num_queries(5):
        response = client.post("/api/segments/preview/", body, format="json")

    assert response.status_code == 200
    munich = customers // 4 + (customers % 4 > 1)
    assert (response.data["count"], response.data["would_join"]) == (munich, 0)
    assert response.data["would_leave"] == customers // 4 + (customers % 4 > 0)
