"""Forms of the customer pages: list filters, customer and account edits, notes, merges."""

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.urls import reverse
from django.utils.http import urlencode

from crm.forms import RecordPicker
from crm.roles import Role
from customers.fields import CUSTOMER_VALUE_FIELDS, CustomerField, clean_country, customer_fields
from customers.models import Account, Customer, Note, Tag
from customers.registry import customer_list_filters
from customers.services import OWNER_REFUSED

CUSTOMER_SORTS = {
    # key: (label, leading field, descending). Every one is backed by an index ending in id.
    "name": ("Name", "name", False),
    "-name": ("Name, Z to A", "name", True),
    "-lifetime_value": ("Lifetime value, highest first", "lifetime_value", True),
    "lifetime_value": ("Lifetime value, lowest first", "lifetime_value", False),
    "-last_purchase_at": ("Last purchase, newest first", "last_purchase_at", True),
    "last_purchase_at": ("Last purchase, oldest first", "last_purchase_at", False),
}
PAGE_SIZES = (25, 50, 100, 200)
SELECT_LIMIT = 300


def _consent_state_model():
    """The current-consent table, reached through the reverse relation so customers does not
    import privacy (which sits above it); None when privacy is not installed."""
    try:
        return Customer._meta.get_field("consent_states").related_model
    except FieldDoesNotExist:
        return None


def consent_purpose_choices() -> list[tuple[str, str]]:
    state_model = _consent_state_model()
    if state_model is None:
        return []
    purposes = state_model._meta.get_field("purpose").related_model.objects.all()
    return [(str(p.pk), str(p)) for p in purposes]


def customers_with_consent(customers: QuerySet, purpose: str) -> QuerySet:
    """Customers whose current state for the purpose is granted (one join on the unique
    (customer, purpose) row, so no duplicates)."""
    return customers.filter(consent_states__purpose_id=purpose, consent_states__state="granted")


def staff_choices() -> QuerySet:
    """Users who can own customers: active sales staff and admins."""
    users = get_user_model().objects.filter(is_active=True)
    return (
        users.filter(Q(groups__name=Role.SALES) | Q(is_superuser=True))
        .distinct()
        .order_by("username")
    )


def owner_choices(*, actor, current_owner_id: int | None) -> QuerySet:
    """The owners the user may pick: anyone who can own customers for an administrator; for
    everybody else themselves, or the owner the record has now. The service applies the same
    rule (customers.services), so a forged choice is refused there too."""
    if actor is None or actor.is_superuser:
        return staff_choices()
    return get_user_model().objects.filter(pk__in={actor.pk, current_owner_id}).order_by("username")


