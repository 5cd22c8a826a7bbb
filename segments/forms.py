"""Forms of the segment pages; the rule itself is edited by the builder (static/segments/builder.js)."""

import json

from django import forms

from segments.models import Segment


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kind = forms.ChoiceField(choices=Segment.Kind.choices, initial=Segment.Kind.RULE)
    rule = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "class": "rule-json", "spellcheck": "false"}),
        help_text="The rule as JSON (the builder above writes it for you).",
    )
    refresh_every_minutes = forms.IntegerField(
        required=False,
        min_value=5,
        max_value=60 * 24 * 31,
        help_text="Empty for manual refresh only",
    )
    min_size_warning = forms.IntegerField(
        min_value=0,
        max_value=10**9,
        initial=100,
        help_text="Warn when the segment has fewer members than this",
    )

    def clean_rule(self):
        text = self.cleaned_data.get("rule") or ""
        if not text.strip():
            return {}
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc


class MembersUploadForm(forms.Form):
    file = forms.FileField(required=False, help_text="CSV with one email or external id per line")
    customer_ids = forms.CharField(
        required=False, help_text="Customer ids separated by commas or spaces", max_length=100000
    )
    remove = forms.BooleanField(required=False, label="Remove these customers instead")

    def clean_customer_ids(self):
        raw = self.cleaned_data.get("customer_ids") or ""
        parts = raw.replace(",", " ").split()
        try:
            ids = [int(p) for p in parts]
        except ValueError as exc:
            raise forms.ValidationError(
                "expected whole numbers separated by commas or spaces"
            ) from exc
        beyond = [str(i) for i in ids if not 0 < i < 2**63]
        if beyond:
            raise forms.ValidationError(f"no customer has the id {', '.join(beyond[:3])}")
        return ids

    def clean(self):
        data = super().clean()
        if not data.get("file") and not data.get("customer_ids"):
            raise forms.ValidationError("Choose a CSV file or enter customer ids.")
        return data
