"""Random rules on random customers: the compiled SQL selects exactly what the reference selects."""

import datetime as dt
import os
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from customers.models import Account, Customer, Event, Product, Purchase, Tag
from privacy.models import ConsentRecord, ConsentState
from segments.compiler import compile_rule
from segments.models import Membership, Segment
from segments.rules import validate
from tests.segments.reference import Reference, load_people

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2024, 2, 29, 12, 30, tzinfo=dt.UTC)
PURPOSES = ["email_marketing", "sms_marketing"]
TEXTS = ["DE", "de", "FR", "Berlin", "ber", "LIN", "x%_", ""]
TAG_NAMES = ["vip", "shoes", "news"]
CATEGORIES = ["shoes", "bags", ""]
SKUS = ["SKU-1", "SKU-2"]
EVENT_TYPES = ["page_view", "email_click"]

moments = st.integers(min_value=-800 * 24, max_value=48).map(
    lambda h: NOW + dt.timedelta(hours=h, minutes=7)
)
days_around = st.integers(min_value=-800, max_value=2).map(
    lambda d: (NOW + dt.timedelta(days=d)).date()
)
money = st.sampled_from(["0", "0.10", "0.20", "10", "10.50", "99.99", "100", "250"]).map(Decimal)
attr_values = st.one_of(
    st.sampled_from(["Gold", "gold", "", "Silver 50%"]),
    st.sampled_from([0, 1, 5, 7.5, -2]),
    st.booleans(),
    st.none(),
)

customer_data = st.fixed_dictionaries(
    {
        "country": st.sampled_from(["DE", "de", "FR", ""]),
        "city": st.sampled_from(TEXTS),
        "email": st.sampled_from([None, "a@example.com", "B@Example.com"]),
        "gender": st.sampled_from(["", "female", "male"]),
        "income_band": st.sampled_from(["", "low", "high"]),
        "birth_date": st.one_of(
            st.none(),
            st.sampled_from([dt.date(2000, 2, 29), dt.date(1994, 2, 28), dt.date(1994, 3, 1)]),
            st.dates(min_value=dt.date(1930, 1, 1), max_value=dt.date(2024, 2, 29)),
        ),
        "account": st.sampled_from([None, 0, 1]),
        "attributes": st.dictionaries(
            st.sampled_from(["tier", "score", "vip"]), attr_values, max_size=3
        ),
        "tags": st.sets(st.sampled_from(TAG_NAMES), max_size=2),
        "created_at": moments,
        "lifetime_value": money,
        "average_order_value": money,
        "purchase_count": st.integers(0, 3),
        "last_purchase_at": st.one_of(st.none(), moments),
        "purchases": st.lists(
            st.tuples(
                moments,
                money,
                st.sampled_from(CATEGORIES),
                st.sampled_from([None, 0, 1]),
                st.sampled_from(["online", "store"]),
                st.sampled_from(["", "SPRING"]),
            ),
            max_size=4,
        ),
        "events": st.lists(st.tuples(moments, st.sampled_from(EVENT_TYPES)), max_size=3),
        "consents": st.dictionaries(
            st.sampled_from(PURPOSES), st.sampled_from(["granted", "withdrawn"])
        ),
        "segments": st.sets(st.sampled_from([0, 1]), max_size=2),
    }
)


def iso(day: dt.date) -> str:
    return day.isoformat()


def _text_condition():
    fields = st.sampled_from(["country", "city", "email", "account.industry", "account.name"])
    equality = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        fields,
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(TEXTS),
    )
    listed = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        fields,
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(TEXTS), min_size=1, max_size=3),
    )
    matching = st.builds(
        lambda f, op, v: {"field": f, "op": op, "value": v},
        fields,
        st.sampled_from(["contains", "starts_with", "ends_with"]),
        st.sampled_from([t for t in TEXTS if t]),
    )
    empty = st.builds(
        lambda f, op: {"field": f, "op": op}, fields, st.sampled_from(["is_empty", "is_not_empty"])
    )
    return st.one_of(equality, listed, matching, empty)


def _choice_condition():
    return st.one_of(
        st.builds(
            lambda op, v: {"field": "gender", "op": op, "value": v},
            st.sampled_from(["eq", "ne"]),
            st.sampled_from(["female", "male"]),
        ),
        st.builds(
            lambda op, v: {"field": "income_band", "op": op, "value": v},
            st.sampled_from(["in", "not_in"]),
            st.lists(st.sampled_from(["low", "high"]), min_size=1),
        ),
        st.builds(
            lambda op: {"field": "account.kind", "op": op},
            st.sampled_from(["is_empty", "is_not_empty"]),
        ),
    )


