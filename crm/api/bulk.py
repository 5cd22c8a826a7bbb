"""Bulk actions in the API: one request per action over the rows of a list (crm/bulk.py).

POST /api/bulk/ {list, action, ids | filter, owner?, tag?, segment?}: `export` answers the CSV at
once; every other action answers 202 with a job that runs set-based in batches (follow it at
/api/bulk/{id}/). The rows reached are those the caller may change, found again when the job runs.
"""

from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from crm import bulk
from crm.api.jobs import JobStateFields
from crm.api.permissions import RolePermissions
from crm.models import BulkJob, SavedView
from crm.roles import Role


class BulkRequestSerializer(serializers.Serializer):
    """One action over many rows of a list: the ids, or every row matching `filter` (the list's
    own filter fields, as in its query string)."""

    list = serializers.ChoiceField(choices=SavedView.ListName.choices)
    action = serializers.CharField(
        max_length=30,
        help_text="assign_owner, add_tag, remove_tag, add_to_segment, delete or export; "
        "which ones a list offers: GET /api/bulk/actions/",
    )
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False)
    filter = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    owner = serializers.IntegerField(min_value=1, required=False, help_text="assign_owner")
    tag = serializers.CharField(max_length=50, required=False, help_text="add_tag, remove_tag")
    segment = serializers.IntegerField(
        min_value=1, required=False, help_text="add_to_segment: a static segment"
    )

    def validate(self, attrs):
        if ("ids" in attrs) == ("filter" in attrs):
            raise serializers.ValidationError({"ids": "Give either ids or filter, not both."})
        return attrs


class BulkJobSerializer(JobStateFields, serializers.ModelSerializer):
    class Meta:
        model = BulkJob
        fields = [
            "id",
            "list_name",
            "action",
            "params",
            "by_filter",
            "matched",
            "progress_total",
            "progress_done",
            "changed",
            "status",
            *JobStateFields.STATE_FIELDS,
            "message",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


PARAMS = ("owner", "tag", "segment")


def bulk_answer(request, data: dict) -> Response | StreamingHttpResponse:
    """Check, then export at once or record the job: what every bulk endpoint answers."""
    bulk_list = bulk.bulk_list_get(data["list"])
    ids = bulk.bulk_clean_ids(data["ids"], noun=bulk_list.noun) if "ids" in data else None
    query = bulk_list.clean_filter(data["filter"]) if ids is None else None
    params = {k: data[k] for k in PARAMS if k in data}
    bulk.bulk_check(actor=request.user, bulk_list=bulk_list, action=data["action"], params=params)
    if data["action"] == bulk.EXPORT:
        targets = bulk.bulk_targets(actor=request.user, bulk_list=bulk_list, ids=ids, query=query)
        response = StreamingHttpResponse(
            bulk_list.export(request.user, targets), content_type="text/csv"
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M")
        response["Content-Disposition"] = f'attachment; filename="{bulk_list.name}-{stamp}.csv"'
        return response
    job = bulk.bulk_job_create(
        actor=request.user,
        list_name=bulk_list.name,
        action=data["action"],
        ids=ids,
        query=query,
        params=params,
    )
    job.refresh_from_db()
    return Response(BulkJobSerializer(job).data, status=202)


class BulkViewSet(viewsets.GenericViewSet):
    """Bulk actions over the deal, customer and account lists, one request per action."""

    permission_classes = [RolePermissions]
    write_roles = tuple(Role.values)  # reading is enough to export; each action checks its own
    serializer_class = BulkJobSerializer
    queryset = BulkJob.objects.none()
    lookup_value_regex = "[0-9]+"

    def get_queryset(self):
        return bulk.bulk_jobs_visible_to(self.request.user)

    @extend_schema(
        request=BulkRequestSerializer,
        responses={202: BulkJobSerializer, (200, "text/csv"): OpenApiTypes.STR},
    )
    def create(self, request):
        payload = BulkRequestSerializer(data=request.data)
        payload.is_valid(raise_exception=True)
        return bulk_answer(request, dict(payload.validated_data))

    @extend_schema(responses={200: BulkJobSerializer})
    def retrieve(self, request, pk=None):
        """Where a bulk action stands; a person sees their own (administrators every one)."""
        job = get_object_or_404(self.get_queryset(), pk=pk)
        return Response(BulkJobSerializer(job).data)


def register(router: DefaultRouter) -> None:
    router.register("bulk", BulkViewSet, basename="bulk")
