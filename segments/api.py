"""REST API of segments: serializers and viewsets, registered on the project's router."""

import csv
from collections.abc import Iterator

from django.db import transaction
from django.db.models import OuterRef, Subquery
from django.http import StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.routers import DefaultRouter

from crm.api.jobs import JobStateFields
from crm.api.permissions import RolePermissions
from crm.api.schema import schema_component_register
from crm.roles import Role
from crm.spreadsheet import spreadsheet_safe
from customers.models import Customer
from customers.registry import access_record
from customers.selectors import customer_fields_hidden_from
from segments import rules
from segments.models import Membership, RefreshRun, Segment
from segments.rule_schema import rule_schema_components
from segments.rules import RuleInvalid
from segments.selectors import segment_members, segment_preview
from segments.services import (
    segment_add_members,
    segment_create,
    segment_delete,
    segment_members_from_csv,
    segment_refresh_after_save,
    segment_refresh_queue,
    segment_remove_members,
    segment_update,
)


@extend_schema_field(
    {"type": "string", "enum": Segment.Kind.values}, component_name="SegmentKindEnum"
)
class SegmentKindField(serializers.ChoiceField):
    """An enum of its own in the schema: campaigns and ML jobs have a `kind` of other values."""


RULE = {"$ref": "#/components/schemas/SegmentRule"}
for _name, _schema in rule_schema_components(prefix="#/components/schemas/").items():
    schema_component_register(_name, _schema)


@extend_schema_field(RULE)
class RuleField(serializers.JSONField):
    """A rule tree, documented by the rule language's JSON Schema (segments/rule_schema.py)."""


@extend_schema_field(
    {
        "anyOf": [
            RULE,
            {"type": "object", "additionalProperties": False, "description": "No rule."},
        ],
        "description": "The rule of a rule segment; {} for a static or ML segment.",
    }
)
class SegmentRuleField(serializers.JSONField):
    """A segment's rule: a rule tree, or {} for a segment of another kind."""


class SegmentSerializer(serializers.ModelSerializer):
    owner = serializers.PrimaryKeyRelatedField(read_only=True)
    kind = SegmentKindField(choices=Segment.Kind.choices, read_only=True)
    rule = SegmentRuleField(read_only=True)
    is_too_small = serializers.BooleanField(read_only=True)
    protected_characteristics = serializers.SerializerMethodField()

    class Meta:
        model = Segment
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "kind",
            "rule",
            "rule_version",
            "refresh_interval",
            "next_refresh_at",
            "min_size_warning",
            "owner",
            "created_at",
            "updated_at",
            "last_refreshed_at",
            "last_refresh_duration",
            "member_count",
            "is_too_small",
            "protected_characteristics",
        ]
        read_only_fields = [
            "rule_version",
            "next_refresh_at",
            "created_at",
            "updated_at",
            "last_refreshed_at",
            "last_refresh_duration",
            "member_count",
        ]

    def get_protected_characteristics(self, segment: Segment) -> list[str]:
        return rules.uses_protected_characteristics(segment.rule)


class SegmentWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    slug = serializers.SlugField(max_length=200, required=False, allow_blank=True)
    description = serializers.CharField(required=False, allow_blank=True)
    kind = SegmentKindField(choices=Segment.Kind.choices, default=Segment.Kind.RULE)
    rule = SegmentRuleField(required=False)
    refresh_interval = serializers.DurationField(required=False, allow_null=True)
    min_size_warning = serializers.IntegerField(min_value=0, max_value=10**9, required=False)


@extend_schema_serializer(component_name="SegmentPreview")
class PreviewSerializer(serializers.Serializer):
    rule = RuleField()
    segment = serializers.IntegerField(required=False, allow_null=True)
    sample_size = serializers.IntegerField(min_value=0, max_value=100, default=10)


class MemberSerializer(serializers.ModelSerializer):
    since = serializers.DateTimeField(read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "external_id",
            "first_name",
            "last_name",
            "email",
            "country",
            "city",
            "since",
        ]


class RunSerializer(JobStateFields, serializers.ModelSerializer):
    class Meta:
        model = RefreshRun
        fields = [
            "id",
            "trigger",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "duration",
            "size",
            "joined",
            "left",
            "message",
            *JobStateFields.STATE_FIELDS,
        ]


class RunStateLinkSerializer(RunSerializer):
    state_url = serializers.URLField(read_only=True, help_text="Where to follow the run.")

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "state_url"]


