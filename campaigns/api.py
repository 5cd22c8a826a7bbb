"""REST API of campaigns: serializers and viewsets, registered on the project's router.

Marketing staff and superusers only (sales may check a promotion code); everyone else gets 403
before anything is read. A service's refusal is a 400 by field (crm.api.exceptions).
"""

import zoneinfo

from django.shortcuts import get_object_or_404
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from campaigns import services
from campaigns.audience import audience_estimate
from campaigns.delivery import send_progress
from campaigns.models import (
    CAMPAIGN_SETTINGS,
    FREQUENCY_CAP_COUNT_MAX,
    FREQUENCY_CAP_DAYS_MAX,
    Campaign,
    Promotion,
    Variant,
)
from campaigns.previews import preview_render
from campaigns.rendering import RenderFailed
from campaigns.results import campaign_report
from campaigns.selectors import (
    audience_estimate_for_settings,
    campaign_audience_customer,
    promotion_code_status,
)
from campaigns.tracking import provider_events_record
from crm.api.permissions import RolePermissions
from crm.roles import Role
from privacy.models import Purpose
from segments.models import Segment


class VariantSerializer(serializers.ModelSerializer):
    class Meta:
        model = Variant
        fields = ["id", "name", "subject", "html", "text", "share"]


class PromotionSerializer(serializers.ModelSerializer):
    class Meta:
        model = Promotion
        fields = ["discount", "value", "code_mode", "shared_code", "expires_at", "redemption_cap"]
        # Setting a promotion without a discount kind gives it the model's, as documented.
        extra_kwargs = {"discount": {"default": Promotion.Discount.PERCENT}}


class CampaignSerializer(serializers.ModelSerializer):
    target_segments = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Segment.objects.all(), required=False
    )
    exclusion_segments = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Segment.objects.all(), required=False
    )
    variants = VariantSerializer(many=True, read_only=True)
    promotion = PromotionSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Campaign
        fields = [
            "id",
            *CAMPAIGN_SETTINGS,
            "webhook_secret",
            "status",
            "created_at",
            "launched_at",
            "finished_at",
            "exclusions",
            "variants",
            "promotion",
        ]
        read_only_fields = [
            "status",
            "created_at",
            "launched_at",
            "finished_at",
            "exclusions",
            "webhook_secret",
        ]
        extra_kwargs = {
            "webhook_secret": {
                "help_text": "The key each webhook POST is signed with (HMAC-SHA256 of "
                '"<X-CRM-Timestamp>.<body>"), for the receiver to verify; empty for email.'
            }
        }

    def validate(self, attrs):
        """A send time without an offset is the wall-clock time of the campaign's time zone."""
        raw = getattr(self, "initial_data", {}).get("send_at")
        typed = parse_datetime(raw) if isinstance(raw, str) else None
        if typed is not None and typed.tzinfo is None and attrs.get("send_at") is not None:
            name = attrs.get("time_zone") or getattr(self.instance, "time_zone", None) or "UTC"
            try:
                attrs["send_at"] = typed.replace(tzinfo=zoneinfo.ZoneInfo(name))
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValidationError({"time_zone": [f"unknown time zone {name!r}"]}) from None
        return attrs


class AudienceEstimateSerializer(serializers.Serializer):
    """Audience settings not saved yet (a campaign being drafted elsewhere, say)."""

    target_segments = serializers.PrimaryKeyRelatedField(many=True, queryset=Segment.objects.all())
    exclusion_segments = serializers.PrimaryKeyRelatedField(
        many=True, queryset=Segment.objects.all(), required=False
    )
    channel = serializers.CharField(required=False, help_text="email or webhook")
    consent_purpose = serializers.PrimaryKeyRelatedField(
        queryset=Purpose.objects.all(), required=False, allow_null=True
    )
    # The bounds of the campaign's own fields (campaigns.models), so both refuse the same values.
    frequency_cap_count = serializers.IntegerField(
        min_value=0, max_value=FREQUENCY_CAP_COUNT_MAX, required=False
    )
    frequency_cap_days = serializers.IntegerField(
        min_value=1, max_value=FREQUENCY_CAP_DAYS_MAX, required=False
    )
    holdout_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, min_value=0, max_value=50, required=False
    )