class CustomerFilterForm(forms.Form):
    """The customer list's search, filters and sort, read from the query string."""

    q = forms.CharField(required=False, max_length=100, label="Search")
    country = forms.CharField(required=False, max_length=60)
    owner = forms.ModelChoiceField(queryset=get_user_model().objects.none(), required=False)
    tag = forms.ModelChoiceField(queryset=Tag.objects.all(), required=False, to_field_name="name")
    consent = forms.ChoiceField(label="Has consent for", required=False)
    sort = forms.ChoiceField(
        choices=[(k, v[0]) for k, v in CUSTOMER_SORTS.items()], required=False, initial="name"
    )
    size = forms.TypedChoiceField(
        choices=[(n, n) for n in PAGE_SIZES],
        coerce=int,
        required=False,
        empty_value=50,
        initial=50,
        label="Per page",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The selectors show what the list uses when the query string leaves them out.
        if self.is_bound and not (self.data.get("size") and self.data.get("sort")):
            self.data = self.data.copy()
            self.data["size"] = self.data.get("size") or "50"
            self.data["sort"] = self.data.get("sort") or "name"
        # Who can own customers, and anyone who still owns some (a former salesperson).
        owns = Customer.objects.filter(owner_id=OuterRef("pk"))
        self.fields["owner"].queryset = (
            get_user_model()
            .objects.filter(is_active=True)
            .filter(Q(groups__name=Role.SALES) | Q(is_superuser=True) | Q(Exists(owns)))
            .distinct()
            .order_by("username")
        )
        self.fields["owner"].label_from_instance = lambda u: u.get_full_name() or u.get_username()
        self.fields["tag"].empty_label = "Any tag"
        self.fields["owner"].empty_label = "Any owner"
        self.fields["consent"].choices = [("", "Any consent"), *consent_purpose_choices()]
        # Filters higher apps register (segment, ...): one select each. A registered "consent"
        # filter replaces the built-in one.
        self.extra_filters = customer_list_filters()
        if any(extra.key == "consent" for extra in self.extra_filters):
            del self.fields["consent"]
        for extra in self.extra_filters:
            self.fields[extra.key] = forms.ChoiceField(
                label=extra.label,
                required=False,
                choices=[("", f"Any {extra.label.lower()}"), *extra.choices()],
            )

    @property
    def extra_fields(self) -> list:
        return [self[extra.key] for extra in self.extra_filters]

    def clean_country(self) -> str:
        return clean_country(self.cleaned_data["country"])

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or "name"


class AccountFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=100, label="Search")
    country = forms.CharField(required=False, max_length=60)
    kind = forms.ChoiceField(choices=[("", "Any kind"), *Account.Kind.choices], required=False)
    sort = forms.ChoiceField(
        choices=[("name", "Name"), ("-name", "Name, Z to A")], required=False, initial="name"
    )

    def clean_sort(self) -> str:
        return self.cleaned_data["sort"] or "name"

    def clean_country(self) -> str:
        return clean_country(self.cleaned_data["country"])


class TagField(forms.CharField):
    """Tags typed as a comma-separated list; unknown tags are created."""

    def prepare_value(self, value):
        if isinstance(value, list | tuple | QuerySet):
            return ", ".join(t.name if isinstance(t, Tag) else str(t) for t in value)
        return value

    def clean(self, value) -> list[str]:
        value = super().clean(value)
        names = []
        for raw in (value or "").split(","):
            name = raw.strip()
            if not name:
                continue
            if len(name) > 64:
                raise ValidationError(f"Tag “{name[:20]}…” is longer than 64 characters.")
            if name.lower() not in {n.lower() for n in names}:
                names.append(name)
        return names


class _SharedClean:
    """A form field that reads its value with the field's one cleaner (customers.fields), as
    the API and the import do."""

    spec: CustomerField

    def clean(self, value):
        return self.spec.clean(value)


class CustomerValueField(_SharedClean, forms.CharField):
    def __init__(self, *, spec: CustomerField, **kwargs):
        self.spec = spec
        super().__init__(label=spec.label, required=False, strip=False, **kwargs)


class CustomerDateField(_SharedClean, forms.CharField):
    def __init__(self, *, spec: CustomerField, **kwargs):
        self.spec = spec
        super().__init__(
            label=spec.label,
            required=False,
            strip=False,
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            **kwargs,
        )


class CustomerChoiceField(_SharedClean, forms.ChoiceField):
    """A picker of the field's choices (a country's code or name is understood as well)."""

    def __init__(self, *, spec: CustomerField, **kwargs):
        self.spec = spec
        super().__init__(
            label=spec.label, required=False, choices=[("", "—"), *spec.choices], **kwargs
        )


def customer_form_field(spec: CustomerField) -> forms.Field:
    if spec.kind == "choice":
        return CustomerChoiceField(spec=spec)
    if spec.kind == "date":
        return CustomerDateField(spec=spec)
    return CustomerValueField(spec=spec)