def _ordered(field, values, ops=("eq", "ne", "gt", "gte", "lt", "lte")):
    single = st.builds(
        lambda op, v: {"field": field, "op": op, "value": v}, st.sampled_from(ops), values
    )
    between = st.builds(
        lambda a, b: {"field": field, "op": "between", "value": sorted([a, b], key=Decimal)},
        values,
        values,
    )
    listed = st.builds(
        lambda op, v: {"field": field, "op": op, "value": v},
        st.sampled_from(["in", "not_in"]),
        st.lists(values, min_size=1, max_size=3),
    )
    return st.one_of(single, between, listed)


def _date_condition():
    fields = st.sampled_from(["created_at", "last_purchase_at", "birth_date"])
    dated = st.builds(
        lambda f, op, d: {"field": f, "op": op, "value": iso(d)},
        fields,
        st.sampled_from(["eq", "ne", "before", "after", "gt", "gte", "lt", "lte"]),
        days_around,
    )
    between = st.builds(
        lambda f, a, b: {"field": f, "op": "between", "value": [iso(min(a, b)), iso(max(a, b))]},
        fields,
        days_around,
        days_around,
    )
    recent = st.builds(
        lambda f, n: {"field": f, "op": "within_last_days", "value": n}, fields, st.integers(0, 400)
    )
    empty = st.builds(
        lambda f, op: {"field": f, "op": op},
        st.sampled_from(["last_purchase_at", "birth_date"]),
        st.sampled_from(["is_empty", "is_not_empty"]),
    )
    return st.one_of(dated, between, recent, empty)


def _attr_condition():
    keys = st.sampled_from(["attr.tier", "attr.score", "attr.vip"])
    texts = st.sampled_from(["Gold", "gold", "Silver 50%", ""])
    numbers = st.sampled_from([0, 1, 5, 7.5, -2])
    return st.one_of(
        st.builds(
            lambda k, op, v: {"field": k, "op": op, "value": v},
            keys,
            st.sampled_from(["eq", "ne"]),
            st.one_of(texts, numbers, st.booleans()),
        ),
        st.builds(
            lambda k, op, v: {"field": k, "op": op, "value": v},
            keys,
            st.sampled_from(["gt", "gte", "lt", "lte"]),
            numbers,
        ),
        st.builds(
            lambda k, a, b: {"field": k, "op": "between", "value": sorted([a, b], key=Decimal)},
            keys,
            numbers,
            numbers,
        ),
        st.builds(
            lambda k, op, v: {"field": k, "op": op, "value": v},
            keys,
            st.sampled_from(["in", "not_in"]),
            st.one_of(
                st.lists(texts, min_size=1, max_size=2), st.lists(numbers, min_size=1, max_size=2)
            ),
        ),
        st.builds(
            lambda k, op, v: {"field": k, "op": op, "value": v},
            keys,
            st.sampled_from(["contains", "starts_with", "ends_with"]),
            st.sampled_from(["old", "G", "50%"]),
        ),
        st.builds(
            lambda k, op: {"field": k, "op": op},
            keys,
            st.sampled_from(["is_empty", "is_not_empty"]),
        ),
    )


def _tag_condition():
    return st.one_of(
        st.builds(
            lambda op, v: {"field": "tags", "op": op, "value": v},
            st.sampled_from(["eq", "ne"]),
            st.sampled_from(TAG_NAMES),
        ),
        st.builds(
            lambda op, v: {"field": "tags", "op": op, "value": v},
            st.sampled_from(["in", "not_in"]),
            st.lists(st.sampled_from(TAG_NAMES), min_size=1, max_size=2),
        ),
        st.builds(
            lambda op: {"field": "tags", "op": op}, st.sampled_from(["is_empty", "is_not_empty"])
        ),
    )


