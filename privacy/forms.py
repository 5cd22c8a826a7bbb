"""Forms of the privacy pages. Every error names the field and the problem."""

import datetime as dt

from django import forms
from django.urls import reverse_lazy
from django.utils import timezone

from crm.forms import RecordPicker
from customers.models import Customer
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


def _customer_name(pk: int) -> str:
    customer = Customer.objects.filter(pk=pk, erased_at__isnull=True).first()
    return str(customer) if customer else ""


def _customer_picker() -> RecordPicker:
    return RecordPicker(url=reverse_lazy("customers:customer_pick"), label_for=_customer_name)


class DataRequestForm(forms.Form):
    customer_id = forms.IntegerField(
        required=False,
        min_value=1,
        label="Customer",
        widget=_customer_picker(),
        help_text="Type part of the name or email and choose the person",
    )
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
            self.add_error("customer_id", "Choose the customer or give the requester's email.")
        return data


class TransitionForm(forms.Form):
    status = forms.ChoiceField(choices=RequestStatus.choices, label="Move to")
    reason = forms.CharField(
        required=False,
        max_length=2000,
        label="Reason",
        help_text="Needed to reject; the requester is told this.",
    )


class ExtendForm(forms.Form):
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        label="Extend the deadline because",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", "id_extend_%s")  # the status form has a reason field too
        super().__init__(*args, **kwargs)


class MatchForm(forms.Form):
    customer_id = forms.IntegerField(
        min_value=1,
        label="Customer",
        widget=_customer_picker(),
        help_text="Type part of the name or email and choose the person",
    )


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
    # The uploaded list, carried through the confirmation page (a file cannot be re-posted).
    identifiers = forms.CharField(required=False, widget=forms.HiddenInput)

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
        if not data.get("file") and data.get("identifiers"):
            data["file"] = data["identifiers"]
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


class SignupForm(forms.Form):
    """The public signup page: an email, an optional name, and the purposes offered.

    Each offered purpose carries, in a hidden field, the id of the wording version the page
    showed, so the ledger records the text the person actually read.
    """

    email = forms.EmailField(max_length=254, help_text="We send a confirmation link here.")
    first_name = forms.CharField(max_length=100, required=False)
    last_name = forms.CharField(max_length=100, required=False)
    purposes = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Choose at least one thing to sign up for."},
    )
    # Left empty by people (it is hidden by the stylesheet); bots that fill every field are
    # answered as if they had signed up, and nothing is recorded.
    website = forms.CharField(
        required=False,
        label="Leave this empty",
        widget=forms.TextInput(attrs={"autocomplete": "off", "tabindex": "-1"}),
    )

    def __init__(self, *args, offered, **kwargs):
        super().__init__(*args, **kwargs)
        self.offered = {o.purpose.code: o for o in offered}
        self.fields["purposes"].choices = [(o.purpose.code, o.purpose.name) for o in offered]
        for o in offered:
            self.fields[f"wording_{o.purpose.code}"] = forms.IntegerField(
                required=False,
                widget=forms.HiddenInput,
                initial=o.wording.pk if o.wording else None,
            )

    @property
    def is_bot(self) -> bool:
        return bool(self.cleaned_data.get("website"))

    def chosen(self) -> dict[str, ConsentWording | None]:
        """{purpose code: the wording version shown} for the purposes ticked."""
        return {
            code: self.cleaned_data.get(f"_wording_{code}")
            for code in self.cleaned_data["purposes"]
        }

    def clean(self):
        data = super().clean()
        today = timezone.localdate()
        for code in data.get("purposes") or []:
            name = f"wording_{code}"
            wording_id = data.get(name)
            if wording_id is None:
                continue
            wording = ConsentWording.objects.filter(pk=wording_id, purpose_id=code).first()
            if wording is None or wording.effective_from > today:
                self.add_error(
                    name, f"This is not a wording version of {self.offered[code].purpose.name}."
                )
            else:
                data[f"_wording_{code}"] = wording
        return data
