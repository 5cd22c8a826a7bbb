"""The rule language's JSON Schema (published in the OpenAPI document) says what rules.validate
says: for trees built from the catalogue's fields, metrics and operators, right and wrong, the
schema accepts exactly the rules the validator accepts.

What the schema cannot say is left out of the comparison on purpose and listed here: ranges
whose low end is above the high end, dates that do not exist or lie outside years 1000-9998,
text a person could not type, numbers with more than two decimals, trees deeper or larger than
the limits, and the segments, purposes and fields a rule names existing or being readable.
"""

import jsonschema
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segments import rules
from segments.rule_schema import rule_json_schema

SCHEMA = rule_json_schema()
SCHEMA_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# Problems only the validator can see (see the module docstring).
SEMANTIC = ("the low end is above the high end", '"from" is after "to"')

MISSING = object()

scalars = st.one_of(
    st.sampled_from(["DE", "Berlin", "", "12", "1.5", "2024-02-29", "1994-03-01", "yesterday"]),
    st.sampled_from(list(rules.GENDERS[:2]) + list(rules.INCOME_BANDS[:2]) + ["Champions"]),
    st.sampled_from(["1-9", "company", "online", "teleport"]),
    st.integers(min_value=-5, max_value=300),
    st.sampled_from([0.5, 2.25, -1.5]),
    st.booleans(),
    st.none(),
)
values = st.one_of(
    scalars,
    st.lists(scalars, min_size=0, max_size=3),
    st.just(MISSING),
)
field_names = st.one_of(
    st.sampled_from(list(rules.FIELDS)),
    st.sampled_from(["attr.tier", "attr.vip_level", "attr.", "attr.bad key", "bogus", 5]),
)
operators = st.one_of(
    st.sampled_from(rules.ALL_OPERATORS), st.sampled_from(["approx", None, MISSING])
)
dates = st.sampled_from(["2023-01-01", "2024-02-29", "2024-6-1", 20240101])
windows = st.one_of(
    st.fixed_dictionaries({"last_days": st.sampled_from([1, 30, 0, 40000, True, "30"])}),
    st.fixed_dictionaries({}, optional={"from": dates, "to": dates}),
    st.just({"last_days": 7, "from": "2024-01-01"}),
    st.just("30"),
)
filter_values = st.one_of(
    st.sampled_from(["shoes", "online", "teleport", "", 5]),
    st.lists(st.sampled_from(["shoes", "store", "marketplace", ""]), min_size=0, max_size=2),
)
filters = st.one_of(
    st.dictionaries(
        st.sampled_from([*rules.PURCHASE_FILTERS, *rules.EVENT_FILTERS, "bogus"]),
        filter_values,
        max_size=2,
    ),
    st.just(["shoes"]),
)


def _without_missing(node: dict) -> dict:
    return {key: value for key, value in node.items() if value is not MISSING}


KIND_VALUES = {
    rules.TEXT: st.sampled_from(["DE", "Berlin", "", "x"]),
    rules.TAGS: st.sampled_from(["vip", "shoes", ""]),
    rules.INTEGER: st.integers(min_value=-2, max_value=250),
    rules.USER: st.integers(min_value=-1, max_value=50),
    rules.NUMBER: st.sampled_from([0, 1, 0.5, 2.25, -1.5, "1.5", "12", "-3"]),
    rules.DATE: st.sampled_from(["2024-02-29", "1994-03-01", "2024-6-1"]),
    rules.ATTR: st.one_of(
        st.sampled_from(["Gold", "", "7"]), st.integers(-3, 9), st.booleans(), st.just(0.5)
    ),
}


@st.composite
def well_formed_value(draw, kind: str, op, choices=()):
    """A value mostly of the kind the operator takes (and sometimes of another)."""
    one = st.sampled_from(choices) if choices else KIND_VALUES[kind]
    one = st.one_of(one, one, one, scalars)
    if op in rules.NO_VALUE_OPS:
        return draw(st.sampled_from([MISSING, MISSING, None, "x"]))
    if op in ("in", "not_in"):
        return draw(st.lists(one, min_size=0, max_size=3))
    if op == "between":
        return draw(st.lists(one, min_size=1, max_size=3))
    if op == "within_last_days":
        return draw(st.sampled_from([0, 30, 36500, 36501, -1, "30"]))
    return draw(st.one_of(one, st.just(MISSING)))


