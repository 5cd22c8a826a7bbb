"""REST API for data-subject requests, data exports and suppression checks (privacy officers).

Registered on the router by privacy.api.register(). Writes go through the privacy services;
a refused change is a 400 that names the field.
"""

from django.db import transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.api.jobs import JobStateFields
from crm.api.permissions import RolePermissions
from crm.confirm import typed_matches
from crm.roles import Role
from customers.api.serializers import VisibleCustomerField
from customers.selectors import customers_visible_to
from privacy.data_requests import (
    data_request_create,
    data_request_extend,
    data_request_match,
    data_request_transition,
    erasure_confirmation_values,
)
from privacy.exports import data_export_request, data_export_url
from privacy.models import (
    DataExport,
    DataSubjectRequest,
    Law,
    RequestChannel,
    RequestStatus,
    RequestType,
)
from privacy.selectors import dsr_queue
from privacy.suppression import suppression_contains


class DataRequestSerializer(serializers.ModelSerializer):
    is_overdue = serializers.BooleanField(read_only=True, default=False)

    class Meta:
        model = DataSubjectRequest
        fields = [
            "id",
            "customer",
            "email",
            "type",
            "law",
            "channel",
            "received_on",
            "deadline",
            "extended",
            "extension_reason",
            "status",
            "rejection_reason",
            "details",
            "handled_by",
            "handled_at",
            "created_at",
            "is_overdue",
        ]
        read_only_fields = fields


class DataRequestCreateSerializer(serializers.Serializer):
    customer = VisibleCustomerField(required=False, allow_null=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    type = serializers.ChoiceField(choices=RequestType.choices)
    law = serializers.ChoiceField(choices=Law.choices, default=Law.GDPR)
    received_on = serializers.DateField(required=False)
    details = serializers.CharField(required=False, allow_blank=True, max_length=5000)

    def validate(self, attrs):
        if not attrs.get("customer") and not attrs.get("email"):
            raise serializers.ValidationError(
                {"customer": ["Give the customer or the requester's email."]}
            )
        return attrs


class TransitionSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=RequestStatus.choices)
    reason = serializers.CharField(required=False, allow_blank=True, max_length=2000, default="")
    confirm = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=300,
        default="",
        help_text="Completing an erasure request: the customer's name or email, as a check "
        "that the right person is erased.",
    )


class ExtendSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class MatchSerializer(serializers.Serializer):
    customer = VisibleCustomerField()


