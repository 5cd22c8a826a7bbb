"""The journeys API: journeys with their steps and actions, steps, enrolments with their
history. Marketing only, as campaigns."""

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from crm.api.permissions import RolePermissions
from crm.roles import Role
from customers.models import Customer
from journeys import services
from journeys.models import Enrolment, EnrolmentEvent, Journey, Step
from journeys.selectors import enrolment_history, journey_state_counts, journey_step_report
from segments.models import Segment

MARKETING = (Role.MARKETING,)


class StepSerializer(serializers.ModelSerializer):
    journey = serializers.PrimaryKeyRelatedField(queryset=Journey.objects.all())
    condition_segment = serializers.PrimaryKeyRelatedField(
        queryset=Segment.objects.all(), required=False, allow_null=True
    )
    yes_step = serializers.PrimaryKeyRelatedField(
        queryset=Step.objects.all(), required=False, allow_null=True
    )
    no_step = serializers.PrimaryKeyRelatedField(
        queryset=Step.objects.all(), required=False, allow_null=True
    )

    class Meta:
        model = Step
        fields = [
            "id", "journey", "position", "kind", "label", "subject", "body", "wait", "condition",
            "condition_segment", "yes_step", "no_step", "task_subject", "task_due_days",
            "campaign", "summary",
        ]  # fmt: skip
        read_only_fields = ["position", "campaign", "summary"]

    def validate(self, attrs):
        if self.instance is not None and "journey" in attrs:
            if attrs["journey"] != self.instance.journey:
                raise serializers.ValidationError({"journey": "a step stays in its journey"})
        return attrs


class JourneySerializer(serializers.ModelSerializer):
    trigger_segment = serializers.PrimaryKeyRelatedField(
        queryset=Segment.objects.all(), required=False, allow_null=True
    )
    goal_segment = serializers.PrimaryKeyRelatedField(
        queryset=Segment.objects.all(), required=False, allow_null=True
    )
    steps = StepSerializer(many=True, read_only=True)

    class Meta:
        model = Journey
        fields = [
            "id", "name", "description", "status", "trigger", "trigger_segment",
            "trigger_event_type", "exit_on_segment_leave", "reentry", "reentry_days", "goal",
            "goal_segment", "consent_purpose", "steps", "activated_at", "created_at",
        ]  # fmt: skip
        read_only_fields = ["status", "activated_at", "created_at"]


class EnrolmentEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = EnrolmentEvent
        fields = ["id", "step", "kind", "at", "detail"]


class EnrolmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Enrolment
        fields = [
            "id", "journey", "customer", "entry", "is_test", "state", "step", "step_since",
            "due_at", "entered_at", "ended_at", "end_reason",
        ]  # fmt: skip


class EnrolmentDetailSerializer(EnrolmentSerializer):
    history = serializers.SerializerMethodField()

    class Meta(EnrolmentSerializer.Meta):
        fields = [*EnrolmentSerializer.Meta.fields, "history"]

    @extend_schema(responses=EnrolmentEventSerializer(many=True))
    def get_history(self, enrolment) -> list[dict]:
        return EnrolmentEventSerializer(enrolment_history(enrolment=enrolment), many=True).data


class CustomerChoiceSerializer(serializers.Serializer):
    customer = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.filter(erased_at__isnull=True)
    )


class MoveSerializer(serializers.Serializer):
    direction = serializers.ChoiceField(choices=["up", "down"])


JourneyReportSerializer = inline_serializer(
    "JourneyReport",
    {
        "states": serializers.DictField(child=serializers.IntegerField()),
        "steps": serializers.ListField(
            child=inline_serializer(
                "JourneyStepReport",
                {
                    "step": serializers.IntegerField(),
                    "position": serializers.IntegerField(),
                    "kind": serializers.CharField(),
                    "summary": serializers.CharField(),
                    "reached": serializers.IntegerField(),
                    "waiting": serializers.IntegerField(),
                    "converted": serializers.IntegerField(),
                },
            )
        ),
    },
)