@st.composite
def well_formed_field_condition(draw):
    name = draw(st.sampled_from([*rules.FIELDS, "attr.tier", "attr.vip_level"]))
    spec = rules.FIELDS.get(name)
    kind = spec.kind if spec else rules.ATTR
    allowed = spec.operators if spec else rules.OPERATORS_BY_KIND[rules.ATTR]
    op = draw(st.one_of(st.sampled_from(allowed), st.sampled_from(allowed), operators))
    value = draw(well_formed_value(kind, op, spec.choices if spec else ()))
    return _without_missing({"field": name, "op": op, "value": value})


@st.composite
def well_formed_metric_condition(draw):
    spec = rules.METRICS[draw(st.sampled_from(list(rules.METRICS)))]
    op = draw(st.one_of(st.sampled_from(spec.operators), operators))
    value = draw(well_formed_value(spec.kind, op))
    extra = draw(st.fixed_dictionaries({}, optional={"window": windows, "filter": filters}))
    return _without_missing({"metric": spec.name, "op": op, "value": value, **extra})


field_conditions = st.builds(
    lambda field, op, value, extra: _without_missing(
        {"field": field, "op": op, "value": value, **extra}
    ),
    field_names,
    operators,
    values,
    st.sampled_from([{}, {}, {}, {"metric": "purchase_count"}, {"note": "x"}]),
)
metric_conditions = st.builds(
    lambda metric, op, value, extra: _without_missing(
        {"metric": metric, "op": op, "value": value, **extra}
    ),
    st.sampled_from([*rules.METRICS, "bogus"]),
    operators,
    values,
    st.fixed_dictionaries({}, optional={"window": windows, "filter": filters}),
)
consent_conditions = st.fixed_dictionaries(
    {"consent": st.sampled_from(["email_marketing", "", 5])},
    optional={"state": st.sampled_from([*rules.CONSENT_STATES, "maybe"])},
)
segment_conditions = st.fixed_dictionaries({"segment": st.sampled_from([1, 42, 0, -3, "7", True])})
conditions = st.one_of(
    well_formed_field_condition(),
    well_formed_field_condition(),
    well_formed_metric_condition(),
    field_conditions,
    metric_conditions,
    consent_conditions,
    segment_conditions,
    st.sampled_from([{}, {"op": "eq", "value": 1}, 5, "country", []]),
)


def _groups(children):
    return st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(children, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(children, max_size=3)),
        st.builds(lambda child: {"not": child}, children),
        st.builds(lambda child: {"all": child}, children),  # not a list
        st.builds(lambda items: {"all": items, "any": []}, st.lists(children, max_size=2)),
    )


trees = st.recursive(conditions, _groups, max_leaves=6)


@settings(
    max_examples=400,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
@given(trees)
def test_the_schema_accepts_exactly_the_rules_the_validator_accepts(rule):
    errors = rules.validate(rule)
    assume(not any(error.message in SEMANTIC for error in errors))

    schema_accepts = SCHEMA_VALIDATOR.is_valid(rule)

    assert schema_accepts == (not errors), (
        f"validator: {[str(e) for e in errors]}; schema: "
        f"{[e.message for e in SCHEMA_VALIDATOR.iter_errors(rule)][:3]}"
    )


def test_the_schema_is_a_valid_json_schema_naming_every_field_and_metric_of_the_catalogue():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    named = set()
    for definition in SCHEMA["$defs"].values():
        for key in ("field", "metric"):
            named.update(definition.get("properties", {}).get(key, {}).get("enum", []))

    assert named == set(rules.FIELDS) | set(rules.METRICS)


def test_a_rule_from_the_documentation_is_valid_for_both():
    rule = {
        "all": [
            {"field": "country", "op": "in", "value": ["DE", "AT"]},
            {"not": {"field": "email", "op": "is_empty"}},
            {
                "metric": "purchase_total",
                "op": "gte",
                "value": 100,
                "window": {"last_days": 90},
                "filter": {"channel": ["online", "store"]},
            },
            {"consent": "email_marketing", "state": "granted"},
        ]
    }

    assert rules.validate(rule) == []
    assert SCHEMA_VALIDATOR.is_valid(rule)