class DataExportSerializer(JobStateFields, serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = DataExport
        fields = [
            "id",
            "customer",
            "request",
            "status",
            "row_count",
            "message",
            "created_at",
            "started_at",
            "finished_at",
            "download_url",
            *JobStateFields.STATE_FIELDS,
        ]
        read_only_fields = fields

    def get_download_url(self, export: DataExport) -> str | None:
        if export.status != DataExport.Status.DONE:
            return None
        return self.context["request"].build_absolute_uri(data_export_url(export=export))


class DataExportCreateSerializer(serializers.Serializer):
    customer = VisibleCustomerField(required=False)
    request = serializers.PrimaryKeyRelatedField(
        queryset=DataSubjectRequest.objects.all(), required=False
    )

    def validate(self, attrs):
        dsr = attrs.get("request")
        if dsr is not None and attrs.get("customer") is None:
            attrs["customer"] = dsr.customer
        if attrs.get("customer") is None:
            raise serializers.ValidationError(
                {"customer": ["Give a customer or a request matched to one."]}
            )
        if dsr is not None and dsr.customer_id != attrs["customer"].pk:
            raise serializers.ValidationError(
                {"request": ["This request is about another customer."]}
            )
        return attrs


class SuppressionCheckSerializer(serializers.Serializer):
    email = serializers.EmailField(required=False, allow_blank=True)
    phone = serializers.CharField(required=False, allow_blank=True, max_length=40)

    def validate(self, attrs):
        if not attrs.get("email") and not attrs.get("phone"):
            raise serializers.ValidationError({"email": ["Give an email or a phone number."]})
        return attrs


class DataRequestViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Data-subject requests, soonest deadline first. Completing an erasure request erases."""

    # Privacy officers and superusers only.
    permission_classes = [RolePermissions]
    read_roles = write_roles = (Role.PRIVACY,)
    serializer_class = DataRequestSerializer
    filterset_fields = ["status", "type", "law", "customer"]
    ordering_fields = ["deadline", "received_on", "id"]
    ordering = ["deadline", "id"]
    search_fields = []

    def get_queryset(self):
        return dsr_queue(include_closed=True)

    def get_serializer_class(self):
        return DataRequestCreateSerializer if self.action == "create" else DataRequestSerializer

    def _rendered(self, dsr: DataSubjectRequest) -> dict:
        fresh = self.get_queryset().get(pk=dsr.pk)
        return DataRequestSerializer(fresh, context=self.get_serializer_context()).data

    @extend_schema(request=DataRequestCreateSerializer, responses=DataRequestSerializer)
    def create(self, request, *args, **kwargs):
        serializer = DataRequestCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        dsr = data_request_create(
            type=data["type"],
            law=data["law"],
            customer=data.get("customer"),
            email=data.get("email") or "",
            received_on=data.get("received_on"),
            details=data.get("details", ""),
            channel=RequestChannel.API,
            actor=request.user,
        )
        return Response(self._rendered(dsr), status=status.HTTP_201_CREATED)

    @extend_schema(request=TransitionSerializer, responses=DataRequestSerializer)
    @action(detail=True, methods=["post"])
    def transition(self, request, pk=None):
        serializer = TransitionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dsr = self.get_object()
        if (
            serializer.validated_data["status"] == RequestStatus.COMPLETED
            and dsr.type == RequestType.ERASURE
            and dsr.customer is not None
            and not typed_matches(
                serializer.validated_data["confirm"], erasure_confirmation_values(dsr.customer)
            )
        ):
            raise serializers.ValidationError(
                {"confirm": ["Give the customer's name or email to confirm the erasure."]}
            )
        dsr = data_request_transition(
            request=dsr,
            status=serializer.validated_data["status"],
            reason=serializer.validated_data["reason"],
            actor=request.user,
        )
        return Response(self._rendered(dsr))

    @extend_schema(request=ExtendSerializer, responses=DataRequestSerializer)
    @action(detail=True, methods=["post"])
    def extend(self, request, pk=None):
        serializer = ExtendSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        dsr = data_request_extend(
            request=self.get_object(),
            reason=serializer.validated_data["reason"],
            actor=request.user,
        )
        return Response(self._rendered(dsr))

    @extend_schema(request=MatchSerializer, responses=DataRequestSerializer)
    @action(detail=True, methods=["post"])
    def match(self, request, pk=None):
        serializer = MatchSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        dsr = data_request_match(
            request=self.get_object(),
            customer=serializer.validated_data["customer"],
            actor=request.user,
        )
        return Response(self._rendered(dsr))


class DataExportViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Data exports: queue one (built by a worker), then fetch its expiring download link."""

    # Privacy officers and superusers only.
    permission_classes = [RolePermissions]
    read_roles = write_roles = (Role.PRIVACY,)
    serializer_class = DataExportSerializer
    filterset_fields = ["customer", "request", "status"]
    ordering_fields = ["created_at", "id"]
    ordering = ["-created_at", "-id"]
    search_fields = []

    def get_queryset(self):
        return DataExport.objects.filter(customer__in=customers_visible_to(self.request.user))

    @extend_schema(request=DataExportCreateSerializer, responses=DataExportSerializer)
    def create(self, request, *args, **kwargs):
        serializer = DataExportCreateSerializer(
            data=request.data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        with transaction.atomic():
            export = data_export_request(
                customer=serializer.validated_data["customer"],
                actor=request.user,
                request=serializer.validated_data.get("request"),
            )
        export.refresh_from_db()
        return Response(
            DataExportSerializer(export, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )


class SuppressionCheckViewSet(viewsets.ViewSet):
    """Whether an email or phone is suppressed (answers only yes or no)."""

    # Privacy officers and superusers only.
    permission_classes = [RolePermissions]
    read_roles = write_roles = (Role.PRIVACY,)

    @extend_schema(
        request=SuppressionCheckSerializer,
        responses={
            200: inline_serializer(
                "SuppressionCheckResult", {"suppressed": serializers.BooleanField()}
            )
        },
    )
    def create(self, request):
        serializer = SuppressionCheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return Response(
            {"suppressed": suppression_contains(email=data.get("email"), phone=data.get("phone"))}
        )


def register(router) -> None:
    router.register("data-requests", DataRequestViewSet, basename="data-request")
    router.register("data-exports", DataExportViewSet, basename="data-export")
    router.register("suppression-check", SuppressionCheckViewSet, basename="suppression-check")