class JourneyViewSet(viewsets.ModelViewSet):
    """Journeys, their steps (read here, written at /api/journey-steps/) and the actions that
    drive them."""

    serializer_class = JourneySerializer
    permission_classes = [RolePermissions]
    read_roles = MARKETING
    write_roles = MARKETING
    queryset = Journey.objects.prefetch_related("steps").order_by("-created_at", "-pk")
    filterset_fields = ["status", "trigger"]
    ordering_fields = ["id", "created_at", "name"]
    search_fields = ["name"]

    def perform_create(self, serializer):
        serializer.instance = services.journey_create(
            actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer):
        services.journey_update(
            journey=serializer.instance, actor=self.request.user, **serializer.validated_data
        )

    def perform_destroy(self, instance):
        services.journey_delete(journey=instance, actor=self.request.user)

    def _fresh(self, journey: Journey) -> Response:
        return Response(JourneySerializer(self.get_queryset().get(pk=journey.pk)).data)

    @extend_schema(request=None, responses=JourneySerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request, pk=None):
        return self._fresh(services.journey_activate(journey=self.get_object(), actor=request.user))

    @extend_schema(request=None, responses=JourneySerializer)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._fresh(services.journey_pause(journey=self.get_object(), actor=request.user))

    def _enrol(self, request, service) -> Response:
        choice = CustomerChoiceSerializer(data=request.data)
        choice.is_valid(raise_exception=True)
        enrolment = service(
            journey=self.get_object(),
            actor=request.user,
            customer=choice.validated_data["customer"],
        )
        return Response(EnrolmentDetailSerializer(enrolment).data, status=201)

    @extend_schema(request=CustomerChoiceSerializer, responses={201: EnrolmentDetailSerializer})
    @action(detail=True, methods=["post"])
    def test(self, request, pk=None):
        """Test mode: run one customer through the journey now, waits shortened."""
        return self._enrol(request, services.journey_test_start)

    @extend_schema(request=CustomerChoiceSerializer, responses={201: EnrolmentDetailSerializer})
    @action(detail=True, methods=["post"])
    def enrol(self, request, pk=None):
        """Enrol a customer by hand, as the re-entry policy allows."""
        return self._enrol(request, services.enrolment_create)

    @extend_schema(responses=JourneyReportSerializer)
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        journey = self.get_object()
        return Response(
            {
                "states": journey_state_counts(journey=journey),
                "steps": [
                    {
                        "step": line["step"].pk,
                        "position": line["step"].position,
                        "kind": line["step"].kind,
                        "summary": line["step"].summary,
                        "reached": line["reached"],
                        "waiting": line["waiting"],
                        "converted": line["converted"],
                    }
                    for line in journey_step_report(journey=journey)
                ],
            }
        )


class StepViewSet(viewsets.ModelViewSet):
    """The steps of journeys: added at the end of the list, changed, moved, removed."""

    serializer_class = StepSerializer
    permission_classes = [RolePermissions]
    read_roles = MARKETING
    write_roles = MARKETING
    queryset = Step.objects.select_related("journey").order_by("journey", "position", "pk")
    filterset_fields = ["journey", "kind"]

    def perform_create(self, serializer):
        data = dict(serializer.validated_data)
        journey = data.pop("journey")
        serializer.instance = services.step_add(journey=journey, actor=self.request.user, **data)

    def perform_update(self, serializer):
        data = dict(serializer.validated_data)
        data.pop("journey", None)
        services.step_update(step=serializer.instance, actor=self.request.user, **data)

    def perform_destroy(self, instance):
        services.step_remove(step=instance, actor=self.request.user)

    @extend_schema(request=MoveSerializer, responses=StepSerializer)
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        choice = MoveSerializer(data=request.data)
        choice.is_valid(raise_exception=True)
        step = services.step_move(
            step=self.get_object(), actor=request.user, direction=choice.validated_data["direction"]
        )
        return Response(StepSerializer(step).data)


class EnrolmentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Who is in which journey, where, and what happened to them at each step."""

    permission_classes = [RolePermissions]
    read_roles = MARKETING
    write_roles = MARKETING
    queryset = Enrolment.objects.order_by("-entered_at", "-pk")
    filterset_fields = ["journey", "state", "is_test", "customer"]

    def get_serializer_class(self):
        return EnrolmentDetailSerializer if self.action != "list" else EnrolmentSerializer

    @extend_schema(request=None, responses=EnrolmentDetailSerializer)
    @action(detail=True, methods=["post"])
    def hurry(self, request, pk=None):
        """Test mode: end the current wait now."""
        enrolment = services.enrolment_hurry(enrolment=self.get_object(), actor=request.user)
        return Response(EnrolmentDetailSerializer(enrolment).data)

    @extend_schema(request=None, responses=EnrolmentDetailSerializer)
    @action(detail=True, methods=["post"])
    def exit(self, request, pk=None):
        """Take the customer out of the journey."""
        enrolment = services.enrolment_exit(enrolment=self.get_object(), actor=request.user)
        return Response(EnrolmentDetailSerializer(enrolment).data)


def register(router: DefaultRouter) -> None:
    router.register("journeys", JourneyViewSet, basename="journey")
    router.register("journey-steps", StepViewSet, basename="journey-step")
    router.register("journey-enrolments", EnrolmentViewSet, basename="journey-enrolment")
