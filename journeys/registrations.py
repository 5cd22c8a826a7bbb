"""What journeys registers with the apps below it: its personal data and the text an erasure
scrubs. Nothing below journeys imports it."""

from django.db.models import QuerySet
from django.utils import timezone


def _enrolments_erase(rows: QuerySet) -> None:
    """An erased person's enrolments end at once (no further step runs for them); the rows stay,
    without any text, so the journey's counts still add up."""
    from journeys.models import Enrolment, EnrolmentEvent

    rows.filter(state=Enrolment.State.ACTIVE).update(
        state=Enrolment.State.EXITED, ended_at=timezone.now(), due_at=None
    )
    rows.update(end_reason="personal data erased")
    EnrolmentEvent.objects.filter(enrolment__in=rows).update(detail="")


def _segments_gained_members(segment_ids: list[int]) -> None:
    """A real-time batch committed joins: run the journeys these segments trigger now, not at
    beat's next tick."""
    from journeys.models import Journey
    from journeys.tasks import journeys_run_task

    if Journey.objects.filter(
        status=Journey.Status.ACTIVE,
        trigger=Journey.Trigger.SEGMENT,
        trigger_segment_id__in=segment_ids,
    ).exists():
        journeys_run_task.apply_async(expires=30)


def journeys_register() -> None:
    from journeys.models import Enrolment, EnrolmentEvent, Journey, Step
    from privacy.mentions import personal_data_mentions_exempt, personal_data_mentions_register
    from privacy.registry import personal_data_register
    from segments.realtime import joins_listener_register

    joins_listener_register(_segments_gained_members)

    personal_data_register(
        Enrolment,
        customer_path="customer",
        export_fields=["id", "journey_id", "entry", "state", "step_id", "entered_at", "ended_at"],
        erase=_enrolments_erase,
        category="Journeys",
        purpose="Automated messages and follow-ups after what the customer did",
        retention="While the journey's report is kept; ended at once on erasure",
    )
    personal_data_register(
        EnrolmentEvent,
        customer_path="enrolment__customer",
        export_fields=["id", "enrolment_id", "step_id", "kind", "at", "detail"],
        erase=lambda rows: rows.update(detail=""),
        category="Journeys",
        purpose="What happened at each step of a journey",
        retention="While the journey's report is kept",
    )
    personal_data_mentions_register(Journey, fields=["name", "description", "trigger_event_type"])
    personal_data_mentions_register(Step, fields=["label", "subject", "body", "task_subject"])
    personal_data_mentions_register(Enrolment, fields=["end_reason"])
    personal_data_mentions_register(EnrolmentEvent, fields=["detail"])
    personal_data_mentions_exempt(
        Journey, fields=["status", "trigger", "reentry", "goal"], reason="Settings"
    )
    personal_data_mentions_exempt(Step, fields=["kind", "condition"], reason="Settings")
    personal_data_mentions_exempt(Enrolment, fields=["state"], reason="A state")
    personal_data_mentions_exempt(EnrolmentEvent, fields=["kind"], reason="A kind of event")
