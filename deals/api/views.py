"""Viewsets of the deals API. Reads start from deals_visible_to; writes call deals.services."""

import datetime as dt

from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins
from rest_framework import serializers as drf_serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from crm.api.bulk import BulkJobSerializer, bulk_answer
from crm.api.permissions import RolePermissions
from crm.api.viewsets import CreateMixin, DestroyMixin, ServiceModelViewSet, UpdateMixin
from crm.bulk import bulk_jobs_visible_to
from crm.roles import Role
from deals import services
from deals.api import serializers
from deals.models import DealLine, ForecastTarget, Pipeline, Stage, StageChange, WinModel
from deals.selectors import (
    activities_visible_to,
    deals_visible_to,
    deals_with_figures,
    forecast,
    month_start,
    months_from,
)
from deals.win_model import deal_win_prediction, win_model_train

READERS = (Role.SALES, Role.MARKETING)


def _schema_for(create=None, update=None, read=None) -> dict:
    views = {}
    if create is not None:
        views["create"] = extend_schema(request=create, responses={201: read})
    if update is not None:
        views["update"] = extend_schema(request=update, responses={200: read})
        views["partial_update"] = extend_schema(request=update, responses={200: read})
    return views


class _DealsViewSet(ServiceModelViewSet):
    read_roles = READERS
    write_roles = (Role.SALES,)


@extend_schema_view(
    **_schema_for(
        create=serializers.PipelineWriteSerializer,
        update=serializers.PipelineUpdateSerializer,
        read=serializers.PipelineSerializer,
    )
)
class PipelineViewSet(
    CreateMixin, UpdateMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, _DealsViewSet
):
    """Pipelines with their stages in order; set up by administrators."""

    serializer_class = serializers.PipelineSerializer
    create_serializer_class = serializers.PipelineWriteSerializer
    update_serializer_class = serializers.PipelineUpdateSerializer
    ordering_fields = ["id", "name"]
    ordering = "id"
    filterset_fields = ["is_default"]

    def get_queryset(self):
        return Pipeline.objects.prefetch_related(
            Prefetch("stages", queryset=Stage.objects.order_by("position", "id"))
        )

    def service_create(self, data):
        stages = [
            (s["name"], s.get("probability", 10), s.get("outcome", Stage.Outcome.OPEN))
            for s in data.pop("stages", [])
        ]
        return services.pipeline_create(actor=self.request.user, stages=stages, **data)

    def service_update(self, instance, data):
        return services.pipeline_update(pipeline=instance, actor=self.request.user, **data)


@extend_schema_view(
    **_schema_for(
        create=serializers.StageWriteSerializer,
        update=serializers.StageUpdateSerializer,
        read=serializers.StageSerializer,
    )
)
class StageViewSet(
    CreateMixin,
    UpdateMixin,
    DestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    _DealsViewSet,
):
    """The stages of every pipeline; set up by administrators."""

    serializer_class = serializers.StageSerializer
    create_serializer_class = serializers.StageWriteSerializer
    update_serializer_class = serializers.StageUpdateSerializer
    ordering_fields = ["id", "position"]
    ordering = "id"
    filterset_fields = ["pipeline", "outcome"]

    def get_queryset(self):
        return Stage.objects.all()

    def service_create(self, data):
        return services.stage_create(actor=self.request.user, **data)

    def service_update(self, instance, data):
        return services.stage_update(stage=instance, actor=self.request.user, **data)

    def service_delete(self, instance):
        services.stage_delete(stage=instance, actor=self.request.user)


