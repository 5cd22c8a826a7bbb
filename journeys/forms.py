"""The forms of the journey pages: the journey's settings, one step, the test customer."""

import datetime as dt

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Q

from customers.models import Customer
from journeys.models import Journey, Step
from segments.models import Segment

WAIT_UNITS = {"minutes": 60, "hours": 3600, "days": 86400, "seconds": 1}


def _segments():
    return Segment.objects.order_by("name")


class JourneyForm(forms.ModelForm):
    trigger_segment = forms.ModelChoiceField(
        queryset=_segments(), required=False, label="Segment that enters the journey"
    )
    goal_segment = forms.ModelChoiceField(
        queryset=_segments(), required=False, label="Segment that counts as the goal"
    )

    class Meta:
        model = Journey
        fields = [
            "name",
            "description",
            "trigger",
            "trigger_segment",
            "trigger_event_type",
            "exit_on_segment_leave",
            "reentry",
            "reentry_days",
            "goal",
            "goal_segment",
        ]
        labels = {"trigger_event_type": "Event type that enters the journey"}
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}

    def _post_clean(self):
        """The service validates and writes; the model is not saved by the form."""

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class StepForm(forms.Form):
    kind = forms.ChoiceField(choices=Step.Kind.choices, label="What the step does")
    label = forms.CharField(max_length=200, required=False, help_text="Optional: a short name")
    subject = forms.CharField(max_length=300, required=False, label="Email subject")
    body = forms.CharField(
        required=False,
        label="Email text",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="A template: {{ customer.first_name }} and the campaign template fields",
    )
    wait_value = forms.IntegerField(min_value=1, max_value=31_536_000, required=False,
                                    label="Wait for")  # fmt: skip
    wait_unit = forms.ChoiceField(
        choices=[(unit, unit) for unit in WAIT_UNITS], initial="days", required=False, label="Unit"
    )
    condition = forms.ChoiceField(
        choices=[("", "—"), *Step.Condition.choices], required=False, label="Split on"
    )
    condition_segment = forms.ModelChoiceField(
        queryset=_segments(), required=False, label="Segment (for “is in a segment”)"
    )
    yes_step = forms.ModelChoiceField(
        queryset=Step.objects.none(), required=False, label="When it holds, go to",
        empty_label="the next step",
    )  # fmt: skip
    no_step = forms.ModelChoiceField(
        queryset=Step.objects.none(), required=False, label="Otherwise, go to",
        empty_label="the next step",
    )  # fmt: skip
    task_subject = forms.CharField(max_length=200, required=False, label="Task for the owner")
    task_due_days = forms.IntegerField(min_value=0, max_value=365, initial=1, required=False,
                                       label="Task due in (days)")  # fmt: skip

    def __init__(self, *args, journey: Journey, step: Step | None = None, **kwargs):
        if step is not None and "initial" not in kwargs:
            kwargs["initial"] = _step_initial(step)
        super().__init__(*args, **kwargs)
        others = journey.steps.order_by("position")
        if step is not None:
            others = others.exclude(pk=step.pk)
        for name in ("yes_step", "no_step"):
            self.fields[name].queryset = others
            self.fields[name].label_from_instance = str

    def clean(self):
        data = super().clean()
        if data.get("kind") == Step.Kind.WAIT:
            if not data.get("wait_value"):
                raise ValidationError({"wait_value": "give how long to wait"})
            seconds = data["wait_value"] * WAIT_UNITS[data.get("wait_unit") or "days"]
            if seconds > 365 * 86400:
                raise ValidationError({"wait_value": "wait at most a year"})
        return data

    def service_fields(self) -> dict:
        data = self.cleaned_data
        wait = None
        if data["kind"] == Step.Kind.WAIT and data.get("wait_value"):
            wait = dt.timedelta(
                seconds=data["wait_value"] * WAIT_UNITS[data["wait_unit"] or "days"]
            )
        return {
            "kind": data["kind"],
            "label": data["label"],
            "subject": data["subject"],
            "body": data["body"],
            "wait": wait,
            "condition": data["condition"],
            "condition_segment": data["condition_segment"],
            "yes_step": data["yes_step"],
            "no_step": data["no_step"],
            "task_subject": data["task_subject"],
            "task_due_days": data["task_due_days"] if data["task_due_days"] is not None else 1,
        }


def _step_initial(step: Step) -> dict:
    initial = {
        "kind": step.kind,
        "label": step.label,
        "subject": step.subject,
        "body": step.body,
        "condition": step.condition,
        "condition_segment": step.condition_segment_id,
        "yes_step": step.yes_step_id,
        "no_step": step.no_step_id,
        "task_subject": step.task_subject,
        "task_due_days": step.task_due_days,
    }
    if step.wait:
        seconds = int(step.wait.total_seconds())
        for unit in ("days", "hours", "minutes", "seconds"):
            if seconds % WAIT_UNITS[unit] == 0:
                initial.update(wait_value=seconds // WAIT_UNITS[unit], wait_unit=unit)
                break
    return initial


class TestCustomerForm(forms.Form):
    customer = forms.CharField(
        max_length=254, label="Customer", help_text="Their email address or customer number"
    )

    def clean_customer(self) -> Customer:
        value = self.cleaned_data["customer"].strip()
        found = Customer.objects.filter(erased_at__isnull=True).filter(
            Q(email__iexact=value) | Q(pk=int(value) if value.isdigit() else None)
        )
        customer = found.first()
        if customer is None:
            raise ValidationError("no customer with this email address or number")
        return customer
