"""When an erasure takes a person's values out of a rule, the rule stays valid and selects the
same people as before (the person aside): it never grows."""

import pytest

from segments.rules import rule_without_values, validate

EMAIL = "zebulon@example.org"


def _names(value: str) -> bool:
    return "zebulon" in value.lower()


@pytest.mark.parametrize(
    ("rule", "expected", "removed"),
    [
        (
            {"field": "email", "op": "in", "value": [EMAIL, "olga@example.org"]},
            {"field": "email", "op": "in", "value": ["olga@example.org"]},
            1,
        ),
        ({"field": "email", "op": "eq", "value": EMAIL}, {"any": []}, 1),
        ({"field": "email", "op": "not_in", "value": [EMAIL]}, {"all": []}, 1),
        (
            {
                "any": [
                    {"field": "email", "op": "eq", "value": EMAIL},
                    {"field": "city", "op": "eq", "value": "Ulm"},
                ]
            },  # fmt: skip
            {"any": [{"field": "city", "op": "eq", "value": "Ulm"}]},
            1,
        ),
        (
            {
                "all": [
                    {"field": "email", "op": "ne", "value": EMAIL},
                    {"field": "city", "op": "eq", "value": "Ulm"},
                ]
            },  # fmt: skip
            {"all": [{"field": "city", "op": "eq", "value": "Ulm"}]},
            1,
        ),
        (
            {
                "all": [
                    {"field": "city", "op": "eq", "value": "Ulm"},
                    {"not": {"field": "attr.friend", "op": "eq", "value": "Zebulon Q"}},
                ]
            },  # fmt: skip
            {"all": [{"field": "city", "op": "eq", "value": "Ulm"}]},
            1,
        ),
        (
            {
                "any": [
                    {
                        "metric": "purchase_count",
                        "op": "gte",
                        "value": 1,
                        "filter": {"promotion_code": ["ZEBULON10"]},
                    }
                ]
            },  # fmt: skip
            {"any": []},
            1,
        ),
        (
            {"field": "city", "op": "eq", "value": "Ulm"},
            {"field": "city", "op": "eq", "value": "Ulm"},
            0,
        ),  # fmt: skip
    ],
)
def test_values_naming_the_person_leave_the_rule_without_changing_whom_it_selects(
    rule, expected, removed
):
    new_rule, count = rule_without_values(rule, names=_names)

    assert new_rule == expected
    assert count == removed
    assert validate(new_rule) == []


def test_a_condition_left_empty_inside_all_matches_no_one_instead_of_widening_the_rule():
    rule = {"all": [{"field": "country", "op": "eq", "value": "DE"}, {"field": "email", "op": "in", "value": [EMAIL]}]}  # fmt: skip

    new_rule, _count = rule_without_values(rule, names=_names)

    assert new_rule == {"all": [{"field": "country", "op": "eq", "value": "DE"}, {"any": []}]}
