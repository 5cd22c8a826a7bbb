"""Reads of journeys: the per-step report and an enrolment's history."""

from django.db.models import Count, Q, QuerySet

from journeys.models import Enrolment, EnrolmentEvent, Journey, Step


def journey_step_report(*, journey: Journey, include_tests: bool = False) -> list[dict]:
    """Per step, in list order: how many enrolments reached it, are on it now, and went on to
    the goal. Three grouped statements whatever the number of enrolments."""
    enrolments = Enrolment.objects.filter(journey=journey)
    events = EnrolmentEvent.objects.filter(
        enrolment__journey=journey, kind=EnrolmentEvent.Kind.REACHED
    )
    if not include_tests:
        enrolments = enrolments.filter(is_test=False)
        events = events.filter(enrolment__is_test=False)
    reached = dict(
        events.order_by().values_list("step_id").annotate(n=Count("enrolment_id", distinct=True))
    )
    converted = dict(
        events.filter(enrolment__state=Enrolment.State.CONVERTED)
        .order_by()
        .values_list("step_id")
        .annotate(n=Count("enrolment_id", distinct=True))
    )
    waiting = dict(
        enrolments.filter(state=Enrolment.State.ACTIVE)
        .order_by()
        .values_list("step_id")
        .annotate(n=Count("pk"))
    )
    return [
        {
            "step": step,
            "reached": reached.get(step.pk, 0),
            "waiting": waiting.get(step.pk, 0),
            "converted": converted.get(step.pk, 0),
        }
        for step in journey.steps.select_related("yes_step", "no_step").order_by("position")
    ]


def journey_state_counts(*, journey: Journey) -> dict[str, int]:
    counts = dict(
        Enrolment.objects.filter(journey=journey, is_test=False)
        .order_by()
        .values_list("state")
        .annotate(n=Count("pk"))
    )
    return {state: counts.get(state, 0) for state in Enrolment.State.values}


def journeys_with_counts() -> QuerySet[Journey]:
    real = Q(enrolments__is_test=False)
    return Journey.objects.annotate(
        enrolled=Count("enrolments", filter=real),
        active_now=Count("enrolments", filter=real & Q(enrolments__state="active")),
        converted=Count("enrolments", filter=real & Q(enrolments__state="converted")),
    ).select_related("trigger_segment")


def enrolment_history(*, enrolment: Enrolment) -> QuerySet[EnrolmentEvent]:
    return enrolment.events.select_related("step").order_by("at", "pk")


def enrolment_messages(*, enrolment: Enrolment):
    """The messages of an enrolment's send steps with their delivery state (sent only once the
    server accepted it, unknown when a worker died during the hand-over)."""
    from campaigns.models import Send

    return (
        Send.objects.filter(
            campaign__journey_step__journey_id=enrolment.journey_id,
            customer_id=enrolment.customer_id,
            occurrence=enrolment.entry,
        )
        .select_related("campaign__journey_step")
        .order_by("created_at", "pk")
    )


def journey_steps(*, journey: Journey) -> list[Step]:
    return list(journey.steps.select_related("yes_step", "no_step", "condition_segment"))