@extend_schema_serializer(component_name="CampaignPreview")
class PreviewSerializer(serializers.Serializer):
    customer = serializers.IntegerField(help_text="A customer of the campaign's audience.")
    variant = serializers.IntegerField(
        required=False, help_text="The variant to render; the first one when omitted."
    )


TEST_SEND_RESULT = inline_serializer(
    "CampaignTestSendResult", {"sent_to": serializers.EmailField()}
)

PREVIEW_RESULT = inline_serializer(
    "CampaignPreviewResult",
    {
        "subject": serializers.CharField(),
        "html": serializers.CharField(),
        "text": serializers.CharField(),
    },
)


@extend_schema_field(
    {"type": "string", "enum": ["bounce", "complaint"]}, component_name="ProviderEventTypeEnum"
)
class ProviderEventTypeField(serializers.ChoiceField):
    """An enum of its own in the schema: the `type` of a data-subject request has other values."""


PROVIDER_EVENTS = inline_serializer(
    "ProviderEvents",
    {
        "events": serializers.ListField(
            child=inline_serializer(
                "ProviderEvent",
                {
                    "type": ProviderEventTypeField(choices=["bounce", "complaint"]),
                    "message_id": serializers.CharField(required=False),
                    "send_id": serializers.IntegerField(required=False),
                    "detail": serializers.CharField(required=False, max_length=300),
                },
            ),
            max_length=1000,
        )
    },
)

PROVIDER_EVENTS_RESULT = inline_serializer(
    "ProviderEventsResult",
    {
        "recorded": serializers.IntegerField(),
        "unknown": serializers.IntegerField(help_text="Events of no message sent from here."),
        "errors": serializers.ListField(
            child=serializers.CharField(), help_text="By position and field: events[0].type: ..."
        ),
    },
)

# The answers below are built from dicts by the selectors; these serializers only document them.


class CampaignReportLineSerializer(serializers.Serializer):
    """Figures of the treated customers: all of them (totals) or one variant's."""

    variant = serializers.CharField(help_text="The variant's name; `all` in the totals.")
    audience = serializers.IntegerField()
    sent = serializers.IntegerField(help_text="Accepted by the mail server or provider.")
    failed = serializers.IntegerField()
    unknown = serializers.IntegerField(
        help_text="Lost while being handed over (a worker stopped): may or may not have arrived."
    )
    skipped = serializers.IntegerField()
    delivered = serializers.IntegerField(help_text="Sent less bounced.")
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    unsubscribed = serializers.IntegerField()
    bounced = serializers.IntegerField()
    complained = serializers.IntegerField()
    converted = serializers.IntegerField(help_text="Customers who bought within the attribution.")
    orders = serializers.IntegerField()
    revenue = serializers.FloatField()
    revenue_per_recipient = serializers.FloatField()
    conversion_rate = serializers.FloatField(help_text="A share, 0 to 1.")


class CampaignUpliftSerializer(serializers.Serializer):
    """Treated against holdout, with 95% intervals; null with fewer than two in either group."""

    method = serializers.CharField()
    treated_conversion = serializers.FloatField()
    holdout_conversion = serializers.FloatField()
    conversion_uplift = serializers.FloatField()
    conversion_uplift_ci = serializers.ListField(
        child=serializers.FloatField(), help_text="[low, high]"
    )
    conversion_uplift_relative = serializers.FloatField(allow_null=True)
    treated_revenue_per_recipient = serializers.FloatField()
    holdout_revenue_per_recipient = serializers.FloatField()
    revenue_uplift_per_recipient = serializers.FloatField()
    revenue_uplift_per_recipient_ci = serializers.ListField(
        child=serializers.FloatField(), help_text="[low, high]"
    )
    incremental_revenue = serializers.FloatField()
    incremental_revenue_ci = serializers.ListField(
        child=serializers.FloatField(), help_text="[low, high]"
    )
    significant = serializers.BooleanField()


class CampaignReportVariantSerializer(CampaignReportLineSerializer):
    id = serializers.IntegerField()
    uplift = CampaignUpliftSerializer(allow_null=True)


