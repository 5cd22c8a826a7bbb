"""A segment's rule in plain words, from one walk over the tree, with field labels and the names
of what the rule refers to, never raw keys or ids."""

import pytest

from segments.rule_words import RuleNames, rule_in_words
from tests.segments.factories import SegmentFactory

NAMES = RuleNames(segments={16: "VIP customers"}, users={3: "Sam Sales"},
                  purposes={"email_marketing": "Email marketing"})  # fmt: skip


def test_country_and_recent_spend_read_as_a_sentence():
    rule = {"all": [
        {"field": "country", "op": "eq", "value": "DE"},
        {"metric": "purchase_total", "op": "gt", "value": 500, "window": {"last_days": 90}},
    ]}  # fmt: skip

    assert rule_in_words(rule, names=NAMES) == (
        "Country is Germany and spent more than €500 in the last 90 days"
    )


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ({"field": "job_title", "op": "eq", "value": "CTO"}, "Job title is CTO"),
        ({"field": "gender", "op": "in", "value": ["female", "undisclosed"]},
         "Gender is one of Female, Prefers not to say"),
        ({"field": "country", "op": "not_in", "value": ["DE", "FR"]},
         "Country is none of Germany, France"),
        ({"field": "age", "op": "between", "value": [30, 40]}, "Age is between 30 and 40"),
        ({"field": "lifetime_value", "op": "gte", "value": 1000.5},
         "Lifetime value is at least €1,000.50"),
        ({"field": "owner", "op": "eq", "value": 3}, "Owner is Sam Sales"),
        ({"field": "owner", "op": "eq", "value": 99}, "Owner is user #99"),
        ({"field": "tags", "op": "eq", "value": "vip"}, "Has the tag vip"),
        ({"field": "attr.plan", "op": "eq", "value": "gold"}, "Custom attribute “plan” is gold"),
        ({"field": "created_at", "op": "within_last_days", "value": 7},
         "Created is within the last 7 days"),
        ({"field": "email", "op": "is_empty"}, "Email is empty"),
        ({"metric": "purchase_count", "op": "gte", "value": 2, "filter": {"channel": "online"}},
         "Made at least 2 purchases through online"),
        ({"metric": "days_since_last_purchase", "op": "is_empty"}, "Never purchased"),
        ({"metric": "event_count", "op": "gt", "value": 3, "filter": {"event_type": "page_view"},
          "window": {"from": "2024-01-01", "to": "2024-03-31"}},
         "Had more than 3 events of type page view from 2024-01-01 to 2024-03-31"),
        ({"consent": "email_marketing", "state": "withdrawn"},
         "Has withdrawn consent to email marketing"),
        ({"not": {"segment": 16}}, "Is not in segment “VIP customers”"),
        ({"all": []}, "Every customer"),
    ],
)  # fmt: skip
def test_each_kind_of_condition_reads_in_words(rule, words):
    assert rule_in_words(rule, names=NAMES) == words


def test_nested_groups_keep_their_meaning_with_brackets():
    rule = {"any": [
        {"field": "country", "op": "eq", "value": "AT"},
        {"all": [{"field": "owner", "op": "eq", "value": 3},
                 {"consent": "email_marketing", "state": "granted"}]},
    ]}  # fmt: skip

    assert rule_in_words(rule, names=NAMES) == (
        "Country is Austria or (Owner is Sam Sales and has given consent to email marketing)"
    )


def test_no_raw_key_is_left_for_any_field_of_the_catalogue():
    from segments.rules import FIELDS

    for name, spec in FIELDS.items():
        words = rule_in_words({"field": name, "op": spec.operators[0],
                               "value": None if spec.operators[0].startswith("is_") else
                               (spec.choices[0] if spec.choices else 1)}, names=NAMES)  # fmt: skip
        assert "_" not in words.split(" is")[0], (name, words)


@pytest.mark.django_db
def test_segment_page_shows_its_rule_in_words_with_the_names_it_refers_to(client, marketing_user):
    vips = SegmentFactory(name="VIP customers")
    segment = SegmentFactory(name="German VIPs", rule={"all": [
        {"field": "country", "op": "eq", "value": "DE"}, {"segment": vips.pk},
    ]})  # fmt: skip
    client.force_login(marketing_user)

    page = client.get(f"/segments/{segment.pk}/").content.decode()

    assert (
        '<span id="rule-sentence">Country is Germany and is in segment “VIP customers”</span>'
        in page
    )


@pytest.mark.django_db
def test_rule_builder_offers_owners_by_name(client, marketing_user, sales_user):
    sales_user.first_name, sales_user.last_name = "Sam", "Sales"
    sales_user.save(update_fields=["first_name", "last_name"])
    client.force_login(marketing_user)

    response = client.get("/segments/new/")

    catalogue = response.context["catalogue"]
    owner = next(f for f in catalogue["fields"] if f["name"] == "owner")
    assert owner["label"] == "Owner"
    assert {"id": sales_user.pk, "name": "Sam Sales"} in catalogue["users"]
    assert marketing_user.pk not in [u["id"] for u in catalogue["users"]]
