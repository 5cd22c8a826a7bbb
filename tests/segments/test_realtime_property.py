"""Random writes applied to random customers and processed incrementally give the same
membership as a full refresh (the reference) and as the plain-Python evaluator."""

import datetime as dt
import os

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from customers.models import Customer, MembershipMark
from customers.services import customer_update, event_create, purchase_create
from privacy.services import consent_record
from segments.compiler import compile_rule
from segments.models import Segment
from segments.realtime import memberships_update_marked
from segments.services import segment_refresh, segments_in_dependency_order
from tests.segments.reference import Reference, load_people
from tests.segments.test_property import (
    CATEGORIES,
    EVENT_TYPES,
    NOW,
    PURPOSES,
    bind_segments,
    build_world,
    conjunctions,
    customer_data,
    money,
    rule_trees,
)

pytestmark = pytest.mark.django_db

moments = st.integers(min_value=-400 * 24, max_value=0).map(lambda h: NOW + dt.timedelta(hours=h))
writes = st.lists(
    st.one_of(
        st.tuples(
            st.just("purchase"), st.integers(0, 5), moments, money, st.sampled_from(CATEGORIES)
        ),
        st.tuples(
            st.just("consent"),
            st.integers(0, 5),
            st.sampled_from(PURPOSES),
            st.sampled_from(["granted", "withdrawn"]),
        ),
        st.tuples(
            st.just("field"),
            st.integers(0, 5),
            st.sampled_from(["country", "city"]),
            st.sampled_from(["DE", "FR", "Berlin", "LIN"]),
        ),
        st.tuples(st.just("event"), st.integers(0, 5), moments, st.sampled_from(EVENT_TYPES)),
    ),
    min_size=1,
    max_size=8,
)


def apply(write, customers: list[Customer]) -> None:
    kind, index, *rest = write
    customer = customers[index % len(customers)]
    try:
        if kind == "purchase":
            at, amount, category = rest
            purchase_create(customer=customer, purchased_at=at, amount=amount, category=category)
        elif kind == "consent":
            purpose, state = rest
            consent_record(customer=customer, purpose=purpose, state=state, source="staff")
        elif kind == "field":
            name, value = rest
            customer_update(customer=customer, **{name: value})
        else:
            at, event_type = rest
            event_create(customer=customer, type=event_type, occurred_at=at)
    except ValidationError:  # the same purchase twice: refused, nothing written
        pass


class _Rollback(Exception):
    pass


@settings(
    max_examples=int(os.environ.get("SEGMENTS_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    people=st.lists(customer_data, min_size=1, max_size=5),
    rules_=st.lists(st.one_of(rule_trees, conjunctions), min_size=1, max_size=3),
    writes_=writes,
)
def test_incremental_updates_give_the_membership_of_a_full_refresh(db, people, rules_, writes_):
    try:
        with transaction.atomic():
            static_ids = build_world(people)
            segments = [
                Segment.objects.create(
                    name=f"Rule {i}", slug=f"rt-rule-{i}", rule=bind_segments(rule, static_ids)
                )
                for i, rule in enumerate(rules_)
            ]
            # A segment built on the first: it must follow it within the same batch.
            segments.append(
                Segment.objects.create(
                    name="Built on rule 0",
                    slug="rt-built-on",
                    rule={
                        "all": [{"segment": segments[0].pk}, bind_segments(rules_[-1], static_ids)]
                    },
                )
            )
            ordered = segments_in_dependency_order(segments)
            for segment in ordered:
                segment_refresh(segment=segment, now=NOW)
            MembershipMark.objects.all().delete()
            customers = list(Customer.objects.order_by("pk"))

            for write in writes_:
                apply(write, customers)
            while memberships_update_marked(now=NOW).customers:
                pass

            incremental = {
                s.pk: set(s.memberships.values_list("customer_id", flat=True)) for s in ordered
            }
            everyone = load_people()
            for segment in ordered:
                rule = segment.rule
                compiled = set(compile_rule(rule, now=NOW).values_list("pk", flat=True))
                assert incremental[segment.pk] == compiled, (rule, writes_)
                assert compiled == Reference(NOW).select(rule, everyone), rule
            for segment in ordered:
                run = segment_refresh(segment=segment, now=NOW)
                assert (run.joined, run.left) == (0, 0), (segment.rule, writes_)
                segment.refresh_from_db()
                assert segment.member_count == len(incremental[segment.pk])
            raise _Rollback
    except _Rollback:
        pass
