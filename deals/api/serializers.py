"""Serializers of the deals API, one per purpose; nothing is `__all__`."""

from django.contrib.auth import get_user_model
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from crm.api.jobs import JobStateFields
from customers.api.serializers import VisibleAccountField, VisibleCustomerField
from customers.models import Product
from deals.models import (
    Activity,
    Deal,
    DealLine,
    ForecastTarget,
    Pipeline,
    Stage,
    StageChange,
    WinModel,
)
from deals.selectors import deals_visible_to

CURRENCY_HELP = "A three-letter ISO 4217 code, such as EUR."


class StageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Stage
        fields = ["id", "pipeline", "name", "position", "probability", "outcome"]
        read_only_fields = fields


class StageWriteSerializer(serializers.ModelSerializer):
    probability = serializers.IntegerField(min_value=0, max_value=100, required=False)
    position = serializers.IntegerField(min_value=0, max_value=10_000, required=False)

    class Meta:
        model = Stage
        fields = ["pipeline", "name", "position", "probability", "outcome"]
        # The unique checks are the service's (it can reorder); the database has the last word.
        validators = []


class StageUpdateSerializer(StageWriteSerializer):
    class Meta(StageWriteSerializer.Meta):
        fields = ["name", "position", "probability", "outcome"]


class PipelineSerializer(serializers.ModelSerializer):
    stages = StageSerializer(many=True, read_only=True)

    class Meta:
        model = Pipeline
        fields = ["id", "name", "creates_purchases", "is_default", "stages", "created_at"]
        read_only_fields = fields


class StageInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    probability = serializers.IntegerField(min_value=0, max_value=100, required=False, default=10)
    outcome = serializers.ChoiceField(choices=Stage.Outcome.choices, default=Stage.Outcome.OPEN)


class PipelineWriteSerializer(serializers.ModelSerializer):
    stages = StageInputSerializer(many=True, required=False, max_length=50)

    class Meta:
        model = Pipeline
        fields = ["name", "creates_purchases", "is_default", "stages"]


class PipelineUpdateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pipeline
        fields = ["name", "creates_purchases", "is_default"]


class DealLineSerializer(serializers.ModelSerializer):
    class Meta:
        model = DealLine
        fields = ["id", "deal", "product", "quantity", "price"]
        read_only_fields = fields


class StageChangeSerializer(serializers.ModelSerializer):
    class Meta:
        model = StageChange
        fields = ["id", "from_stage", "to_stage", "changed_at", "changed_by"]
        read_only_fields = fields