windows = st.one_of(
    st.none(),
    st.builds(lambda n: {"last_days": n}, st.integers(1, 400)),
    st.builds(
        lambda a, b: {"from": iso(min(a, b)), "to": iso(max(a, b))}, days_around, days_around
    ),
    st.builds(lambda a: {"from": iso(a)}, days_around),
    st.builds(lambda a: {"to": iso(a)}, days_around),
)
purchase_filters = st.one_of(
    st.none(),
    st.fixed_dictionaries({"category": st.sampled_from(["shoes", "bags"])}),
    st.fixed_dictionaries({"channel": st.sampled_from([["online"], "store"])}),
    st.fixed_dictionaries({"product_sku": st.sampled_from(SKUS)}),
    st.fixed_dictionaries({"promotion_code": st.just("SPRING")}),
)


def _metric(metric, ops, values, filters):
    def build(op, v, w, f):
        node = {"metric": metric, "op": op}
        if op == "between":
            node["value"] = sorted(v, key=Decimal)
        elif op in ("in", "not_in"):
            node["value"] = v
        elif op not in ("is_empty", "is_not_empty"):
            node["value"] = v[0]
        if w:
            node["window"] = w
        if f:
            node["filter"] = f
        return node

    return st.builds(
        build, st.sampled_from(ops), st.lists(values, min_size=2, max_size=2), windows, filters
    )


ORDER = ["eq", "ne", "gt", "gte", "lt", "lte", "between"]
metric_condition = st.one_of(
    _metric("purchase_count", ORDER + ["in", "not_in"], st.integers(0, 3), purchase_filters),
    _metric("purchase_total", ORDER, money.map(str), purchase_filters),
    _metric("purchase_avg", ORDER + ["is_empty", "is_not_empty"], money.map(str), purchase_filters),
    _metric(
        "days_since_last_purchase", ORDER + ["is_empty"], st.integers(0, 400), purchase_filters
    ),
    _metric(
        "days_since_first_purchase", ORDER + ["is_not_empty"], st.integers(0, 400), purchase_filters
    ),
    _metric(
        "event_count",
        ORDER,
        st.integers(0, 2),
        st.one_of(st.none(), st.fixed_dictionaries({"event_type": st.sampled_from(EVENT_TYPES)})),
    ),
)
leaf = st.one_of(
    _text_condition(),
    _choice_condition(),
    _ordered("age", st.integers(0, 95)),
    _ordered("lifetime_value", money.map(str), ("eq", "ne", "gt", "gte", "lt", "lte")).filter(
        lambda n: n["op"] not in ("in", "not_in")
    ),
    _ordered("purchase_count", st.integers(0, 3)),
    _date_condition(),
    _attr_condition(),
    _tag_condition(),
    metric_condition,
    st.builds(
        lambda p, s: {"consent": p, "state": s},
        st.sampled_from(PURPOSES),
        st.sampled_from(["granted", "withdrawn", "unknown"]),
    ),
    st.builds(lambda i: {"segment": i}, st.sampled_from([0, 1])),
)
rule_trees = st.recursive(
    leaf,
    lambda children: st.one_of(
        st.builds(lambda c: {"all": c}, st.lists(children, max_size=3)),
        st.builds(lambda c: {"any": c}, st.lists(children, max_size=3)),
        st.builds(lambda c: {"not": c}, children),
    ),
    max_leaves=6,
)

# A count or total that the whole rule needs (under its top-level `all`, possibly nested) is
# compiled as a join grouped by customer instead of a subquery per customer; these rules make
# sure the examples take that path often.
conjunctions = st.builds(
    lambda metric, others, nest: (
        {"all": [{"all": [metric, *others[:1]]}, *others[1:]]}
        if nest
        else {"all": [*others[:1], metric, *others[1:]]}
    ),
    metric_condition,
    st.lists(rule_trees, max_size=2),
    st.booleans(),
)


def bind_segments(node, ids):
    """Segment references in generated rules are indexes; point them at the example's segments."""
    if isinstance(node, dict):
        if "segment" in node:
            return {"segment": ids[node["segment"]]}
        return {
            k: bind_segments(v, ids) if k in ("all", "any", "not") else v for k, v in node.items()
        }
    if isinstance(node, list):
        return [bind_segments(n, ids) for n in node]
    return node


