"""The score fields in rules select exactly what the plain-Python reference evaluator selects."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from segments.compiler import compile_rule
from segments.ml.models import CustomerScore
from segments.rules import RFM_CLASSES, validate
from tests.customers.factories import CustomerFactory
from tests.segments.reference import Reference, load_people

pytestmark = pytest.mark.django_db

score_rows = st.lists(
    st.one_of(
        st.none(),
        st.fixed_dictionaries(
            {
                "rfm_recency": st.one_of(st.none(), st.integers(0, 400)),
                "rfm_frequency": st.one_of(st.none(), st.integers(0, 20)),
                "rfm_monetary": st.one_of(
                    st.none(), st.sampled_from(["0", "10.50", "99.99", "500"])
                ),
                "rfm_score": st.one_of(st.none(), st.sampled_from([111, 345, 555])),
                "rfm_class": st.sampled_from(["", "Champions", "Lost", "At risk"]),
                "churn_risk": st.one_of(st.none(), st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0])),
                "predicted_value": st.one_of(st.none(), st.sampled_from(["0", "12.34", "100"])),
            }
        ),
    ),
    min_size=1,
    max_size=6,
)


def _condition():
    integer = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        st.sampled_from(["rfm_recency", "rfm_frequency", "rfm_score"]),
        st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
        st.sampled_from([0, 5, 345, 100]),
    )
    number = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        st.sampled_from(["rfm_monetary", "churn_risk", "predicted_value"]),
        st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
        st.sampled_from([0, "0.5", "0.25", "12.34", 100]),
    )
    between = st.builds(
        lambda f, v: {"field": f, "op": "between", "value": sorted(v, key=Decimal)},
        st.sampled_from(["rfm_monetary", "churn_risk", "rfm_recency"]),
        st.lists(st.sampled_from([0, 1, 50]), min_size=2, max_size=2),
    )
    choice = st.one_of(
        st.builds(
            lambda op, v: {"field": "rfm_class", "op": op, "value": v},
            st.sampled_from(["eq", "ne"]),
            st.sampled_from(RFM_CLASSES),
        ),
        st.builds(
            lambda op, v: {"field": "rfm_class", "op": op, "value": v},
            st.sampled_from(["in", "not_in"]),
            st.lists(st.sampled_from(RFM_CLASSES), min_size=1, max_size=3),
        ),
        st.builds(
            lambda f, op: {"field": f, "op": op},
            st.sampled_from(["rfm_class", "rfm_recency", "rfm_score"]),
            st.sampled_from(["is_empty", "is_not_empty"]),
        ),
    )
    leaf = st.one_of(integer, number, between, choice)
    return st.recursive(
        leaf,
        lambda children: st.one_of(
            st.builds(lambda c: {"all": c}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda c: {"any": c}, st.lists(children, min_size=1, max_size=3)),
            st.builds(lambda c: {"not": c}, children),
        ),
        max_leaves=5,
    )


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=score_rows, rule=_condition())
@example(  # "not equal" through the scores' join, inside an OR, for a customer without scores
    rows=[None],
    rule={
        "any": [
            {"field": "rfm_monetary", "op": "between", "value": [0, 0]},
            {"field": "rfm_class", "op": "ne", "value": "Champions"},
        ]
    },
)
@example(  # `not` of an equality through the scores' join, inside an OR, without scores
    rows=[None],
    rule={
        "any": [
            {"all": [{"field": "rfm_recency", "op": "eq", "value": 0}]},
            {"not": {"field": "rfm_class", "op": "eq", "value": "Champions"}},
        ]
    },
)
def test_score_rules_select_what_the_reference_evaluator_selects(rows, rule):
    CustomerScore.objects.all().delete()
    for row in rows:
        customer = CustomerFactory()
        if row is not None:
            CustomerScore.objects.create(customer=customer, **row)
    assert validate(rule) == []
    now = timezone.now().replace(microsecond=0) - dt.timedelta(seconds=0)

    compiled = set(compile_rule(rule, now=now).values_list("pk", flat=True))
    expected = Reference(now).select(rule, load_people())

    assert compiled == expected, rule