class DealSerializer(serializers.ModelSerializer):
    effective_probability = serializers.IntegerField(read_only=True)
    weighted_amount = serializers.DecimalField(max_digits=16, decimal_places=2, read_only=True)
    lines = DealLineSerializer(many=True, read_only=True)

    class Meta:
        model = Deal
        fields = [
            "id",
            "name",
            "pipeline",
            "stage",
            "amount",
            "currency",
            "expected_close_date",
            "owner",
            "probability",
            "effective_probability",
            "win_probability",
            "weighted_amount",
            "source",
            "account",
            "customer",
            "next_step",
            "lost_reason",
            "stage_entered_at",
            "closed_at",
            "purchase",
            "lines",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class DealHistorySerializer(serializers.Serializer):
    stage_changes = StageChangeSerializer(many=True, read_only=True)


class SalesOwnerField(serializers.PrimaryKeyRelatedField):
    """A user; whether they may own the deal is the service's decision (deals.services)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("queryset", get_user_model().objects.filter(is_active=True))
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)


class DealWriteSerializer(serializers.ModelSerializer):
    account = VisibleAccountField(required=False, allow_null=True)
    customer = VisibleCustomerField(required=False, allow_null=True)
    owner = SalesOwnerField()
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False)
    probability = serializers.IntegerField(
        min_value=0, max_value=100, required=False, allow_null=True
    )
    currency = serializers.CharField(max_length=3, required=False, help_text=CURRENCY_HELP)
    stage = serializers.PrimaryKeyRelatedField(queryset=Stage.objects.all(), required=False)
    pipeline = serializers.PrimaryKeyRelatedField(queryset=Pipeline.objects.all(), required=False)

    class Meta:
        model = Deal
        fields = [
            "name",
            "pipeline",
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

    def validate(self, attrs):
        if self.instance is None and not attrs.get("account") and not attrs.get("customer"):
            raise serializers.ValidationError(
                {"account": ["A deal is with an account or a customer: give one."]}
            )
        return attrs


class DealUpdateSerializer(DealWriteSerializer):
    class Meta(DealWriteSerializer.Meta):
        fields = [f for f in DealWriteSerializer.Meta.fields if f != "pipeline"]


class DealMoveSerializer(serializers.Serializer):
    stage = serializers.PrimaryKeyRelatedField(queryset=Stage.objects.all())
    lost_reason = serializers.CharField(max_length=300, required=False, allow_blank=True)


@extend_schema_field(OpenApiTypes.INT)
class VisibleDealField(serializers.PrimaryKeyRelatedField):
    """A deal the requesting user may see; any other id is 'does not exist'."""

    def get_queryset(self):
        request = self.context.get("request")
        if request is None:
            return Deal.objects.none()
        return deals_visible_to(request.user)


class DealLineWriteSerializer(serializers.ModelSerializer):
    deal = VisibleDealField()
    product = serializers.PrimaryKeyRelatedField(queryset=Product.objects.all())
    quantity = serializers.IntegerField(min_value=1, max_value=1_000_000, required=False)
    price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False, allow_null=True
    )

    class Meta:
        model = DealLine
        fields = ["deal", "product", "quantity", "price"]


class DealLineUpdateSerializer(DealLineWriteSerializer):
    price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)

    class Meta(DealLineWriteSerializer.Meta):
        fields = ["product", "quantity", "price"]


class ActivitySerializer(serializers.ModelSerializer):
    class Meta:
        model = Activity
        fields = [
            "id",
            "kind",
            "subject",
            "body",
            "deal",
            "account",
            "customer",
            "author",
            "assignee",
            "due_date",
            "done",
            "done_at",
            "occurred_at",
            "created_at",
        ]
        read_only_fields = fields


class ActivityCreateSerializer(serializers.ModelSerializer):
    deal = VisibleDealField(required=False, allow_null=True)
    account = VisibleAccountField(required=False, allow_null=True)
    customer = VisibleCustomerField(required=False, allow_null=True)
    assignee = SalesOwnerField()

    class Meta:
        model = Activity
        fields = [
            "kind",
            "subject",
            "body",
            "deal",
            "account",
            "customer",
            "assignee",
            "due_date",
            "occurred_at",
        ]
        extra_kwargs = {"occurred_at": {"required": False}}

    def validate(self, attrs):
        if not (attrs.get("deal") or attrs.get("account") or attrs.get("customer")):
            raise serializers.ValidationError(
                {"deal": ["An activity is on a deal, an account or a customer: give one."]}
            )
        return attrs


class ActivityUpdateSerializer(serializers.ModelSerializer):
    assignee = SalesOwnerField()

    class Meta:
        model = Activity
        fields = ["kind", "subject", "body", "assignee", "due_date", "done"]


class ForecastTargetSerializer(serializers.ModelSerializer):
    class Meta:
        model = ForecastTarget
        fields = ["id", "owner", "month", "amount", "currency"]
        read_only_fields = fields


class ForecastTargetWriteSerializer(serializers.ModelSerializer):
    owner = SalesOwnerField(required=True, allow_null=False)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    currency = serializers.CharField(max_length=3, required=False, help_text=CURRENCY_HELP)

    class Meta:
        model = ForecastTarget
        fields = ["owner", "month", "amount", "currency"]
        validators = []  # set replaces the target of the same owner and month


class ForecastTargetUpdateSerializer(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)

    class Meta:
        model = ForecastTarget
        fields = ["amount"]


class DealBulkSerializer(serializers.Serializer):
    """One action over many deals: the ids, or every deal matching `filter` (the list's filter
    fields: q, owner, stage, close_month, min_amount)."""

    action = serializers.ChoiceField(choices=["assign_owner", "delete", "export"])
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    filter = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    owner = serializers.PrimaryKeyRelatedField(
        queryset=get_user_model().objects.all(), required=False, allow_null=True
    )

    def validate(self, attrs):
        if ("ids" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError({"ids": "Give either ids or filter, not both."})
        return attrs


class WinModelSerializer(JobStateFields, serializers.ModelSerializer):
    class Meta:
        model = WinModel
        fields = [
            "id",
            "status",
            *JobStateFields.STATE_FIELDS,
            "message",
            "active",
            "metrics",
            "scored",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class DealWinPredictionSerializer(serializers.Serializer):
    probability = serializers.IntegerField(help_text="The learned chance of winning, percent")
    stage_probability = serializers.IntegerField(help_text="The stage's default, percent")
    reasons = serializers.ListField(child=serializers.DictField(), help_text="Strongest first")
    model = serializers.IntegerField(help_text="The win model that said so")
