"""Serializers of the customers API: one per purpose (reading a list, reading one, creating,
changing). Field lists are explicit; nothing is `__all__`."""

from collections.abc import Callable

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.fields import (
    CUSTOMER_EDITABLE_FIELDS,
    CustomerField,
    customer_fields,
)
from customers.models import Account, Customer, Event, Note, Product, Purchase
from customers.selectors import (
    RESTRICTED_CUSTOMER_FIELDS,
    accounts_visible_to,
    customer_fields_hidden_from,
    customers_visible_to,
)

# Sections higher apps add to the customer detail (privacy adds "consents"), by field name.
# Registered from their api modules; the customers app never imports them.
_detail_fields: dict[str, Callable[[], serializers.Field]] = {}


def customer_detail_field_register(name: str, field: Callable[[], serializers.Field]) -> None:
    """Add a read-only field, built by `field()`, to the customer detail of the API; it is
    documented as nullable, the value for a user not allowed to see that section."""
    _detail_fields[name] = field


def _request_user(serializer: serializers.Serializer):
    request = serializer.context.get("request")
    return request.user if request is not None else None


class TagNamesField(serializers.ListField):
    """Tags as a list of names; unknown names are created."""

    child = serializers.CharField(max_length=64, allow_blank=False)

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 50)
        super().__init__(**kwargs)