class CustomerForm(forms.ModelForm):
    tags = TagField(required=False, help_text="Separate tags with commas.")

    class Meta:
        model = Customer
        # The profile fields as customers.fields lists them, the account and owner after the
        # contact details.
        fields = [
            *CUSTOMER_VALUE_FIELDS[1:5],
            CUSTOMER_VALUE_FIELDS[0],
            "account",
            "owner",
            *CUSTOMER_VALUE_FIELDS[5:],
        ]

    def __init__(self, *args, actor=None, accounts: QuerySet | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        for name, spec in customer_fields().items():
            field = customer_form_field(spec)
            field.help_text = self.fields[name].help_text
            self.fields[name] = field
        if accounts is not None:
            self.fields["account"].queryset = accounts.order_by("name", "id")
            # A select with tens of thousands of options is unusable and slow to render:
            # beyond a few hundred accounts the account is entered by its number.
            if accounts[: SELECT_LIMIT + 1].count() > SELECT_LIMIT:
                self.fields["account"].widget = forms.NumberInput(attrs={"min": 1})
                self.fields["account"].help_text = "The account's number, shown on its page."
                self.fields["account"].error_messages["invalid_choice"] = (
                    "No account with that number that you may see."
                )
        self.fields["owner"].queryset = owner_choices(
            actor=actor, current_owner_id=self.instance.owner_id if self.instance.pk else None
        )
        self.fields["owner"].error_messages["invalid_choice"] = OWNER_REFUSED
        if self.instance.pk:
            self.initial["tags"] = list(self.instance.tags.all())

    def clean(self):
        cleaned = super().clean()
        if not (cleaned.get("first_name") or cleaned.get("last_name") or cleaned.get("email")):
            self.add_error("last_name", "Give at least a name or an email address.")
        return cleaned

    def _post_clean(self):
        # The service validates the model again inside its transaction; here only the form's
        # own checks run, so errors stay next to their fields.
        pass

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class AccountForm(forms.ModelForm):
    tags = TagField(required=False, help_text="Separate tags with commas.")
    website = forms.URLField(required=False, max_length=200, assume_scheme="https")

    class Meta:
        model = Account
        fields = [
            "name",
            "kind",
            "industry",
            "size",
            "website",
            "address",
            "city",
            "postal_code",
            "country",
            "owner",
        ]

    def __init__(self, *args, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = owner_choices(
            actor=actor, current_owner_id=self.instance.owner_id if self.instance.pk else None
        )
        self.fields["owner"].error_messages["invalid_choice"] = OWNER_REFUSED
        self.fields["country"] = CustomerChoiceField(spec=customer_fields()["country"])
        if self.instance.pk:
            self.initial["tags"] = list(self.instance.tags.all())

    def _post_clean(self):
        pass

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.Meta.fields}


class NoteForm(forms.Form):
    body = forms.CharField(
        label="Note",
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Write a note…"}),
        max_length=5000,
    )
    kind = forms.ChoiceField(choices=Note.Kind.choices, initial=Note.Kind.NOTE)
    due_date = forms.DateField(
        required=False, label="Follow up on", widget=forms.DateInput(attrs={"type": "date"})
    )


class MergeForm(forms.Form):
    duplicate = forms.ModelChoiceField(
        queryset=Customer.objects.none(),
        to_field_name="pk",
        label="Duplicate customer",
        help_text="Type part of the duplicate's name or email and choose it",
        error_messages={"invalid_choice": "Choose a customer you may see from the list."},
    )

    def __init__(self, *args, target: Customer, visible: QuerySet, **kwargs):
        super().__init__(*args, **kwargs)
        self.target = target
        candidates = visible.exclude(pk=target.pk)
        self.fields["duplicate"].queryset = candidates

        def name(pk: int) -> str:
            customer = candidates.filter(pk=pk).first()
            return str(customer) if customer else ""

        self.fields["duplicate"].widget = RecordPicker(
            url=f"{reverse('customers:customer_pick')}?{urlencode({'exclude': target.pk})}",
            label_for=name,
        )
