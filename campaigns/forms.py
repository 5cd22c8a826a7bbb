"""The forms of the campaign pages: the editor's steps, the live audience size, the promotion-code
check."""

import zoneinfo

from django import forms
from django.utils import timezone

from campaigns import services
from campaigns.models import CAMPAIGN_SETTINGS, Campaign, Promotion
from crm.forms import ModelMultipleChoiceField


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = list(CAMPAIGN_SETTINGS)
        field_classes = {
            "target_segments": ModelMultipleChoiceField,
            "exclusion_segments": ModelMultipleChoiceField,
        }
        widgets = {
            "target_segments": forms.CheckboxSelectMultiple,
            "exclusion_segments": forms.CheckboxSelectMultiple,
            "send_at": forms.DateTimeInput(attrs={"type": "datetime-local"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The send time is typed and shown as the wall-clock time of the campaign's time zone.
        if self.instance.send_at and not self.is_bound:
            zone = zoneinfo.ZoneInfo(self.instance.time_zone)
            self.initial["send_at"] = self.instance.send_at.astimezone(zone).replace(tzinfo=None)

    def clean(self):
        cleaned = super().clean()
        send_at, name = cleaned.get("send_at"), cleaned.get("time_zone") or "UTC"
        if send_at is None:
            return cleaned
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            self.add_error(
                "time_zone", f"Unknown time zone {name!r}; use a name like Europe/Berlin."
            )
            return cleaned
        cleaned["send_at"] = timezone.make_naive(send_at).replace(tzinfo=zone)
        return cleaned


class VariantForm(forms.Form):
    name = forms.CharField(max_length=50, required=False)
    subject = forms.CharField(max_length=300)
    html = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), required=False)
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 6}))
    share = forms.IntegerField(min_value=1, max_value=2**31 - 1, initial=1)


class PromotionForm(forms.Form):
    discount = forms.ChoiceField(choices=Promotion.Discount.choices)
    value = forms.DecimalField(min_value=0, max_digits=10, decimal_places=2)
    code_mode = forms.ChoiceField(choices=Promotion.CodeMode.choices)
    shared_code = forms.CharField(max_length=64, required=False)
    expires_at = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    redemption_cap = forms.IntegerField(min_value=1, required=False)


class PromotionCodeForm(forms.Form):
    code = forms.CharField(max_length=64, label="Promotion code")


class AudienceEstimateForm(forms.ModelForm):
    """The audience step's settings as the marketer has them on screen, not yet saved."""

    class Meta:
        model = Campaign
        fields = list(services.ESTIMATE_FIELDS)
        field_classes = {
            "target_segments": ModelMultipleChoiceField,
            "exclusion_segments": ModelMultipleChoiceField,
        }