def build_world(people):
    accounts = [
        Account.objects.create(name="Acme", industry="Retail", country="DE", kind="company"),
        Account.objects.create(name="Ber Household", industry="", country="FR", kind="household"),
    ]
    products = [Product.objects.create(sku=s, name=s, category="shoes") for s in SKUS]
    tags = {name: Tag.objects.get_or_create(name=name)[0] for name in TAG_NAMES}
    segments = [
        Segment.objects.create(name=f"Static {i}", slug=f"prop-static-{i}", kind="static")
        for i in (0, 1)
    ]
    purchase_n = 0
    for i, data in enumerate(people):
        customer = Customer.objects.create(
            external_id=f"P{i}",
            email=data["email"] and f"{i}{data['email']}",
            country=data["country"],
            city=data["city"],
            gender=data["gender"],
            income_band=data["income_band"],
            birth_date=data["birth_date"],
            account=accounts[data["account"]] if data["account"] is not None else None,
            attributes=data["attributes"],
            lifetime_value=data["lifetime_value"],
            average_order_value=data["average_order_value"],
            purchase_count=data["purchase_count"],
            last_purchase_at=data["last_purchase_at"],
        )
        Customer.objects.filter(pk=customer.pk).update(created_at=data["created_at"])
        customer.tags.set([tags[t] for t in data["tags"]])
        for at, amount, category, product, channel, promo in data["purchases"]:
            purchase_n += 1
            Purchase.objects.create(
                customer=customer,
                dedup_key=f"prop:{purchase_n}",
                purchased_at=at,
                amount=amount,
                category=category,
                product=products[product] if product is not None else None,
                channel=channel,
                promotion_code=promo,
            )
        for at, kind in data["events"]:
            Event.objects.create(customer=customer, type=kind, occurred_at=at)
        for purpose, state in data["consents"].items():
            record = ConsentRecord.objects.create(
                customer=customer, purpose_id=purpose, state=state, recorded_at=NOW, source="staff"
            )
            ConsentState.objects.create(
                customer=customer, purpose_id=purpose, state=state, changed_at=NOW, record=record
            )
        for index in data["segments"]:
            Membership.objects.create(segment=segments[index], customer=customer, since=NOW)
    return [s.pk for s in segments]


class _Rollback(Exception):
    pass


@settings(
    max_examples=int(os.environ.get("SEGMENTS_PROPERTY_EXAMPLES", "30")),
    deadline=None,
    # Shrinking a database-backed example takes minutes; the failing rule is in the message.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(
    people=st.lists(customer_data, min_size=1, max_size=6),
    rules_=st.lists(st.one_of(rule_trees, conjunctions), min_size=1, max_size=6),
)
def test_compiled_rules_select_exactly_what_the_reference_evaluator_selects(db, people, rules_):
    try:
        with transaction.atomic():
            segment_ids = build_world(people)
            everyone = load_people()
            reference = Reference(NOW)
            for generated in rules_:
                rule = bind_segments(generated, segment_ids)
                assert validate(rule) == [], rule

                compiled = set(compile_rule(rule, now=NOW).values_list("pk", flat=True))

                assert compiled == reference.select(rule, everyone), rule
            raise _Rollback
    except _Rollback:
        pass


def test_spend_that_the_whole_rule_needs_is_one_join_and_selects_the_same_customers(db):
    from tests.customers.factories import CustomerFactory, PurchaseFactory

    recent, old = NOW - dt.timedelta(days=10), NOW - dt.timedelta(days=100)
    big_spender = CustomerFactory(country="DE")
    PurchaseFactory(customer=big_spender, purchased_at=recent, amount=Decimal("60"))
    PurchaseFactory(customer=big_spender, purchased_at=recent, amount=Decimal("50"))
    long_ago = CustomerFactory(country="DE")
    PurchaseFactory(customer=long_ago, purchased_at=old, amount=Decimal("500"))
    french = CustomerFactory(country="FR")
    PurchaseFactory(customer=french, purchased_at=recent, amount=Decimal("500"))
    never_bought = CustomerFactory(country="DE")
    spend = {"metric": "purchase_total", "window": {"last_days": 90}, "op": "gt", "value": 100}
    germans = {"field": "country", "op": "eq", "value": "DE"}

    rule = {"all": [germans, spend]}
    sql = str(compile_rule(rule, now=NOW).query)
    assert " JOIN " in sql and "GROUP BY" in sql and "HAVING" in sql
    assert set(compile_rule(rule, now=NOW)) == {big_spender}

    # Where a customer without purchases matches (spend under 100), the spend stays a subquery
    # per customer, so those who never bought are kept.
    low = {"all": [germans, {**spend, "op": "lt"}]}
    assert "HAVING" not in str(compile_rule(low, now=NOW).query)
    assert set(compile_rule(low, now=NOW)) == {long_ago, never_bought}
