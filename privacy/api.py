"""REST API of privacy: the consent ledger (append and read only) and the purposes.

The ledger has no update or delete endpoint: a change of mind is a new record. The current state
per purpose is added to the customer detail of the customers API through its extension hook.
"""

import django_filters as filters
from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers
from rest_framework.routers import DefaultRouter

from crm.api.filters import IdFilter, IsoDateTimeFromToRangeFilter
from crm.api.viewsets import CreateMixin, ServiceModelViewSet
from crm.roles import Role, user_sees_all_customers
from customers.api import customer_detail_field_register
from customers.api.serializers import VisibleCustomerField
from customers.selectors import customers_visible_to
from privacy.models import ConsentRecord, ConsentSource, ConsentStatus, ConsentWording, Purpose
from privacy.services import consent_record

# --- Serializers ------------------------------------------------------------------------------


class PurposeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Purpose
        fields = ["code", "name", "description"]
        read_only_fields = fields


class ConsentRecordSerializer(serializers.ModelSerializer):
    purpose = serializers.CharField(source="purpose_id", read_only=True)

    class Meta:
        model = ConsentRecord
        fields = [
            "id",
            "customer",
            "purpose",
            "state",
            "recorded_at",
            "source",
            "wording",
            "actor",
            "ip_address",
            "evidence",
        ]
        read_only_fields = fields


class ConsentRecordCreateSerializer(serializers.Serializer):
    customer = VisibleCustomerField()
    purpose = serializers.SlugRelatedField(slug_field="code", queryset=Purpose.objects.all())
    state = serializers.ChoiceField(choices=ConsentStatus.choices)
    source = serializers.ChoiceField(choices=ConsentSource.choices, default=ConsentSource.API)
    wording = serializers.PrimaryKeyRelatedField(
        queryset=ConsentWording.objects.all(), required=False, allow_null=True
    )
    ip_address = serializers.IPAddressField(
        required=False, allow_null=True, help_text="The customer's address, when known."
    )
    evidence = serializers.CharField(max_length=300, required=False, allow_blank=True)
    recorded_at = serializers.DateTimeField(
        required=False, help_text="When the customer gave or withdrew consent; now when omitted."
    )

    def validate_recorded_at(self, value):
        if value > timezone.now():
            raise serializers.ValidationError("Consent cannot be recorded in the future.")
        return value

    def validate(self, attrs):
        wording = attrs.get("wording")
        if wording is not None and wording.purpose_id != attrs["purpose"].code:
            raise serializers.ValidationError(
                {"wording": ["This wording belongs to another purpose."]}
            )
        return attrs


@extend_schema_field(
    {
        "type": "object",
        "description": "Current consent per purpose code: granted, withdrawn or unknown.",
        "additionalProperties": {
            "type": "object",
            "properties": {
                "state": {"type": "string", "enum": ["granted", "withdrawn", "unknown"]},
                "changed_at": {"type": "string", "format": "date-time", "nullable": True},
            },
        },
    }
)
class ConsentStateField(serializers.Field):
    """The current consent state of a customer, per purpose, for the customer detail."""

    def __init__(self, **kwargs):
        super().__init__(source="*", read_only=True, **kwargs)

    def to_representation(self, customer):
        request = self.context.get("request")
        if request is not None and not request.user.has_perm("privacy.view_consentstate"):
            return None
        current = {
            purpose_id: (state, changed_at)
            for purpose_id, state, changed_at in customer.consent_states.values_list(
                "purpose_id", "state", "changed_at"
            )
        }
        result = {}
        for code in Purpose.objects.values_list("code", flat=True):
            state, changed_at = current.get(code, ("unknown", None))
            result[code] = {
                "state": state,
                "changed_at": serializers.DateTimeField().to_representation(changed_at)
                if changed_at
                else None,
            }
        return result


class ConsentRecordFilter(filters.FilterSet):
    customer = IdFilter(field_name="customer_id")
    purpose = filters.CharFilter(field_name="purpose_id")
    recorded_at = IsoDateTimeFromToRangeFilter()

    class Meta:
        model = ConsentRecord
        fields = ["state", "source"]


# --- Viewsets ---------------------------------------------------------------------------------


@extend_schema_view(
    create=extend_schema(
        request=ConsentRecordCreateSerializer, responses={201: ConsentRecordSerializer}
    )
)
class ConsentRecordViewSet(CreateMixin, mixins.ListModelMixin, ServiceModelViewSet):
    """The consent ledger: list it, append to it. Records are never changed or removed."""

    serializer_class = ConsentRecordSerializer
    create_serializer_class = ConsentRecordCreateSerializer
    write_roles = (Role.PRIVACY,)
    filterset_class = ConsentRecordFilter
    ordering_fields = ["id", "recorded_at"]
    ordering = "-id"

    def get_queryset(self):
        records = ConsentRecord.objects.all()
        user = self.request.user
        if user_sees_all_customers(user):
            return records
        return records.filter(customer__in=customers_visible_to(user))

    def service_create(self, data):
        return consent_record(
            customer=data["customer"],
            purpose=data["purpose"].code,
            state=data["state"],
            source=data["source"],
            actor=self.request.user,
            wording=data.get("wording"),
            ip_address=data.get("ip_address"),
            evidence=data.get("evidence", ""),
            recorded_at=data.get("recorded_at"),
        )


class PurposeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ServiceModelViewSet):
    """The purposes a customer can consent to (read only here; admins manage them)."""

    serializer_class = PurposeSerializer
    queryset = Purpose.objects.all()
    ordering_fields = ["code"]
    ordering = "code"
    pagination_class = None


def register(router: DefaultRouter) -> None:
    """Add this app's viewsets to the API router and the consent state to the customer detail."""
    router.register("consents", ConsentRecordViewSet, basename="consent")
    router.register("purposes", PurposeViewSet, basename="purpose")
    customer_detail_field_register("consents", ConsentStateField)
    # Data-subject requests, exports and suppression checks live in their own module.
    from privacy import api_requests, api_signup

    api_requests.register(router)
    api_signup.register(router)