class CampaignReportHoldoutSerializer(serializers.Serializer):
    audience = serializers.IntegerField()
    converted = serializers.IntegerField()
    revenue = serializers.FloatField()
    revenue_per_member = serializers.FloatField()
    conversion_rate = serializers.FloatField()


class CampaignReportExclusionSerializer(serializers.Serializer):
    reason = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField()


class CampaignSendProgressSerializer(serializers.Serializer):
    """Sends by status, holdout and excluded included."""

    recipients = serializers.IntegerField()
    sent = serializers.IntegerField()
    failed = serializers.IntegerField()
    unknown = serializers.IntegerField(
        help_text="Lost while being handed over: may or may not have arrived; "
        "`POST resend-unknown` sends them again."
    )
    skipped = serializers.IntegerField()
    cancelled = serializers.IntegerField()
    remaining = serializers.IntegerField(
        help_text="Not sent yet: pending, being sent or being handed over."
    )
    holdout = serializers.IntegerField()
    excluded = serializers.IntegerField()
    percent = serializers.IntegerField(help_text="Done, 0 to 100.")


class CampaignReportSerializer(serializers.Serializer):
    campaign = inline_serializer(
        "CampaignReportCampaign",
        {
            "id": serializers.IntegerField(),
            "name": serializers.CharField(),
            "status": serializers.CharField(),
            "attribution_days": serializers.IntegerField(),
        },
    )
    totals = CampaignReportLineSerializer()
    variants = CampaignReportVariantSerializer(many=True)
    holdout = CampaignReportHoldoutSerializer()
    uplift = CampaignUpliftSerializer(allow_null=True)
    excluded = CampaignReportExclusionSerializer(many=True, help_text="Excluded, by reason.")
    excluded_total = serializers.IntegerField()
    promotion_redemptions = serializers.IntegerField()
    redemption_cap = serializers.IntegerField(allow_null=True)
    unknown_reasons = serializers.ListField(
        child=serializers.CharField(), help_text="Why the unknown sends are unknown."
    )
    progress = CampaignSendProgressSerializer()


class CampaignAudienceSizeSerializer(serializers.Serializer):
    targeted = serializers.IntegerField(help_text="In a target segment.")
    recipients = serializers.IntegerField()
    holdout = serializers.IntegerField()
    excluded = serializers.DictField(
        child=serializers.IntegerField(), help_text="Customers excluded, by reason."
    )


class CampaignAudienceEstimateResultSerializer(CampaignAudienceSizeSerializer):
    holdout_estimated = serializers.BooleanField(
        help_text="The holdout (and so the recipients) is the expected size, not the exact split."
    )


class PromotionCodeStatusSerializer(serializers.Serializer):
    """An unknown code answers only `code`, `valid`, `reason` and `message`."""

    code = serializers.CharField(help_text="As matched: upper case, without surrounding spaces.")
    valid = serializers.BooleanField()
    reason = serializers.CharField(
        allow_blank=True,
        help_text="Empty when valid; else unknown, not_sent, expired, used or exhausted.",
    )
    message = serializers.CharField()
    campaign = inline_serializer(
        "PromotionCodeCampaign",
        {"id": serializers.IntegerField(), "name": serializers.CharField()},
        required=False,
    )
    discount = serializers.CharField(required=False, help_text="percent or amount")
    value = serializers.FloatField(required=False)
    discount_display = serializers.CharField(required=False)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)
    customer = serializers.IntegerField(
        required=False, allow_null=True, help_text="The customer a personal code was given to."
    )
    redemptions = serializers.IntegerField(required=False)
    redemption_cap = serializers.IntegerField(required=False, allow_null=True)


# A campaign's state changes take no body and answer with the campaign as it now is.
state_change = extend_schema(request=None, responses=CampaignSerializer)


