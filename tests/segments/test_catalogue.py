"""The rule catalogue follows the models: a choice field offers exactly its model field's choices,
with the model's labels, and validation accepts exactly those."""

import pytest

from customers.models import Account, Customer, Purchase
from insights.models import CustomerSatisfaction
from segments.ml import scoring
from segments.ml.models import CustomerScore, RfmClass
from segments.rules import CHOICE, catalogue, validate

# Each choice field of the rule language and the model field it tests.
MODEL_FIELDS = {
    "gender": Customer._meta.get_field("gender"),
    "income_band": Customer._meta.get_field("income_band"),
    "account.kind": Account._meta.get_field("kind"),
    "account.size": Account._meta.get_field("size"),
    "rfm_class": CustomerScore._meta.get_field("rfm_class"),
    "nps_class": CustomerSatisfaction._meta.get_field("nps_class"),
}


def _fields() -> dict[str, dict]:
    return {field["name"]: field for field in catalogue()["fields"]}


def test_every_choice_field_of_the_catalogue_tests_a_model_field_with_choices():
    offered = {name for name, field in _fields().items() if field["kind"] == CHOICE}
    assert offered == set(MODEL_FIELDS)


@pytest.mark.parametrize("name", sorted(MODEL_FIELDS))
def test_a_choice_field_offers_the_model_choices_with_their_labels_and_nothing_else(name):
    field = _fields()[name]
    model_choices = dict(MODEL_FIELDS[name].flatchoices)
    model_choices.pop("", None)  # an empty value is tested with is_empty, not offered

    assert field["choices"] == list(model_choices)
    assert field["choice_labels"] == model_choices


@pytest.mark.parametrize("name", sorted(MODEL_FIELDS))
def test_validation_accepts_exactly_the_model_choices(name):
    for value in dict(MODEL_FIELDS[name].flatchoices):
        if value:
            assert validate({"field": name, "op": "eq", "value": value}) == []
    assert validate({"field": name, "op": "eq", "value": "not a choice"}) != []


def test_purchase_channels_are_the_purchase_model_channels_with_their_labels():
    offered = catalogue()
    model_channels = dict(Purchase._meta.get_field("channel").flatchoices)

    assert offered["channels"] == list(model_channels)
    assert offered["channel_labels"] == model_channels


def test_the_rfm_scoring_names_only_the_model_rfm_classes():
    assert list(scoring.RFM_CLASSES) == list(RfmClass.values)
    named = {name for row in scoring.RFM_GRID.values() for name in row}
    assert named <= set(RfmClass.values)
