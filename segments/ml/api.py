"""The API of RFM, ML segments and predictive scores (marketing and superusers only)."""

import datetime as dt

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_field, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from crm.api.jobs import JobStateFields
from crm.api.permissions import RolePermissions
from crm.roles import Role
from customers.registry import access_record
from customers.selectors import customers_visible_to
from segments.ml.features import FEATURE_GROUPS
from segments.ml.models import (
    Cluster,
    CustomerScore,
    LifetimeModel,
    MLJob,
    MLSegment,
    ModelVersion,
    PredictiveModel,
)
from segments.ml.selectors import rfm_class_counts, rfm_grid, rfm_last_run
from segments.ml.services import (
    as_of_check,
    cluster_rename,
    ml_job_queue,
    ml_segment_create,
    ml_segment_delete,
    ml_segment_update,
    rfm_refresh_queue,
)


class ClusterSerializer(serializers.ModelSerializer):
    segment = serializers.IntegerField(source="segment_id", read_only=True)
    rule = serializers.SerializerMethodField()

    class Meta:
        model = Cluster
        fields = [
            "id",
            "label",
            "name",
            "description",
            "renamed",
            "size",
            "segment",
            "rule",
            "profile",
        ]

    def get_rule(self, cluster: Cluster) -> dict:
        return {"segment": cluster.segment_id}


class VersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id", "version", "trained_at", "features", "algorithm", "k", "customers", "metrics",
            "profiles", "stability_ari", "duration",
        ]  # fmt: skip


@extend_schema_field({"type": "string", "enum": MLJob.Kind.values}, component_name="MLJobKindEnum")
class JobKindField(serializers.ChoiceField):
    """An enum of its own in the schema: segments and campaigns have a `kind` of other values."""


class JobSerializer(JobStateFields, serializers.ModelSerializer):
    kind = JobKindField(choices=MLJob.Kind.choices, read_only=True)

    class Meta:
        model = MLJob
        fields = [
            "id",
            "kind",
            "status",
            "progress",
            "step",
            "message",
            "created_at",
            "started_at",
            "finished_at",
            *JobStateFields.STATE_FIELDS,
        ]


class JobQueuedSerializer(JobSerializer):
    url = serializers.CharField(read_only=True, help_text="Where to follow the job's progress.")

    class Meta(JobSerializer.Meta):
        fields = [*JobSerializer.Meta.fields, "url"]


class MLSegmentSerializer(serializers.ModelSerializer):
    current_version = VersionSerializer(read_only=True)

    class Meta:
        model = MLSegment
        fields = [
            "id", "name", "description", "features", "attribute_keys", "scaling", "algorithm", "k",
            "k_min", "k_max", "seed", "window_days", "created_at", "last_assigned_at",
            "current_version",
        ]  # fmt: skip


class MLSegmentWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True)
    features = serializers.ListField(
        child=serializers.ChoiceField(choices=list(FEATURE_GROUPS)), allow_empty=False
    )
    attribute_keys = serializers.ListField(
        child=serializers.CharField(max_length=64), required=False
    )
    scaling = serializers.ChoiceField(choices=MLSegment.Scaling.values, required=False)
    algorithm = serializers.ChoiceField(choices=MLSegment.Algorithm.values, required=False)
    k = serializers.IntegerField(min_value=2, max_value=30, required=False, allow_null=True)
    k_min = serializers.IntegerField(min_value=2, max_value=30, required=False)
    k_max = serializers.IntegerField(min_value=2, max_value=30, required=False)
    seed = serializers.IntegerField(min_value=0, max_value=2**31 - 1, required=False)
    window_days = serializers.IntegerField(min_value=1, max_value=36500, required=False)


class RenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150)