class RunStateSerializer(RunSerializer):
    task_state = serializers.CharField(
        read_only=True, allow_null=True, help_text="The worker's state of a queued or running run."
    )

    class Meta(RunSerializer.Meta):
        fields = [*RunSerializer.Meta.fields, "task_state"]


class MembersChangeSerializer(serializers.Serializer):
    customer_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        max_length=100000,
        help_text="Ids of the customers; give these or a file.",
    )
    file = serializers.FileField(
        required=False, help_text="A CSV of emails or external ids (multipart upload)."
    )

    def validate(self, data):
        if not data.get("customer_ids") and not data.get("file"):
            raise ValidationError(
                {"customer_ids": "give customer_ids or a CSV file of emails/external ids"}
            )
        return data


@extend_schema_serializer(component_name="SegmentPreviewCustomer")
class SampleCustomerSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    country = serializers.CharField()


PREVIEW_RESULT = inline_serializer(
    "SegmentPreviewResult",
    {
        "count": serializers.IntegerField(),
        "sample": SampleCustomerSerializer(many=True),
        "would_join": serializers.IntegerField(
            allow_null=True, help_text="With `segment`: customers who would join it."
        ),
        "would_leave": serializers.IntegerField(allow_null=True),
        "join_sample": SampleCustomerSerializer(many=True, allow_null=True),
        "leave_sample": SampleCustomerSerializer(many=True, allow_null=True),
        "protected_characteristics": serializers.ListField(child=serializers.CharField()),
    },
)

REFRESH_QUEUED = inline_serializer(
    "SegmentRefreshQueued",
    {
        "run": serializers.IntegerField(),
        "status": serializers.CharField(),
        "task_id": serializers.CharField(allow_null=True),
        "state_url": serializers.URLField(help_text="Where to follow the run."),
    },
)

MEMBERS_CHANGED = inline_serializer(
    "SegmentMembersChanged",
    {
        "joined": serializers.IntegerField(),
        "left": serializers.IntegerField(),
        "size": serializers.IntegerField(),
        "unmatched": serializers.ListField(
            child=inline_serializer(
                "SegmentMembersUnmatched",
                {"line": serializers.IntegerField(), "value": serializers.CharField()},
            ),
            help_text="CSV lines that matched no customer.",
        ),
    },
)


class SegmentCatalogueFieldSerializer(serializers.Serializer):
    """A profile field a condition may test."""

    name = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.CharField(help_text="text, choice, integer, number, date, tags or user")
    operators = serializers.ListField(child=serializers.CharField())
    choices = serializers.ListField(
        child=serializers.CharField(), help_text="The values of a choice field; else empty."
    )
    protected = serializers.BooleanField(help_text="A protected characteristic.")


class SegmentCatalogueMetricSerializer(serializers.Serializer):
    """An aggregate over a customer's purchases or events."""

    name = serializers.CharField()
    label = serializers.CharField()
    kind = serializers.CharField(help_text="integer or number")
    source = serializers.CharField(help_text="purchase or event")
    operators = serializers.ListField(child=serializers.CharField())
    filters = serializers.ListField(
        child=serializers.CharField(), help_text="What the metric's rows may be filtered on."
    )


class SegmentCatalogueSerializer(serializers.Serializer):
    """The rule language for the builder (documentation of the catalogue's answer)."""

    version = serializers.IntegerField(help_text="The rule version this catalogue describes.")
    fields = SegmentCatalogueFieldSerializer(many=True)
    attr_operators = serializers.ListField(
        child=serializers.CharField(), help_text="Operators of a custom attribute condition."
    )
    metrics = SegmentCatalogueMetricSerializer(many=True)
    consent_states = serializers.ListField(child=serializers.CharField())
    channels = serializers.ListField(child=serializers.CharField())


# The member changes take a CSV file (multipart upload) as well as JSON; every other body is JSON.
UPLOAD_PARSERS = [JSONParser, MultiPartParser]


def _sample(customers: list[Customer] | None) -> list[dict] | None:
    if customers is None:
        return None
    return [{"id": c.pk, "name": str(c), "email": c.email, "country": c.country} for c in customers]


