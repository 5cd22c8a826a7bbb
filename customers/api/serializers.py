"""Serializers of the customers API: one per purpose (reading a list, reading one, creating,
changing). Field lists are explicit; nothing is `__all__`."""

from collections.abc import Callable

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from customers.models import Account, Customer, Event, Note, Product, Purchase
from customers.selectors import (
    RESTRICTED_CUSTOMER_FIELDS,
    accounts_visible_to,
    customer_fields_hidden_from,
    customers_visible_to,
)
from customers.services import CUSTOMER_EDITABLE_FIELDS

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


def _validate_country(value: str) -> str:
    value = value.strip().upper()
    if value and not (len(value) == 2 and value.isalpha() and value.isascii()):
        raise serializers.ValidationError("Use a two-letter ISO 3166-1 country code, such as DE.")
    return value


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

    def validate_country(self, value: str) -> str:
        return _validate_country(value)


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

    def validate_country(self, value: str) -> str:
        return _validate_country(value)

    def validate_email(self, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None:
            clash = Customer.objects.filter(email__iexact=value)
            if self.instance is not None:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError("A customer with this email already exists.")
        return value

    def validate_external_id(self, value: str | None) -> str | None:
        return (value or "").strip() or None

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