class OwnerField(serializers.PrimaryKeyRelatedField):
    """The user who owns a record. Only an administrator assigns records to someone else: the
    service refuses it (customers.services), for the API and the pages alike."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)


def _django_errors(clean, value):
    """Run a cleaner of customers.fields, its error as the API's."""
    try:
        return clean(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from None


class _SharedCleanMixin:
    """A field read with the profile field's one cleaner (customers.fields), as the form and the
    import read it; null is the field's blank."""

    spec: CustomerField

    def validate_empty_values(self, data):
        if data is None:
            return True, self.spec.blank
        return super().validate_empty_values(data)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            raise serializers.ValidationError("Enter text.")
        return _django_errors(self.spec.clean, data)

    def run_validation(self, data=serializers.empty):
        # Only the shared cleaner decides (no extra length or choice checks of DRF's own).
        is_empty, value = self.validate_empty_values(data)
        if is_empty:
            return value
        return self.to_internal_value(data)


class CustomerTextField(_SharedCleanMixin, serializers.CharField):
    def __init__(self, *, spec: CustomerField, **kwargs):
        self.spec = spec
        super().__init__(required=False, allow_blank=True, allow_null=True, **kwargs)


class CustomerDateField(_SharedCleanMixin, serializers.DateField):
    def __init__(self, *, spec: CustomerField, **kwargs):
        self.spec = spec
        super().__init__(required=False, allow_null=True, **kwargs)


class CustomerChoiceField(_SharedCleanMixin, serializers.ChoiceField):
    def __init__(self, *, spec: CustomerField, **kwargs):
        self.spec = spec
        super().__init__(
            choices=spec.choices, required=False, allow_blank=True, allow_null=True, **kwargs
        )


@extend_schema_field(
    {
        "type": "string",
        "description": "ISO 3166-1 alpha-2 code (DE); an alpha-3 code or the country's English "
        "name is accepted on input and stored as the alpha-2 code.",
    }
)
class CountryField(_SharedCleanMixin, serializers.CharField):
    def __init__(self, *, spec: CustomerField, **kwargs):
        self.spec = spec
        super().__init__(required=False, allow_blank=True, allow_null=True, **kwargs)


def customer_serializer_field(spec: CustomerField) -> serializers.Field:
    if spec.name == "country":
        return CountryField(spec=spec)
    if spec.kind == "choice":
        return CustomerChoiceField(spec=spec)
    if spec.kind == "date":
        return CustomerDateField(spec=spec)
    return CustomerTextField(spec=spec)


# --- Accounts ---------------------------------------------------------------------------------


class AccountSerializer(serializers.ModelSerializer):
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Account
        fields = [
            "id",
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
            "tags",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class AccountWriteSerializer(serializers.ModelSerializer):
    owner = OwnerField()
    tags = TagNamesField()

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
            "tags",
        ]

    def get_fields(self):
        fields = super().get_fields()
        fields["country"] = CountryField(spec=customer_fields()["country"])
        return fields


# --- Customers --------------------------------------------------------------------------------

FIGURES = ["lifetime_value", "purchase_count", "first_purchase_at", "last_purchase_at",
           "average_order_value"]  # fmt: skip


class CustomerListSerializer(serializers.ModelSerializer):
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Customer
        fields = [
            "id",
            "account",
            "external_id",
            "first_name",
            "last_name",
            "email",
            "country",
            "region",
            "city",
            "language",
            "income_band",
            "owner",
            "tags",
            *FIGURES,
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class CustomerDetailSerializer(serializers.ModelSerializer):
    """Everything about one customer, its derived figures, and what higher apps add (consent)."""

    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Customer
        fields = [
            "id",
            *CUSTOMER_EDITABLE_FIELDS,
            "tags",
            *FIGURES,
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_fields(self):
        fields = super().get_fields()
        for name in RESTRICTED_CUSTOMER_FIELDS:
            fields[name].allow_null = True  # null for a marketer (customer_fields_hidden_from)
        for name, field in _detail_fields.items():
            fields[name] = field()
            # Null for a user lacking the section's permission (consent states, say).
            fields[name].allow_null = True
        return fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is not None:
            for name in customer_fields_hidden_from(request.user):
                data[name] = None
        return data


class CustomerWriteSerializer(serializers.ModelSerializer):
    owner = OwnerField()
    tags = TagNamesField()
    account = serializers.PrimaryKeyRelatedField(
        queryset=Account.objects.none(), required=False, allow_null=True
    )

    class Meta:
        model = Customer
        fields = [*CUSTOMER_EDITABLE_FIELDS, "tags"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = _request_user(self)
        if user is not None:
            # An account the user may not see does not exist for them.
            self.fields["account"].queryset = accounts_visible_to(user)

    def get_fields(self):
        fields = super().get_fields()
        for name, spec in customer_fields().items():
            fields[name] = customer_serializer_field(spec)
        return fields

    def validate_attributes(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object of custom fields.")
        return value


# --- Products ---------------------------------------------------------------------------------


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "sku", "name", "category", "price"]
        read_only_fields = fields


class ProductWriteSerializer(serializers.ModelSerializer):
    price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)

    class Meta:
        model = Product
        fields = ["sku", "name", "category", "price"]


# --- Purchases --------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)
class VisibleCustomerField(serializers.PrimaryKeyRelatedField):
    """A customer the requesting user may see; any other id is 'does not exist'."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return Customer.objects.none()
        return customers_visible_to(request.user)


class PurchaseSerializer(serializers.ModelSerializer):
    class Meta:
        model = Purchase
        fields = [
            "id",
            "customer",
            "external_id",
            "purchased_at",
            "amount",
            "currency",
            "quantity",
            "channel",
            "product",
            "category",
            "promotion_code",
            "created_at",
        ]
        read_only_fields = fields


class PurchaseCreateSerializer(serializers.ModelSerializer):
    customer = VisibleCustomerField()
    # Refunds are not purchases: a negative amount would make lifetime value meaningless.
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0)
    quantity = serializers.IntegerField(min_value=1, max_value=2_147_483_647, required=False)
    product = serializers.PrimaryKeyRelatedField(
        queryset=Product.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Purchase
        fields = [
            "customer",
            "external_id",
            "purchased_at",
            "amount",
            "currency",
            "quantity",
            "channel",
            "product",
            "category",
            "promotion_code",
        ]

    def validate_currency(self, value: str) -> str:
        value = value.strip().upper()
        if not (len(value) == 3 and value.isalpha() and value.isascii()):
            raise serializers.ValidationError("Use a three-letter ISO 4217 code, such as EUR.")
        return value

    def validate_external_id(self, value: str | None) -> str | None:
        return (value or "").strip() or None


# --- Events -----------------------------------------------------------------------------------


class EventSerializer(serializers.ModelSerializer):
    class Meta:
        model = Event
        fields = ["id", "customer", "type", "occurred_at", "properties"]
        read_only_fields = fields


class EventCreateSerializer(serializers.ModelSerializer):
    customer = VisibleCustomerField()

    class Meta:
        model = Event
        fields = ["customer", "type", "occurred_at", "properties"]

    def validate_properties(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("Expected an object.")
        return value


# --- Notes ------------------------------------------------------------------------------------


class NoteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Note
        fields = [
            "id",
            "customer",
            "account",
            "author",
            "kind",
            "body",
            "due_date",
            "done",
            "done_at",
            "created_at",
        ]
        read_only_fields = fields


@extend_schema_field(OpenApiTypes.INT)
class VisibleAccountField(serializers.PrimaryKeyRelatedField):
    """An account the requesting user may see; any other id is 'does not exist'."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return Account.objects.none()
        return accounts_visible_to(request.user)


class NoteCreateSerializer(serializers.ModelSerializer):
    customer = VisibleCustomerField(required=False, allow_null=True)
    account = VisibleAccountField(required=False, allow_null=True)

    class Meta:
        model = Note
        fields = ["customer", "account", "kind", "body", "due_date"]

    def validate(self, attrs):
        if attrs.get("customer") is None and attrs.get("account") is None:
            raise serializers.ValidationError(
                {"customer": ["A note belongs to a customer or an account: give one of them."]}
            )
        return attrs


class NoteUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Note
        fields = ["kind", "body", "due_date", "done"]
