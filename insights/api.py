"""REST API of insights: the KPI figures, the segment comparison, retention cohorts and
surveys (marketing and administrators only). JSON bodies; a service's ValidationError is
answered as a 400 by field (crm.api.exceptions)."""

from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from crm.api.permissions import RolePermissions
from crm.roles import Role
from customers.models import Purchase
from insights.cohorts import cohort_table
from insights.models import Survey
from insights.selectors import kpi_report, segment_comparison
from insights.services import (
    kpi_period,
    kpi_refresh_queue,
    kpi_snapshot_get,
    survey_create,
    survey_send,
)
from segments.models import Segment

MARKETING = (Role.MARKETING,)


class _Insights(APIView):
    permission_classes = [RolePermissions]
    read_roles = MARKETING
    write_roles = MARKETING


class PeriodQuery(serializers.Serializer):
    segment = serializers.PrimaryKeyRelatedField(
        queryset=Segment.objects.all(), required=False, allow_null=True
    )
    days = serializers.IntegerField(required=False, default=30)
    end = serializers.DateField(required=False, allow_null=True, default=None)


class CohortQuery(serializers.Serializer):
    segment = serializers.PrimaryKeyRelatedField(
        queryset=Segment.objects.all(), required=False, allow_null=True
    )
    country = serializers.CharField(max_length=2, required=False, allow_blank=True, default="")
    source = serializers.CharField(max_length=50, required=False, allow_blank=True, default="")
    channel = serializers.ChoiceField(
        choices=[("", "Any"), *Purchase.Channel.choices], required=False, default=""
    )
    months = serializers.ChoiceField(choices=[6, 12, 24], required=False, default=12)


class SurveySerializer(serializers.ModelSerializer):
    segment = serializers.PrimaryKeyRelatedField(queryset=Segment.objects.all())

    class Meta:
        model = Survey
        fields = ["id", "name", "kind", "question", "segment", "campaign", "created_at"]
        read_only_fields = ["id", "campaign", "created_at"]


_PERIOD_PARAMS = [
    OpenApiParameter("segment", int, description="A segment's id; none: all customers"),
    OpenApiParameter("days", int, description="7, 30, 90 or 365"),
    OpenApiParameter("end", OpenApiTypes.DATE, description="The last day; default yesterday"),
]


class KpiView(_Insights):
    @extend_schema(parameters=_PERIOD_PARAMS, responses=OpenApiTypes.OBJECT)
    def get(self, request):
        query = PeriodQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        period = kpi_period(days=data["days"], end=data["end"])
        return Response(kpi_report(kpi_snapshot_get(segment=data.get("segment"), period=period)))


class KpiRefreshView(_Insights):
    @extend_schema(
        request=PeriodQuery,
        responses={202: inline_serializer("KpiRefreshQueued", {"id": serializers.IntegerField(),
                                                               "status": serializers.CharField()})},
    )  # fmt: skip
    def post(self, request):
        query = PeriodQuery(data=request.data)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        period = kpi_period(days=data["days"], end=data["end"])
        refresh = kpi_refresh_queue(segment=data.get("segment"), period=period, actor=request.user)
        return Response(
            {"id": refresh.pk, "status": refresh.status}, status=status.HTTP_202_ACCEPTED
        )


class CompareView(_Insights):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "segments", str, description="Two to six segment ids, comma-separated"
            ),
            *_PERIOD_PARAMS[1:],
        ],
        responses=OpenApiTypes.OBJECT,
    )
    def get(self, request):
        query = PeriodQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        period = kpi_period(days=query.validated_data["days"], end=query.validated_data["end"])
        raw = [p for p in request.query_params.get("segments", "").split(",") if p.strip()]
        if not all(p.strip().isdigit() for p in raw) or not 2 <= len(raw) <= 6:
            raise serializers.ValidationError(
                {"segments": "two to six segment ids, comma-separated"}
            )
        ids = [int(p) for p in raw]
        found = Segment.objects.in_bulk(ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise serializers.ValidationError({"segments": f"no such segment: {missing[0]}"})
        snapshots = [kpi_snapshot_get(segment=found[i], period=period) for i in ids]
        rows = []
        for row in segment_comparison(snapshots):
            rows.append({
                "key": row["metric"].key,
                "label": row["metric"].label,
                "unit": row["metric"].unit,
                "segments": [
                    {
                        "segment": ids[n],
                        "value": cell["figure"].value,
                        "difference": cell["difference"],
                        "interval": list(cell["interval"]) if cell["interval"] else None,
                        "beyond_noise": cell.get("beyond_noise"),
                    }
                    for n, cell in enumerate(row["cells"])
                ],
            })  # fmt: skip
        return Response({
            "days": period.days,
            "end": period.end.isoformat(),
            "interval": "95%, Newcombe's hybrid score method (Wilson) for differences of rates",
            "metrics": rows,
        })  # fmt: skip


class CohortView(_Insights):
    @extend_schema(parameters=[CohortQuery], responses=OpenApiTypes.OBJECT)
    def get(self, request):
        query = CohortQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        segment = data.get("segment")
        return Response(
            cohort_table(
                segment_id=segment.pk if segment else None,
                country=data["country"],
                source=data["source"],
                channel=data["channel"],
                months=int(data["months"]),
            )
        )


class SurveyListView(_Insights):
    @extend_schema(responses=SurveySerializer(many=True))
    def get(self, request):
        surveys = Survey.objects.order_by("-created_at", "-id")[:200]
        return Response(SurveySerializer(surveys, many=True).data)

    @extend_schema(request=SurveySerializer, responses={201: SurveySerializer})
    def post(self, request):
        serializer = SurveySerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        survey = survey_create(actor=request.user, **serializer.validated_data)
        return Response(SurveySerializer(survey).data, status=status.HTTP_201_CREATED)


class SurveySendView(_Insights):
    @extend_schema(request=None, responses=SurveySerializer)
    def post(self, request, pk: int):
        survey = get_object_or_404(Survey, pk=pk)
        survey_send(survey=survey, actor=request.user)
        survey.refresh_from_db()
        return Response(SurveySerializer(survey).data)


def register(router) -> None:
    """Nothing on the router: the insights are views of figures, not records."""


from django.urls import path  # noqa: E402

extra_urlpatterns = [
    path("insights/kpis/", KpiView.as_view(), name="insights-kpis"),
    path("insights/kpis/refresh/", KpiRefreshView.as_view(), name="insights-kpis-refresh"),
    path("insights/compare/", CompareView.as_view(), name="insights-compare"),
    path("insights/cohorts/", CohortView.as_view(), name="insights-cohorts"),
    path("insights/surveys/", SurveyListView.as_view(), name="insights-surveys"),
    path("insights/surveys/<int:pk>/send/", SurveySendView.as_view(), name="insights-survey-send"),
]