class CampaignViewSet(viewsets.ModelViewSet):
    """Campaigns, with their variants and promotion, and the actions that drive them."""

    serializer_class = CampaignSerializer
    permission_classes = [RolePermissions]
    read_roles = (Role.MARKETING,)
    write_roles = (Role.MARKETING,)
    queryset = Campaign.objects.prefetch_related(
        "target_segments", "exclusion_segments", "variants"
    ).select_related("promotion")
    ordering_fields = ["id", "created_at", "name"]
    search_fields = ["name"]
    filterset_fields = ["status", "channel", "kind"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        serializer.instance = services.campaign_create(actor=self.request.user, **data)

    def perform_update(self, serializer):
        services.campaign_update(
            campaign=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.campaign_delete(campaign=instance, actor=self.request.user)

    def _run(self, handler, **kwargs) -> Response:
        campaign = self.get_object()
        campaign = handler(campaign=campaign, actor=self.request.user, **kwargs)
        campaign = self.get_queryset().get(pk=campaign.pk)
        return Response(CampaignSerializer(campaign).data)

    @state_change
    @action(detail=True, methods=["post"])
    def launch(self, request, pk=None):
        return self._run(services.campaign_launch)

    @state_change
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._run(services.campaign_pause)

    @state_change
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._run(services.campaign_resume)

    @state_change
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._run(services.campaign_cancel)

    @state_change
    @action(detail=True, methods=["post"])
    def stop(self, request, pk=None):
        return self._run(services.campaign_stop)

    @state_change
    @action(detail=True, methods=["post"], url_path="rotate-webhook-secret")
    def rotate_webhook_secret(self, request, pk=None):
        """A new random signing secret for a webhook campaign; give it to the receiver."""
        return self._run(services.campaign_webhook_secret_rotate)

    @state_change
    @action(detail=True, methods=["post"], url_path="resend-unknown")
    def resend_unknown(self, request, pk=None):
        """Send again the messages whose fate is unknown (a worker stopped while handing them
        over). Some may have arrived: those recipients get the message twice."""
        return self._run(services.campaign_resend_unknown)

    @extend_schema(responses=CampaignReportSerializer)
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        campaign = self.get_object()
        return Response(
            {**campaign_report(campaign=campaign), "progress": send_progress(campaign=campaign)}
        )

    @extend_schema(responses=CampaignAudienceSizeSerializer)
    @action(detail=True, methods=["get"], url_path="audience-size")
    def audience_size(self, request, pk=None):
        from django.utils import timezone

        return Response(audience_estimate(self.get_object(), now=timezone.now()))

    @extend_schema(
        request=AudienceEstimateSerializer, responses=CampaignAudienceEstimateResultSerializer
    )
    @action(detail=False, methods=["post"], url_path="audience-estimate")
    def audience_estimate(self, request):
        """The audience (targeted, recipients, holdout, excluded by reason) for unsaved settings.

        A campaign not saved yet has no holdout drawn: `holdout_estimated` says the holdout (and
        so the recipients) is the expected size, not the exact split launch will draw."""
        serializer = AudienceEstimateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        estimate = audience_estimate_for_settings(
            campaign=None, changes=dict(serializer.validated_data)
        )
        return Response(estimate)

    @extend_schema(request=PreviewSerializer, responses=PREVIEW_RESULT)
    @action(detail=True, methods=["post"])
    def preview(self, request, pk=None):
        """A variant (the first when none is given) rendered for a customer of the audience."""
        campaign = self.get_object()
        serializer = PreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        variants = campaign.variants.all()
        variant_id = serializer.validated_data.get("variant")
        variant = variants.filter(pk=variant_id).first() if variant_id else variants.first()
        if variant is None:
            raise ValidationError({"variant": ["the campaign has no such variant"]})
        customer = campaign_audience_customer(
            campaign=campaign, user=request.user, customer_id=serializer.validated_data["customer"]
        )
        if customer is None:
            raise ValidationError({"customer": ["no such customer in the campaign's audience"]})
        try:
            rendered = preview_render(campaign=campaign, variant=variant, customer=customer)
        except RenderFailed as exc:
            raise ValidationError({"variant": [str(exc)]}) from exc
        return Response({k: rendered[k] for k in ("subject", "html", "text")})

    @extend_schema(request=PreviewSerializer, responses=TEST_SEND_RESULT)
    @action(detail=True, methods=["post"], url_path="test-send")
    def test_send(self, request, pk=None):
        """The preview of a variant for a customer of the audience, sent as a test message to
        the signed-in user's own address (not a send of the campaign, not in its report)."""
        campaign = self.get_object()
        serializer = PreviewSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        variants = campaign.variants.all()
        variant_id = serializer.validated_data.get("variant")
        variant = variants.filter(pk=variant_id).first() if variant_id else variants.first()
        if variant is None:
            raise ValidationError({"variant": ["the campaign has no such variant"]})
        customer = campaign_audience_customer(
            campaign=campaign, user=request.user, customer_id=serializer.validated_data["customer"]
        )
        if customer is None:
            raise ValidationError({"customer": ["no such customer in the campaign's audience"]})
        address = services.campaign_test_send(
            campaign=campaign, variant=variant, customer=customer, actor=request.user
        )
        return Response({"sent_to": address})

    @extend_schema(responses=PromotionCodeStatusSerializer)
    @action(
        detail=False,
        methods=["get"],
        url_path=r"promotion-codes/(?P<code>[^/]{1,64})",
        read_roles=(Role.SALES, Role.MARKETING),
    )
    def promotion_code(self, request, code=None):
        """Whether a promotion code may be redeemed now, for tills and shops (sales staff too):
        valid, or the reason (unknown, not_sent, expired, used, exhausted), with the discount."""
        return Response(promotion_code_status(code=code or ""))

    @extend_schema(
        request=PROVIDER_EVENTS,
        responses={200: PROVIDER_EVENTS_RESULT, 400: PROVIDER_EVENTS_RESULT},
    )
    @action(detail=False, methods=["post"], url_path="provider-events")
    def provider_events(self, request):
        """Bounces and complaints from the email provider, by message id (or send id):
        {"events": [{"type": "bounce"|"complaint", "message_id": "<...>", "detail": "..."}]}.
        A complaint also withdraws the recipient's consent."""
        items = request.data.get("events") if isinstance(request.data, dict) else None
        result = provider_events_record(items)
        failed = result["errors"] and not result["recorded"]
        return Response(
            result, status=status.HTTP_400_BAD_REQUEST if failed else status.HTTP_200_OK
        )

    @extend_schema(
        methods=["GET"],
        responses={200: {"type": "array", "items": {"$ref": "#/components/schemas/Variant"}}},
    )
    @extend_schema(methods=["POST"], request=VariantSerializer, responses={201: VariantSerializer})
    @action(detail=True, methods=["get", "post"])
    def variants(self, request, pk=None):
        campaign = self.get_object()
        if request.method == "GET":
            return Response(VariantSerializer(campaign.variants.all(), many=True).data)
        serializer = VariantSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        variant = services.variant_create(
            campaign=campaign, actor=request.user, **serializer.validated_data
        )
        return Response(VariantSerializer(variant).data, status=status.HTTP_201_CREATED)

    @extend_schema(methods=["PATCH"], request=VariantSerializer, responses=VariantSerializer)
    @extend_schema(methods=["DELETE"], responses={204: None})
    @action(detail=True, methods=["patch", "delete"], url_path=r"variants/(?P<variant_id>\d+)")
    def variant(self, request, pk=None, variant_id=None):
        campaign = self.get_object()
        variant = get_object_or_404(Variant, pk=variant_id, campaign=campaign)
        if request.method == "DELETE":
            services.variant_delete(variant=variant, actor=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = VariantSerializer(variant, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.variant_update(variant=variant, actor=request.user, **serializer.validated_data)
        return Response(VariantSerializer(variant).data)

    @extend_schema(methods=["PUT"], request=PromotionSerializer, responses=PromotionSerializer)
    @extend_schema(methods=["DELETE"], responses={204: None})
    @action(detail=True, methods=["put", "delete"])
    def promotion(self, request, pk=None):
        campaign = self.get_object()
        if request.method == "DELETE":
            services.promotion_remove(campaign=campaign, actor=request.user)
            return Response(status=status.HTTP_204_NO_CONTENT)
        serializer = PromotionSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        promotion = services.promotion_set(
            campaign=campaign, actor=request.user, **serializer.validated_data
        )
        return Response(PromotionSerializer(promotion).data)


def register(router: DefaultRouter) -> None:
    """Add this app's viewsets to the API router."""
    router.register("campaigns", CampaignViewSet, basename="campaign")