class MLSegmentViewSet(viewsets.GenericViewSet):
    """ML segments: definition CRUD, training (queued, with a job to poll), versions, clusters."""

    permission_classes = [RolePermissions]
    read_roles = write_roles = (Role.MARKETING,)
    serializer_class = MLSegmentSerializer
    queryset = MLSegment.objects.all()
    # No read here is paginated: the list, versions and clusters answer plain lists.
    pagination_class = None
    # Ids are numbers: any other value in the URL is a 404 from the router, not a failed lookup.
    lookup_value_regex = r"\d+"

    def _get(self, pk) -> MLSegment:
        return get_object_or_404(MLSegment.objects.select_related("current_version"), pk=pk)

    def list(self, request):
        items = MLSegment.objects.select_related("current_version")
        return Response(MLSegmentSerializer(items, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(MLSegmentSerializer(self._get(pk)).data)

    @extend_schema(request=MLSegmentWriteSerializer, responses={201: MLSegmentSerializer})
    def create(self, request):
        data = MLSegmentWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ml_segment = ml_segment_create(owner=request.user, **data.validated_data)
        return Response(MLSegmentSerializer(ml_segment).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=MLSegmentWriteSerializer, responses=MLSegmentSerializer)
    def partial_update(self, request, pk=None):
        ml_segment = self._get(pk)
        data = MLSegmentWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        ml_segment_update(ml_segment=ml_segment, **data.validated_data)
        return Response(MLSegmentSerializer(self._get(pk)).data)

    # PUT is PATCH here: it validates a partial body, so every field is optional.
    @extend_schema(request=MLSegmentWriteSerializer(partial=True), responses=MLSegmentSerializer)
    def update(self, request, pk=None):
        return self.partial_update(request, pk)

    def destroy(self, request, pk=None):
        ml_segment_delete(ml_segment=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={202: JobQueuedSerializer})
    @action(detail=True, methods=["post"])
    def train(self, request, pk=None):
        """Queue a (re-)training; poll the job URL for progress."""
        job = ml_job_queue(kind=MLJob.Kind.TRAIN, user=request.user, ml_segment=self._get(pk))
        return Response(
            {**JobSerializer(job).data, "url": f"/api/ml-segments/{pk}/jobs/{job.pk}/"},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(request=None, responses={202: JobQueuedSerializer})
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Queue a re-assignment of every customer with the stored model."""
        job = ml_job_queue(kind=MLJob.Kind.ASSIGN, user=request.user, ml_segment=self._get(pk))
        return Response(
            {**JobSerializer(job).data, "url": f"/api/ml-segments/{pk}/jobs/{job.pk}/"},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(responses=JobSerializer)
    @action(detail=True, methods=["get"], url_path=r"jobs/(?P<job_id>\d+)")
    def job(self, request, pk=None, job_id=None):
        job = get_object_or_404(MLJob, pk=job_id, ml_segment_id=self._get(pk).pk)
        return Response(JobSerializer(job).data)

    @extend_schema(responses=VersionSerializer(many=True))
    @action(detail=True, methods=["get"])
    def versions(self, request, pk=None):
        return Response(VersionSerializer(self._get(pk).versions.all()[:50], many=True).data)

    @extend_schema(responses=ClusterSerializer(many=True))
    @action(detail=True, methods=["get"])
    def clusters(self, request, pk=None):
        clusters = self._get(pk).clusters.filter(active=True)
        return Response(ClusterSerializer(clusters, many=True).data)

    @extend_schema(request=RenameSerializer, responses=ClusterSerializer)
    @action(detail=True, methods=["post"], url_path=r"clusters/(?P<cluster_id>\d+)/rename")
    def rename_cluster(self, request, pk=None, cluster_id=None):
        cluster = get_object_or_404(
            Cluster.objects.select_related("ml_segment", "segment"),
            pk=cluster_id,
            ml_segment_id=self._get(pk).pk,
        )
        data = RenameSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cluster_rename(cluster=cluster, name=data.validated_data["name"])
        return Response(ClusterSerializer(cluster).data)


class RfmRunSerializer(serializers.Serializer):
    reference_date = serializers.DateField(required=False, allow_null=True)
    window_days = serializers.IntegerField(min_value=1, max_value=36500, required=False)


class AsOfField(serializers.DateField):
    """The day a training is "as of" (YYYY-MM-DD): empty for today, never in the future; a past
    day makes a back-test whose scores stay with its report."""

    def to_internal_value(self, value):
        day = super().to_internal_value(value)
        try:
            return as_of_check(day)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict["as_of"]) from None


class PredictiveTrainSerializer(serializers.Serializer):
    horizon_days = serializers.IntegerField(min_value=7, max_value=730, required=False)
    as_of = AsOfField(required=False, allow_null=True)


class LifetimeFitSerializer(serializers.Serializer):
    as_of = AsOfField(required=False, allow_null=True)
    horizon_days = serializers.IntegerField(min_value=7, max_value=3650, required=False)
    annual_discount = serializers.FloatField(min_value=0, max_value=0.99, required=False)


class LifetimeModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = LifetimeModel
        fields = [
            "id", "trained_at", "as_of", "horizon_days", "annual_discount", "bgnbd",
            "gamma_gamma", "customers", "metrics", "backtest", "active",
        ]  # fmt: skip


class LifetimeSummarySerializer(serializers.Serializer):
    """The current lifetime model, the latest back-tests and the latest fitting job."""

    model = LifetimeModelSerializer(allow_null=True)
    backtests = LifetimeModelSerializer(many=True)
    last_job = JobSerializer(allow_null=True)


class ScoreSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(source="customer_id")

    class Meta:
        model = CustomerScore
        fields = [
            "id", "rfm_recency", "rfm_frequency", "rfm_monetary", "r_score", "f_score", "m_score",
            "rfm_score", "rfm_class", "previous_rfm_class", "rfm_computed_at", "churn_risk",
            "predicted_value", "reasons", "computed_at", "expected_purchases", "p_alive",
            "lifetime_value", "lifetime_computed_at",
        ]  # fmt: skip


class RfmLastRunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    reference_date = serializers.DateField()
    window_days = serializers.IntegerField()
    finished_at = serializers.DateTimeField(allow_null=True)
    customers = serializers.IntegerField()
    moved = serializers.IntegerField(help_text="Customers whose class changed.")
    moves = serializers.ListField(
        child=serializers.ListField(), help_text="[from class, to class, customers] rows."
    )
    thresholds = serializers.DictField(
        child=serializers.ListField(child=serializers.ListField(child=serializers.FloatField())),
        help_text="For recency, frequency and monetary: [score, min, max] of each score 1..5.",
    )


class RfmGridCellSerializer(serializers.Serializer):
    r = serializers.IntegerField()
    f = serializers.IntegerField()
    customers = serializers.IntegerField()
    revenue = serializers.FloatField()
    heat = serializers.IntegerField(help_text="0..9, relative to the busiest cell.")


class RfmSummarySerializer(serializers.Serializer):
    """The last finished RFM run, customers per class, and the recency-by-frequency grid."""

    last_run = RfmLastRunSerializer(allow_null=True)
    classes = serializers.ListField(
        child=inline_serializer(
            "RfmClassCount",
            {"rfm_class": serializers.CharField(), "customers": serializers.IntegerField()},
        )
    )
    grid = inline_serializer(
        "RfmGrid",
        {
            "rows": serializers.ListField(
                child=inline_serializer(
                    "RfmGridRow",
                    {
                        "r": serializers.IntegerField(),
                        "cells": RfmGridCellSerializer(many=True),
                    },
                ),
                help_text="Recency score 5 first; in each, frequency score 1 to 5.",
            )
        },
    )


class ChurnModelSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    trained_at = serializers.DateTimeField()
    as_of = serializers.DateField(allow_null=True, help_text="The day the training is as of.")
    active = serializers.BooleanField()
    backtest = serializers.BooleanField()
    horizon_days = serializers.IntegerField()
    cutoff = serializers.DateField(help_text="Features as of this day.")
    buyers = serializers.IntegerField()
    features = serializers.ListField(child=serializers.CharField())
    metrics = serializers.DictField(help_text="The evaluation of the trained models.")


class ChurnSummarySerializer(serializers.Serializer):
    """The active churn model, the latest one not activated (with the reason in
    metrics.refused), the latest back-tests and the latest training job."""

    model = ChurnModelSerializer(allow_null=True)
    refused = ChurnModelSerializer(allow_null=True)
    backtests = ChurnModelSerializer(many=True)
    last_job = JobSerializer(allow_null=True)


class ScoresViewSet(viewsets.GenericViewSet):
    """RFM summary and grid, RFM runs, scores per customer, churn model evaluation and training."""

    permission_classes = [RolePermissions]
    read_roles = write_roles = (Role.MARKETING,)
    serializer_class = ScoreSerializer
    queryset = CustomerScore.objects.all()

    @extend_schema(responses=RfmSummarySerializer)
    @action(detail=False, methods=["get"])
    def rfm(self, request):
        run = rfm_last_run()
        return Response(
            {
                "last_run": None
                if run is None
                else {
                    "id": run.pk,
                    "reference_date": run.reference_date,
                    "window_days": run.window_days,
                    "finished_at": run.finished_at,
                    "customers": run.customers,
                    "moved": run.moved,
                    "moves": run.moves,
                    "thresholds": run.thresholds,
                },
                "classes": rfm_class_counts(),
                "grid": rfm_grid(),
            }
        )

    @extend_schema(
        request=RfmRunSerializer,
        responses={
            202: inline_serializer(
                "RfmRunQueued",
                {"id": serializers.IntegerField(), "status": serializers.CharField()},
            )
        },
    )
    @action(detail=False, methods=["post"], url_path="rfm/run")
    def rfm_run(self, request):
        data = RfmRunSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        reference: dt.date | None = data.validated_data.get("reference_date")
        run = rfm_refresh_queue(
            reference_date=reference, window_days=data.validated_data.get("window_days", 730)
        )
        return Response({"id": run.pk, "status": run.status}, status=status.HTTP_202_ACCEPTED)

    @action(detail=False, methods=["get"], url_path=r"customers/(?P<customer_id>\d+)")
    def customer(self, request, customer_id=None):
        customer = get_object_or_404(customers_visible_to(request.user), pk=customer_id)
        score = get_object_or_404(CustomerScore, customer=customer)
        access_record(
            user=request.user, action="view", object_kind="customer_scores", object_id=customer.pk
        )
        return Response(ScoreSerializer(score).data)

    @extend_schema(responses=ChurnSummarySerializer)
    @action(detail=False, methods=["get"])
    def churn(self, request):
        def described(model: PredictiveModel | None) -> dict | None:
            if model is None:
                return None
            return {
                "id": model.pk,
                "trained_at": model.trained_at,
                "as_of": model.as_of,
                "active": model.active,
                "backtest": model.backtest,
                "horizon_days": model.horizon_days,
                "cutoff": model.cutoff,
                "buyers": model.buyers,
                "features": model.features,
                "metrics": model.metrics,
            }

        latest = PredictiveModel.objects.filter(backtest=False).first()
        job = MLJob.objects.filter(kind=MLJob.Kind.PREDICTIVE).first()
        return Response(
            {
                "model": described(PredictiveModel.objects.filter(active=True).first()),
                "refused": described(latest if latest and not latest.active else None),
                "backtests": [
                    described(m) for m in PredictiveModel.objects.filter(backtest=True)[:10]
                ],
                "last_job": JobSerializer(job).data if job else None,
            }
        )

    @extend_schema(request=PredictiveTrainSerializer, responses={202: JobSerializer})
    @action(detail=False, methods=["post"], url_path="churn/train")
    def churn_train(self, request):
        data = PredictiveTrainSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        options = {"horizon_days": data.validated_data.get("horizon_days", 90)}
        if data.validated_data.get("as_of"):
            options["as_of"] = data.validated_data["as_of"].isoformat()
        job = ml_job_queue(kind=MLJob.Kind.PREDICTIVE, user=request.user, options=options)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=LifetimeSummarySerializer)
    @action(detail=False, methods=["get"])
    def lifetime(self, request):
        job = MLJob.objects.filter(kind=MLJob.Kind.LIFETIME).first()
        return Response(
            {
                "model": LifetimeModelSerializer(
                    LifetimeModel.objects.filter(active=True).first()
                ).data
                if LifetimeModel.objects.filter(active=True).exists()
                else None,
                "backtests": LifetimeModelSerializer(
                    LifetimeModel.objects.filter(backtest=True)[:10], many=True
                ).data,
                "last_job": JobSerializer(job).data if job else None,
            }
        )

    @extend_schema(request=LifetimeFitSerializer, responses={202: JobSerializer})
    @action(detail=False, methods=["post"], url_path="lifetime/fit")
    def lifetime_fit(self, request):
        """Queue a BG/NBD x Gamma-Gamma fit as of a day (today: current scores; a past day: a
        back-test kept with its report)."""
        data = LifetimeFitSerializer(data=request.data or {})
        data.is_valid(raise_exception=True)
        options = {k: v for k, v in data.validated_data.items() if v is not None}
        if "as_of" in options:
            options["as_of"] = options["as_of"].isoformat()
        job = ml_job_queue(kind=MLJob.Kind.LIFETIME, user=request.user, options=options)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(responses=JobSerializer)
    @action(detail=False, methods=["get"], url_path=r"jobs/(?P<job_id>\d+)")
    def job(self, request, job_id=None):
        return Response(JobSerializer(get_object_or_404(MLJob, pk=job_id)).data)


def register(router: DefaultRouter) -> None:
    router.register("ml-segments", MLSegmentViewSet, basename="ml-segment")
    router.register("scores", ScoresViewSet, basename="scores")