@extend_schema_view(
    **_schema_for(
        create=serializers.DealWriteSerializer,
        update=serializers.DealUpdateSerializer,
        read=serializers.DealSerializer,
    )
)
class DealViewSet(
    CreateMixin,
    UpdateMixin,
    DestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    _DealsViewSet,
):
    """Deals. Sales see and change the ones they own (all with CRM_SALES_SEE_ALL), marketing
    reads them all, admins everything. A new stage (PATCH `stage` or POST `move/`) is recorded."""

    serializer_class = serializers.DealSerializer
    create_serializer_class = serializers.DealWriteSerializer
    update_serializer_class = serializers.DealUpdateSerializer
    search_fields = ["name"]
    ordering_fields = ["id", "name", "amount", "expected_close_date", "created_at"]
    ordering = "-id"
    filterset_fields = ["pipeline", "stage", "owner", "account", "customer", "currency"]

    def get_queryset(self):
        return deals_with_figures(deals_visible_to(self.request.user)).prefetch_related("lines")

    def service_create(self, data):
        return services.deal_create(actor=self.request.user, **data)

    def service_update(self, instance, data):
        return services.deal_update(deal=instance, actor=self.request.user, **data)

    def service_delete(self, instance):
        services.deal_delete(deal=instance, actor=self.request.user)

    @extend_schema(
        request=serializers.DealMoveSerializer, responses={200: serializers.DealSerializer}
    )
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        """Move the deal to another stage of its pipeline; the change is recorded."""
        deal = self.get_object()
        payload = serializers.DealMoveSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        deal = services.deal_move(
            deal=deal,
            stage=payload.validated_data["stage"],
            lost_reason=payload.validated_data.get("lost_reason", ""),
            actor=request.user,
        )
        return Response(self.rendered(deal))

    @extend_schema(
        request=serializers.DealBulkSerializer,
        responses={202: BulkJobSerializer, (200, "text/csv"): OpenApiTypes.STR},
    )
    @action(
        detail=False,
        methods=["post"],
        permission_classes=[RolePermissions],
        write_roles=READERS,
    )
    def bulk(self, request):
        """One action over many deals, by `ids` or by `filter`: `export` answers the CSV at once;
        `assign_owner` and `delete` answer 202 with a job that runs set-based (follow it at
        bulk/{id}/ or /api/bulk/{id}/). Sales reach only the deals they may change and give
        deals only to themselves; only administrators delete. The same as POST /api/bulk/ with
        `list` deals."""
        payload = serializers.DealBulkSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        data = dict(payload.validated_data)
        if data.get("owner") is not None:
            data["owner"] = data["owner"].pk
        else:
            data.pop("owner", None)
        return bulk_answer(request, {**data, "list": "deals"})

    @extend_schema(responses={200: BulkJobSerializer})
    @action(detail=False, methods=["get"], url_path=r"bulk/(?P<job_id>[0-9]+)", url_name="bulk-job")
    def bulk_job(self, request, job_id=None):
        """Where a bulk action on deals stands; a person sees their own (administrators every one)."""
        job = get_object_or_404(
            bulk_jobs_visible_to(request.user).filter(list_name="deals"), pk=job_id
        )
        return Response(BulkJobSerializer(job).data)

    @extend_schema(responses={200: serializers.StageChangeSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """Every stage change of the deal, newest first."""
        deal = self.get_object()
        changes = StageChange.objects.filter(deal=deal).order_by("-changed_at", "-id")
        return Response(serializers.StageChangeSerializer(changes, many=True).data)

    @extend_schema(
        parameters=[
            OpenApiParameter("start", str, description="First month, YYYY-MM (this month)"),
            OpenApiParameter("months", int, description="How many months (1 to 24, 6)"),
            OpenApiParameter("currency", str, description="Currency of the deals (EUR)"),
        ],
        responses={200: dict},
    )
    @extend_schema(responses={200: serializers.DealWinPredictionSerializer})
    @action(detail=True, methods=["get"], url_path="win-probability")
    def win_probability(self, request, pk=None):
        """The learned chance of winning the open deal now, beside its stage's default, with
        the reasons (404 while no model is active or once the deal is closed)."""
        deal = self.get_object()
        prediction = deal_win_prediction(deal)
        if prediction is None:
            raise Http404("No learned probability: no model is in use, or the deal is closed.")
        return Response(
            {
                "probability": prediction["probability"],
                "stage_probability": deal.stage.probability,
                "reasons": prediction["reasons"],
                "model": prediction["model"].pk,
            }
        )

    @extend_schema(responses={200: serializers.WinModelSerializer})
    @action(detail=False, methods=["get"], url_path="win-model")
    def win_model(self, request):
        """The newest training of the win-probability model: its state, whether it is in use,
        and its held-out metrics against the stages' default probabilities."""
        row = WinModel.objects.defer("fitted").order_by("-created_at", "-id").first()
        if row is None:
            raise Http404("The win-probability model was never trained.")
        return Response(serializers.WinModelSerializer(row).data)

    @extend_schema(request=None, responses={202: serializers.WinModelSerializer})
    @win_model.mapping.post
    def win_model_train(self, request):
        """Train the model on the recorded stage history (administrators); answers the job."""
        job = win_model_train(actor=request.user)
        job.refresh_from_db()
        return Response(serializers.WinModelSerializer(job).data, status=202)

    @action(detail=False, methods=["get"])
    def forecast(self, request):
        """Per owner and month: weighted open pipeline, the learned forecast (amount times the
        model's probability where it scored the deal), won amount and target."""
        query = _ForecastQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        first = query.validated_data.get("start") or month_start(dt.date.today())
        months = months_from(month_start(first), query.validated_data.get("months", 6))
        rows = forecast(
            deals=deals_visible_to(request.user),
            months=months,
            currency=query.validated_data.get("currency", "EUR").upper(),
        )
        return Response(
            {
                "months": [m.isoformat() for m in months],
                "rows": [
                    {
                        "owner": r.owner_id,
                        "owner_name": r.owner_name,
                        "month": r.month.isoformat(),
                        "weighted": str(r.weighted),
                        "predicted": str(r.predicted),
                        "won": str(r.won),
                        "target": None if r.target is None else str(r.target),
                    }
                    for r in rows
                ],
            }
        )


class _ForecastQuery(drf_serializers.Serializer):
    start = drf_serializers.DateField(required=False, input_formats=["%Y-%m", "%Y-%m-%d"])
    months = drf_serializers.IntegerField(min_value=1, max_value=24, required=False)
    currency = drf_serializers.RegexField(r"^[A-Za-z]{3}$", required=False)


@extend_schema_view(
    **_schema_for(
        create=serializers.DealLineWriteSerializer,
        update=serializers.DealLineUpdateSerializer,
        read=serializers.DealLineSerializer,
    )
)
class DealLineViewSet(
    CreateMixin,
    UpdateMixin,
    DestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    _DealsViewSet,
):
    """Products on deals; with lines, a deal's amount is the sum of its lines."""

    serializer_class = serializers.DealLineSerializer
    create_serializer_class = serializers.DealLineWriteSerializer
    update_serializer_class = serializers.DealLineUpdateSerializer
    ordering_fields = ["id"]
    ordering = "id"
    filterset_fields = ["deal", "product"]

    def get_queryset(self):
        return DealLine.objects.filter(deal__in=deals_visible_to(self.request.user).values("pk"))

    def service_create(self, data):
        return services.deal_line_add(actor=self.request.user, **data)

    def service_update(self, instance, data):
        return services.deal_line_update(line=instance, actor=self.request.user, **data)

    def service_delete(self, instance):
        services.deal_line_delete(line=instance, actor=self.request.user)


@extend_schema_view(
    **_schema_for(
        create=serializers.ActivityCreateSerializer,
        update=serializers.ActivityUpdateSerializer,
        read=serializers.ActivitySerializer,
    )
)
class ActivityViewSet(
    CreateMixin,
    UpdateMixin,
    DestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    _DealsViewSet,
):
    """Calls, meetings, emails and follow-ups on deals, accounts and customers. Changed by their
    author, their assignee or an admin."""

    serializer_class = serializers.ActivitySerializer
    create_serializer_class = serializers.ActivityCreateSerializer
    update_serializer_class = serializers.ActivityUpdateSerializer
    search_fields = ["subject"]
    ordering_fields = ["id", "occurred_at", "due_date"]
    ordering = "-id"
    filterset_fields = ["deal", "account", "customer", "assignee", "kind", "done"]

    def get_queryset(self):
        return activities_visible_to(self.request.user)

    def service_create(self, data):
        return services.activity_create(author=self.request.user, **data)

    def service_update(self, instance, data):
        return services.activity_update(activity=instance, actor=self.request.user, **data)

    def service_delete(self, instance):
        services.activity_delete(activity=instance, actor=self.request.user)


@extend_schema_view(
    **_schema_for(
        create=serializers.ForecastTargetWriteSerializer,
        update=serializers.ForecastTargetUpdateSerializer,
        read=serializers.ForecastTargetSerializer,
    )
)
class ForecastTargetViewSet(
    CreateMixin,
    UpdateMixin,
    DestroyMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    _DealsViewSet,
):
    """Monthly targets per salesperson; set by administrators, read by sales and marketing."""

    serializer_class = serializers.ForecastTargetSerializer
    create_serializer_class = serializers.ForecastTargetWriteSerializer
    update_serializer_class = serializers.ForecastTargetUpdateSerializer
    ordering_fields = ["id", "month"]
    ordering = "id"
    filterset_fields = ["owner", "month", "currency"]

    def get_queryset(self):
        return ForecastTarget.objects.all()

    def service_create(self, data):
        return services.forecast_target_set(actor=self.request.user, **data)

    def service_update(self, instance, data):
        return services.forecast_target_set(
            actor=self.request.user,
            owner=instance.owner,
            month=instance.month,
            currency=instance.currency,
            amount=data.get("amount", instance.amount),
        )

    def service_delete(self, instance):
        services.forecast_target_delete(target=instance, actor=self.request.user)
