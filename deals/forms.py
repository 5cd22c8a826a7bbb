"""Forms of the deal pages: list and board filters, the deal form, moves, activities, targets.
Forms check input and put errors next to fields; deals.services decides."""

import datetime as dt
import re

from django import forms
from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from customers.models import Account, Customer
from deals.models import Activity, Deal, Pipeline, Stage
from deals.selectors import sales_users

SELECT_LIMIT = 300
MONTH = re.compile(r"^(\d{4})-(\d{2})$")

DEAL_SORTS = {
    # key: (label, order_by)
    "name": ("Name", ("name", "id")),
    "amount": ("Amount", ("amount", "id")),
    "close": ("Expected close", ("expected_close_date", "id")),
    "stage": ("Stage", ("pipeline__name", "stage__position", "id")),
    "owner": ("Owner", ("owner__username", "id")),
    "created": ("Created", ("created_at", "id")),
}


def _person(user) -> str:
    return user.get_full_name() or user.get_username()


def _stage_label(stage: Stage) -> str:
    return f"{stage.pipeline.name} · {stage.name}"


def month_parse(value: str) -> dt.date | None:
    """A month written YYYY-MM as its first day; raises ValidationError when it is no month."""
    value = (value or "").strip()
    if not value:
        return None
    match = MONTH.match(value)
    if not match or not 1 <= int(match[2]) <= 12 or int(match[1]) < 1:
        raise ValidationError("Give a month as YYYY-MM, such as 2026-04.")
    return dt.date(int(match[1]), int(match[2]), 1)


class MonthField(forms.CharField):
    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 7)
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"type": "month", "placeholder": "YYYY-MM"})
        )
        super().__init__(**kwargs)

    def clean(self, value):
        return month_parse(super().clean(value))


class DealFilterForm(forms.Form):
    """Search, filters and sort of the deal list and the board, read from the query string."""

    q = forms.CharField(required=False, max_length=100, label="Search")
    pipeline = forms.ModelChoiceField(queryset=Pipeline.objects.all(), required=False)
    owner = forms.ModelChoiceField(queryset=sales_users(), required=False)
    stage = forms.ModelChoiceField(
        queryset=Stage.objects.select_related("pipeline").order_by("pipeline__name", "position"),
        required=False,
    )
    close_month = MonthField(label="Closing in")
    min_amount = forms.DecimalField(
        required=False, min_value=0, max_digits=14, decimal_places=2, label="Amount from"
    )
    sort = forms.ChoiceField(
        choices=[(k, v[0]) for k, v in DEAL_SORTS.items()]
        + [(f"-{k}", f"{v[0]}, descending") for k, v in DEAL_SORTS.items()],
        required=False,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].label_from_instance = _person
        self.fields["owner"].empty_label = "Any owner"
        self.fields["stage"].label_from_instance = _stage_label
        self.fields["stage"].empty_label = "Any stage"
        self.fields["pipeline"].empty_label = None

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or "-created"

    def apply(self, deals: QuerySet[Deal]) -> QuerySet[Deal]:
        data = self.cleaned_data
        if data.get("q"):
            deals = deals.filter(name__icontains=data["q"].strip())
        if data.get("owner"):
            deals = deals.filter(owner=data["owner"])
        if data.get("stage"):
            deals = deals.filter(stage=data["stage"])
        if data.get("close_month"):
            first = data["close_month"]
            following = (first + dt.timedelta(days=32)).replace(day=1)
            deals = deals.filter(expected_close_date__gte=first, expected_close_date__lt=following)
        if data.get("min_amount") is not None:
            deals = deals.filter(amount__gte=data["min_amount"])
        return deals


def _party_field(field: forms.ModelChoiceField, queryset: QuerySet, what: str) -> None:
    """A select of the records the user may see; beyond a few hundred, their number."""
    field.queryset = queryset.order_by("pk")
    field.error_messages["invalid_choice"] = f"No {what} with that number that you may see."
    if queryset[: SELECT_LIMIT + 1].count() > SELECT_LIMIT:
        field.widget = forms.NumberInput(attrs={"min": 1})
        field.help_text = f"The {what}'s number, shown on its page."


