"""The filters of the insight pages (the period is checked by services.kpi_period)."""

from django import forms

from insights.kpi import DEFAULT_DAYS, PERIOD_DAYS
from insights.models import Survey
from segments.models import Segment

DAY_CHOICES = [(str(d), f"{d} days") for d in PERIOD_DAYS]


class PeriodForm(forms.Form):
    days = forms.TypedChoiceField(choices=DAY_CHOICES, coerce=int, initial=DEFAULT_DAYS,
                                  required=False, label="Period")  # fmt: skip
    end = forms.DateField(required=False, label="Ending on", help_text="Empty: yesterday",
                          widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip


class KpiForm(PeriodForm):
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name", "id"),
        required=False,
        empty_label="All customers",
    )


class CompareForm(PeriodForm):
    segments = forms.ModelMultipleChoiceField(
        queryset=Segment.objects.order_by("name", "id"),
        help_text="Two or more; the first is the baseline",
    )

    def clean_segments(self):
        segments = self.cleaned_data["segments"]
        if len(segments) < 2:
            raise forms.ValidationError("choose at least two segments")
        if len(segments) > 6:
            raise forms.ValidationError("compare at most six segments at once")
        return segments


class CohortForm(forms.Form):
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.order_by("name", "id"), required=False, empty_label="Everyone"
    )
    country = forms.CharField(max_length=2, required=False)
    source = forms.CharField(max_length=50, required=False, label="Acquisition source")
    channel = forms.ChoiceField(required=False, label="First purchase channel")
    months = forms.TypedChoiceField(
        choices=[("6", "6"), ("12", "12"), ("24", "24")], coerce=int, initial=12, required=False
    )

    def __init__(self, *args, **kwargs):
        from customers.models import Purchase

        super().__init__(*args, **kwargs)
        self.fields["channel"].choices = [("", "Any channel"), *Purchase.Channel.choices]


class SurveyForm(forms.Form):
    name = forms.CharField(max_length=150)
    kind = forms.ChoiceField(choices=Survey.Kind.choices, initial=Survey.Kind.NPS)
    question = forms.CharField(
        max_length=300,
        initial="How likely are you to recommend us to a friend or colleague?",
        widget=forms.TextInput(attrs={"size": 60}),
    )
    segment = forms.ModelChoiceField(queryset=Segment.objects.order_by("name", "id"))


class AnswerForm(forms.Form):
    score = forms.IntegerField(min_value=0, max_value=10)
    comment = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