class SegmentSavedSerializer(SegmentSerializer):
    refresh_run = serializers.SerializerMethodField(
        help_text="The refresh this save queued (a new rule segment, or a changed rule), with "
        "its state: without a broker it has already run. Null when nothing is recomputed."
    )

    class Meta(SegmentSerializer.Meta):
        fields = [*SegmentSerializer.Meta.fields, "refresh_run"]

    @extend_schema_field(RunStateLinkSerializer(allow_null=True))
    def get_refresh_run(self, segment: Segment) -> dict | None:
        run = self.context.get("run")
        if run is None:
            return None
        run.refresh_from_db()
        url = reverse("segment-run", args=[segment.pk, run.pk], request=self.context["request"])
        return {**RunSerializer(run).data, "state_url": url}


def _saved(request, segment: Segment, run: RefreshRun | None) -> dict:
    """A saved segment as the API answers it: its figures after the refresh that ran in-process
    (no broker), or the queued refresh to follow."""
    segment.refresh_from_db()
    return SegmentSavedSerializer(segment, context={"request": request, "run": run}).data


class _Echo:
    def write(self, value: str) -> str:
        return value


class SegmentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Segment.objects.select_related("owner")
    serializer_class = SegmentSerializer
    # Marketing (and superusers) manage segments; sales read them and their visible members.
    permission_classes = [RolePermissions]
    read_roles = (Role.MARKETING, Role.SALES)
    write_roles = (Role.MARKETING,)
    search_fields = ["name", "slug", "description"]
    ordering_fields = ["name", "member_count", "last_refreshed_at", "id"]
    filterset_fields = ["kind"]

    @extend_schema(request=SegmentWriteSerializer, responses={201: SegmentSavedSerializer})
    def create(self, request):
        data = SegmentWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        with transaction.atomic():
            segment = segment_create(owner=request.user, actor=request.user, **data.validated_data)
            run = segment_refresh_after_save(segment=segment, created=True)
        return Response(_saved(request, segment, run), status=status.HTTP_201_CREATED)

    @extend_schema(request=SegmentWriteSerializer, responses=SegmentSavedSerializer)
    def update(self, request, pk=None, partial=False):
        segment = self.get_object()
        data = SegmentWriteSerializer(data=request.data, partial=partial)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        if "kind" in changes and changes.pop("kind") != segment.kind:
            raise ValidationError({"kind": "cannot be changed"})
        previous_rule = segment.rule
        with transaction.atomic():
            segment = segment_update(segment=segment, actor=request.user, **changes)
            run = segment_refresh_after_save(segment=segment, previous_rule=previous_rule)
        return Response(_saved(request, segment, run))

    @extend_schema(request=SegmentWriteSerializer, responses=SegmentSavedSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    def perform_destroy(self, instance: Segment) -> None:
        segment_delete(segment=instance)

    @extend_schema(responses=SegmentCatalogueSerializer)
    @action(detail=False, methods=["get"])
    def catalogue(self, request):
        """Fields, metrics and operators of the rule language, for the builder."""
        return Response(rules.catalogue(unreadable=customer_fields_hidden_from(request.user)))

    @extend_schema(request=PreviewSerializer, responses=PREVIEW_RESULT)
    @action(detail=False, methods=["post"])
    def preview(self, request):
        """Count and sample an unsaved rule; with `segment`, who would join and leave."""
        body = PreviewSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        segment = None
        if body.validated_data.get("segment"):
            segment = Segment.objects.filter(pk=body.validated_data["segment"]).first()
            if segment is None:
                raise ValidationError({"segment": "no such segment"})
        from segments.services import segment_rule_errors

        rule = body.validated_data["rule"]
        errors = segment_rule_errors(rule=rule, segment=segment, actor=request.user)
        if errors:
            raise RuleInvalid(errors)
        preview = segment_preview(
            rule=rule, segment=segment, sample_size=body.validated_data["sample_size"]
        )
        return Response(
            {
                "count": preview.count,
                "sample": _sample(preview.sample),
                "would_join": preview.would_join,
                "would_leave": preview.would_leave,
                "join_sample": _sample(preview.join_sample),
                "leave_sample": _sample(preview.leave_sample),
                "protected_characteristics": rules.uses_protected_characteristics(rule),
            }
        )

    @extend_schema(request=None, responses={202: REFRESH_QUEUED})
    @action(detail=True, methods=["post"])
    def refresh(self, request, pk=None):
        """Queue a refresh; the answer links to the run's state."""
        segment = self.get_object()
        run = segment_refresh_queue(segment=segment, trigger=RefreshRun.Trigger.API)
        url = reverse("segment-run", args=[segment.pk, run.pk], request=request)
        return Response(
            {"run": run.pk, "status": run.status, "task_id": run.task_id, "state_url": url},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(responses=RunStateSerializer)
    @action(detail=True, methods=["get"], url_path=r"runs/(?P<run_id>\d+)")
    def run(self, request, pk=None, run_id=None):
        """The state of one refresh: its run row, and the worker's task state when known."""
        segment = self.get_object()
        run = get_object_or_404(RefreshRun, pk=run_id, segment=segment)
        data = RunSerializer(run).data
        data["task_state"] = None
        if run.task_id and run.status in (RefreshRun.Status.QUEUED, RefreshRun.Status.RUNNING):
            from celery.result import AsyncResult

            try:
                data["task_state"] = AsyncResult(run.task_id).state
            except Exception:  # no result backend configured
                data["task_state"] = None
        return Response(data)

    @extend_schema(responses=MemberSerializer(many=True))
    @action(detail=True, methods=["get"])
    def members(self, request, pk=None):
        """The members the user may see, newest first, with the date they joined."""
        segment = self.get_object()
        since = Membership.objects.filter(segment=segment, customer_id=OuterRef("pk")).values(
            "since"
        )
        members = segment_members(segment=segment, user=request.user).annotate(
            since=Subquery(since)
        )
        page = self.paginate_queryset(members.order_by("-id"))
        access_record(
            user=request.user,
            action="view",
            object_kind="segment_members",
            object_id=segment.pk,
            details={"count": len(page)},
        )
        return self.get_paginated_response(MemberSerializer(page, many=True).data)

    @extend_schema(responses=RunSerializer(many=True))
    @action(detail=True, methods=["get"])
    def history(self, request, pk=None):
        """Every refresh: when, size, joined, left, duration, trigger."""
        segment = self.get_object()
        page = self.paginate_queryset(segment.runs.order_by("-id"))
        return self.get_paginated_response(RunSerializer(page, many=True).data)

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR})
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        """The members the user may see as CSV (cells never start a spreadsheet formula)."""
        segment = self.get_object()
        members = segment_members(segment=segment, user=request.user).order_by("id")
        hidden = customer_fields_hidden_from(request.user)
        columns = [
            column
            for column in (
                "id",
                "external_id",
                "first_name",
                "last_name",
                "email",
                "country",
                "city",
            )
            if column not in hidden
        ]
        access_record(
            user=request.user, action="export", object_kind="segment_members", object_id=segment.pk
        )

        def rows() -> Iterator[str]:
            writer = csv.writer(_Echo())
            yield writer.writerow(columns)
            for row in members.values_list(*columns).iterator(chunk_size=2000):
                yield writer.writerow([spreadsheet_safe(v) for v in row])

        response = StreamingHttpResponse(rows(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="segment-{segment.slug}.csv"'
        return response

    def _members_change(self, request, remove: bool):
        segment = self.get_object()
        body = MembersChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        if body.validated_data.get("file"):
            report = segment_members_from_csv(
                segment=segment, content=body.validated_data["file"].read(), remove=remove
            )
            run, unmatched = report.run, [{"line": n, "value": v} for n, v in report.unmatched]
        else:
            change = segment_remove_members if remove else segment_add_members
            run = change(segment=segment, customers=body.validated_data["customer_ids"])
            unmatched = []
        return Response(
            {"joined": run.joined, "left": run.left, "size": run.size, "unmatched": unmatched}
        )

    @extend_schema(request=MembersChangeSerializer, responses=MEMBERS_CHANGED)
    @action(detail=True, methods=["post"], url_path="add-members", parser_classes=UPLOAD_PARSERS)
    def add_members(self, request, pk=None):
        """Static segments: add customers by id, or from a CSV of emails / external ids."""
        return self._members_change(request, remove=False)

    @extend_schema(request=MembersChangeSerializer, responses=MEMBERS_CHANGED)
    @action(detail=True, methods=["post"], url_path="remove-members", parser_classes=UPLOAD_PARSERS)
    def remove_members(self, request, pk=None):
        """Static segments: remove customers by id, or from a CSV of emails / external ids."""
        return self._members_change(request, remove=True)


def register(router: DefaultRouter) -> None:
    """Add this app's viewsets to the API router."""
    router.register("segments", SegmentViewSet, basename="segment")

    from segments.ml.api import register as ml_register

    ml_register(router)
