"""Forms of the privacy pages. Every error names the field and the problem."""

import datetime as dt

from django import forms
from django.utils import timezone

from privacy.models import (
    ConsentSource,
    ConsentStatus,
    ConsentWording,
    Law,
    Purpose,
    RequestStatus,
    RequestType,
)
from privacy.registry import audience_providers

MAX_CSV_BYTES = 20 * 1024 * 1024


class ConsentRecordForm(forms.Form):
    """Staff record a grant or withdrawal with its evidence."""

    purpose = forms.ModelChoiceField(queryset=Purpose.objects.all(), to_field_name="code")
    state = forms.ChoiceField(choices=ConsentStatus.choices)
    source = forms.ChoiceField(
        choices=[
            (c.value, c.label)
            for c in (
                ConsentSource.STAFF,
                ConsentSource.FORM,
                ConsentSource.IMPORT,
                ConsentSource.API,
            )
        ],
        initial=ConsentSource.STAFF,
        help_text="How the customer gave or withdrew consent",
    )
    wording = forms.ModelChoiceField(
        queryset=ConsentWording.objects.select_related("purpose"),
        required=False,
        help_text="The text version the customer saw",
    )
    recorded_at = forms.DateTimeField(
        required=False,
        help_text="When the customer gave it (now when empty)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    evidence = forms.CharField(
        max_length=300, help_text="Signed form number, call reference, email"
    )

    def clean_recorded_at(self):
        value = self.cleaned_data.get("recorded_at")
        if value and value > timezone.now():
            raise forms.ValidationError("Consent cannot be recorded in the future.")
        return value

    def clean(self):
        data = super().clean()
        wording, purpose = data.get("wording"), data.get("purpose")
        if wording and purpose and wording.purpose_id != purpose.code:
            self.add_error("wording", "This wording belongs to another purpose.")
        return data


class WordingForm(forms.ModelForm):
    class Meta:
        model = ConsentWording
        fields = ["purpose", "version", "text", "effective_from"]
        widgets = {"effective_from": forms.DateInput(attrs={"type": "date"})}

    def clean(self):
        data = super().clean()
        if (
            data.get("purpose")
            and data.get("version")
            and ConsentWording.objects.filter(
                purpose=data["purpose"], version=data["version"]
            ).exists()
        ):
            self.add_error("version", "This purpose already has a wording with this version.")
        return data


class DataRequestForm(forms.Form):
    customer_id = forms.IntegerField(required=False, min_value=1, label="Customer number")
    email = forms.EmailField(required=False, help_text="When the customer is not known yet")
    type = forms.ChoiceField(choices=RequestType.choices)
    law = forms.ChoiceField(choices=Law.choices)
    received_on = forms.DateField(
        initial=dt.date.today, widget=forms.DateInput(attrs={"type": "date"})
    )
    details = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_received_on(self):
        value = self.cleaned_data["received_on"]
        if value > timezone.localdate():
            raise forms.ValidationError("The received date cannot be in the future.")
        return value

    def clean(self):
        data = super().clean()
        if not data.get("customer_id") and not data.get("email"):
            self.add_error("customer_id", "Give the customer number or the requester's email.")
        return data


class TransitionForm(forms.Form):
    status = forms.ChoiceField(choices=RequestStatus.choices)
    reason = forms.CharField(required=False, max_length=2000)


class ExtendForm(forms.Form):
    reason = forms.CharField(max_length=2000, widget=forms.Textarea(attrs={"rows": 2}))


class MatchForm(forms.Form):
    customer_id = forms.IntegerField(min_value=1, label="Customer number")


class BulkConsentForm(forms.Form):
    purpose = forms.ModelChoiceField(queryset=Purpose.objects.all(), to_field_name="code")
    state = forms.ChoiceField(choices=ConsentStatus.choices)
    evidence = forms.CharField(
        max_length=300, help_text="Why and on what basis (source of the list)"
    )
    file = forms.FileField(
        required=False, help_text="CSV: emails or external ids in the first column"
    )
    audience = forms.ChoiceField(required=False, help_text="Or every customer of an audience")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "—")]
        for provider in audience_providers().values():
            choices += [
                (f"{provider.key}:{pk}", f"{provider.label}: {label}")
                for pk, label in provider.choices()
            ]
        self.fields["audience"].choices = choices

    def clean_file(self):
        upload = self.cleaned_data.get("file")
        if upload is None:
            return ""
        if upload.size > MAX_CSV_BYTES:
            raise forms.ValidationError("The file is larger than 20 MB.")
        try:
            return upload.read().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise forms.ValidationError("The file is not UTF-8 text.") from exc

    def clean(self):
        data = super().clean()
        if not data.get("file") and not data.get("audience"):
            self.add_error("file", "Upload a CSV or choose an audience.")
        if data.get("file") and data.get("audience"):
            self.add_error("audience", "Choose either a CSV or an audience, not both.")
        return data


class AuditSearchForm(forms.Form):
    actor = forms.CharField(required=False, help_text="User name")
    action = forms.CharField(required=False)
    object_kind = forms.CharField(required=False)
    object_id = forms.IntegerField(required=False, min_value=1)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))


class PreferenceForm(forms.Form):
    """One choice per purpose, shown to the customer in the preference centre."""

    def __init__(self, *args, states: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        for purpose in Purpose.objects.all():
            self.fields[purpose.code] = forms.ChoiceField(
                label=purpose.name,
                help_text=purpose.description,
                choices=ConsentStatus.choices,
                widget=forms.RadioSelect,
                initial=states.get(purpose.code) if states.get(purpose.code) != "unknown" else None,
                required=False,
            )


class PreferenceRequestForm(forms.Form):
    type = forms.ChoiceField(
        choices=[
            (RequestType.ACCESS, "Send me a copy of my data"),
            (RequestType.ERASURE, "Erase my data"),
        ]
    )
    details = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
