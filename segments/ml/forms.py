"""The ML segment form and the cluster rename form."""

from django import forms
from django.core.exceptions import ValidationError

from segments.ml.features import FEATURE_GROUPS
from segments.ml.models import MLSegment


class MLSegmentForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    features = forms.MultipleChoiceField(
        choices=list(FEATURE_GROUPS.items()),
        widget=forms.CheckboxSelectMultiple,
        initial=["rfm", "aov", "purchase_interval"],
    )
    attribute_keys = forms.CharField(
        required=False, help_text="Numeric custom attributes, comma-separated (with the group)"
    )
    scaling = forms.ChoiceField(choices=MLSegment.Scaling.choices)
    algorithm = forms.ChoiceField(choices=MLSegment.Algorithm.choices)
    k = forms.IntegerField(
        required=False, min_value=2, max_value=30, label="Clusters",
        help_text="Leave empty to choose by silhouette between the bounds below",
    )  # fmt: skip
    k_min = forms.IntegerField(min_value=2, max_value=30, initial=2, label="Fewest clusters")
    k_max = forms.IntegerField(min_value=2, max_value=30, initial=6, label="Most clusters")
    seed = forms.IntegerField(min_value=0, initial=0, label="Random seed")
    window_days = forms.IntegerField(min_value=1, max_value=36500, initial=730)

    def cleaned_definition(self) -> dict:
        data = dict(self.cleaned_data)
        data["attribute_keys"] = [
            k.strip() for k in (data.get("attribute_keys") or "").split(",") if k.strip()
        ]
        return data


class ClusterRenameForm(forms.Form):
    name = forms.CharField(max_length=150)


class RfmRunForm(forms.Form):
    reference_date = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    window_days = forms.IntegerField(min_value=1, max_value=36500, initial=730)


class AsOfFormMixin:
    def clean_as_of(self):
        from segments.ml.services import as_of_check

        day = self.cleaned_data.get("as_of")
        if day is None:
            return None
        try:
            return as_of_check(day)
        except ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["as_of"]) from None


def _as_of_field() -> forms.DateField:
    return forms.DateField(
        required=False,
        label="As of",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Empty: today (current scores). A past day: a back-test kept with its report.",
    )


class PredictiveTrainForm(AsOfFormMixin, forms.Form):
    horizon_days = forms.IntegerField(min_value=7, max_value=730, initial=90)
    as_of = _as_of_field()


class LifetimeFitForm(AsOfFormMixin, forms.Form):
    as_of = _as_of_field()
    horizon_days = forms.IntegerField(
        min_value=7, max_value=3650, initial=365, label="Horizon (days)"
    )
    annual_discount = forms.FloatField(
        min_value=0, max_value=0.99, initial=0.1, label="Yearly discount rate"
    )