class DealForm(forms.ModelForm):
    amount = forms.DecimalField(min_value=0, max_digits=14, decimal_places=2, initial=0)
    probability = forms.IntegerField(
        min_value=0,
        max_value=100,
        required=False,
        help_text="Leave empty to use the stage's probability.",
    )
    currency = forms.CharField(max_length=3, initial="EUR")

    class Meta:
        model = Deal
        fields = [
            "name",
            "stage",
            "amount",
            "currency",
            "expected_close_date",
            "owner",
            "probability",
            "source",
            "account",
            "customer",
            "next_step",
            "lost_reason",
        ]
        widgets = {"expected_close_date": forms.DateInput(attrs={"type": "date"})}

    def __init__(
        self, *args, actor, accounts: QuerySet[Account], customers: QuerySet[Customer], **kwargs
    ):
        super().__init__(*args, **kwargs)
        stages = Stage.objects.select_related("pipeline").order_by(
            "-pipeline__is_default", "pipeline__name", "position"
        )
        if self.instance.pk:
            stages = stages.filter(pipeline=self.instance.pipeline)
        self.fields["stage"].queryset = stages
        self.fields["stage"].label_from_instance = _stage_label
        self.fields["stage"].empty_label = None
        owners = sales_users()
        if not actor.is_superuser:
            current = self.instance.owner_id if self.instance.pk else None
            owners = owners.filter(pk__in={actor.pk, current})
        self.fields["owner"].queryset = owners
        self.fields["owner"].label_from_instance = _person
        self.fields["owner"].error_messages["invalid_choice"] = (
            "Only an administrator can give a deal to someone else."
        )
        _party_field(self.fields["account"], accounts, "account")
        _party_field(self.fields["customer"], customers, "customer")

    def clean_currency(self) -> str:
        currency = (self.cleaned_data.get("currency") or "").strip().upper()
        if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
            raise ValidationError("Give a three-letter currency code, such as EUR.")
        return currency

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("account") and not cleaned.get("customer"):
            if "account" not in self.errors and "customer" not in self.errors:
                self.add_error("account", "A deal is with an account or a customer: give one.")
        return cleaned

    def _post_clean(self):
        pass  # the service validates the model in its transaction

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class DealMoveForm(forms.Form):
    stage = forms.ModelChoiceField(queryset=Stage.objects.none())
    lost_reason = forms.CharField(required=False, max_length=300)

    def __init__(self, *args, deal: Deal, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stage"].queryset = deal.pipeline.stages.order_by("position", "id")
        self.fields["stage"].empty_label = None
        self.fields["stage"].initial = deal.stage_id


# The activity form sits on customer and account pages next to their note form: ids of its own.
ACTIVITY_IDS = "activity_%s"


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(choices=Activity.Kind.choices, initial=Activity.Kind.CALL)
    subject = forms.CharField(max_length=200)
    body = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2}), label="Notes"
    )
    assignee = forms.ModelChoiceField(
        queryset=sales_users(),
        required=False,
        label="Follow-up for",
        help_text="With a due date this is a follow-up on their dashboard.",
    )
    due_date = forms.DateField(
        required=False, label="Due", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].label_from_instance = _person
        self.fields["assignee"].empty_label = "Me"

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("assignee") and not cleaned.get("due_date"):
            self.add_error("due_date", "A follow-up for someone needs a due date.")
        return cleaned


class ForecastFilterForm(forms.Form):
    start = MonthField(label="From")
    months = forms.TypedChoiceField(
        choices=[(n, n) for n in (3, 6, 12)], coerce=int, required=False, empty_value=6
    )
    currency = forms.CharField(required=False, max_length=3)
    owner = forms.ModelChoiceField(queryset=sales_users(), required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].label_from_instance = _person
        self.fields["owner"].empty_label = "Everyone"

    def clean_currency(self) -> str:
        currency = (self.cleaned_data.get("currency") or "").strip().upper() or "EUR"
        if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
            raise ValidationError("Give a three-letter currency code, such as EUR.")
        return currency


class TargetForm(forms.Form):
    owner = forms.ModelChoiceField(queryset=sales_users())
    month = MonthField(required=True)
    amount = forms.DecimalField(min_value=0, max_digits=14, decimal_places=2)
    currency = forms.CharField(max_length=3, initial="EUR")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].label_from_instance = _person

    def clean_currency(self) -> str:
        currency = (self.cleaned_data.get("currency") or "").strip().upper()
        if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
            raise ValidationError("Give a three-letter currency code, such as EUR.")
        return currency
