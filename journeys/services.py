"""Every write of journeys: definition, steps, activation, test mode and manual enrolment."""

import datetime as dt
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from campaigns.models import Campaign, Channel, Variant
from crm.roles import Role, user_has_role
from crm.text import text_problem
from customers.models import Customer
from journeys.engine import step_wait
from journeys.models import Enrolment, EnrolmentEvent, Journey, Step

JOURNEY_FIELDS = (
    "name",
    "description",
    "trigger",
    "trigger_segment",
    "trigger_event_type",
    "exit_on_segment_leave",
    "reentry",
    "reentry_days",
    "goal",
    "goal_segment",
    "consent_purpose",
)
STEP_FIELDS = (
    "kind",
    "label",
    "subject",
    "body",
    "wait",
    "condition",
    "condition_segment",
    "yes_step",
    "no_step",
    "task_subject",
    "task_due_days",
)


def _require_marketer(actor: AbstractBaseUser | None) -> None:
    if actor is not None and not user_has_role(actor, Role.MARKETING):
        raise PermissionError("Only marketing staff and admins manage journeys.")


def _require_editable(journey: Journey) -> None:
    if not journey.is_editable:
        raise ValidationError({"status": "pause the journey before changing it"})


def _text_errors(instance, names: tuple[str, ...]) -> dict[str, str]:
    errors = {}
    for name in names:
        value = getattr(instance, name, None)
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                errors[name] = problem
    return errors


def _journey_errors(journey: Journey) -> dict[str, str]:
    errors = _text_errors(journey, ("name", "description", "trigger_event_type"))
    if not journey.name.strip():
        errors["name"] = "give the journey a name"
    if journey.trigger == Journey.Trigger.SEGMENT and not journey.trigger_segment_id:
        errors["trigger_segment"] = "choose the segment whose new members enter the journey"
    if journey.trigger == Journey.Trigger.EVENT and not journey.trigger_event_type.strip():
        errors["trigger_event_type"] = "name the event type that enters the journey"
    if journey.goal == Journey.Goal.SEGMENT and not journey.goal_segment_id:
        errors["goal_segment"] = "choose the segment that counts as the goal"
    if journey.reentry == Journey.Reentry.AFTER_DAYS and not journey.reentry_days:
        errors["reentry_days"] = "give at least one day"
    return errors


def _apply(instance, fields: dict[str, Any], allowed: tuple[str, ...]) -> list[str]:
    changed = []
    for name, value in fields.items():
        if name not in allowed:
            raise ValidationError({name: "not a setting that can be changed"})
        attname = instance._meta.get_field(name).attname
        if attname != name and value is not None and not hasattr(value, "pk"):
            setattr(instance, attname, value)
        else:
            setattr(instance, name, value)
        changed.append(attname)
    return changed


def journey_create(*, actor: AbstractBaseUser | None, name: str, **fields: Any) -> Journey:
    """A draft journey; it enrols nobody until it is activated."""
    _require_marketer(actor)
    journey = Journey(created_by=actor if actor is not None and actor.is_authenticated else None)
    _apply(journey, {"name": name, **fields}, JOURNEY_FIELDS)
    journey.name = journey.name.strip()
    errors = _journey_errors(journey)
    if errors:
        raise ValidationError(errors)
    journey.save()
    return journey


def journey_update(*, journey: Journey, actor: AbstractBaseUser | None, **changes: Any) -> Journey:
    _require_marketer(actor)
    _require_editable(journey)
    changed = _apply(journey, changes, JOURNEY_FIELDS)
    errors = _journey_errors(journey)
    if errors:
        raise ValidationError(errors)
    if changed:
        journey.save(update_fields=[*changed, "updated_at"])
    return journey


def journey_delete(*, journey: Journey, actor: AbstractBaseUser | None) -> None:
    """Delete a journey that only ever ran tests; one that enrolled customers is kept (paused)
    for its history. The messages it sent stay with their campaigns."""
    _require_marketer(actor)
    if journey.enrolments.filter(is_test=False).exists():
        raise ValidationError({"status": "a journey with enrolments is kept; pause it instead"})
    with transaction.atomic():
        campaigns = [s.campaign_id for s in journey.steps.all() if s.campaign_id]
        journey.delete()
        Campaign.objects.filter(pk__in=campaigns, sends__isnull=True).delete()
        Campaign.objects.filter(pk__in=campaigns).update(status=Campaign.Status.STOPPED)


def _step_errors(step: Step) -> dict[str, str]:
    errors = _text_errors(step, ("label", "subject", "body", "task_subject"))
    if step.kind not in Step.Kind.values:
        errors["kind"] = "choose what the step does"
    if step.kind == Step.Kind.SEND:
        if not step.subject.strip():
            errors["subject"] = "give the email a subject"
        if not step.body.strip():
            errors["body"] = "write the email's text"
    if step.kind == Step.Kind.WAIT:
        if step.wait is None or step.wait <= dt.timedelta(0):
            errors["wait"] = "give a duration longer than zero"
        elif step.wait > dt.timedelta(days=365):
            errors["wait"] = "wait at most a year"
    if step.kind == Step.Kind.SPLIT:
        if step.condition not in Step.Condition.values:
            errors["condition"] = "choose the condition to split on"
        elif step.condition == Step.Condition.IN_SEGMENT and not step.condition_segment_id:
            errors["condition_segment"] = "choose the segment"
        for name in ("yes_step", "no_step"):
            target = getattr(step, name)
            if target is not None and (
                target.journey_id != step.journey_id or target.pk == step.pk
            ):
                errors[name] = "choose another step of this journey"
    if step.kind == Step.Kind.TASK and not step.task_subject.strip():
        errors["task_subject"] = "say what the owner should do"
    return errors


def _step_message_sync(step: Step, actor) -> None:
    """A send step's message lives in a campaign of kind "journey" that delivery reads."""
    if step.kind != Step.Kind.SEND:
        return
    if step.campaign_id is None:
        step.campaign = Campaign.objects.create(
            name=f"{step.journey.name}: {step.subject}"[:200],
            channel=Channel.EMAIL,
            kind=Campaign.Kind.JOURNEY,
            consent_purpose_id=step.journey.consent_purpose_id,
            status=Campaign.Status.SENDING,
            launched_at=timezone.now(),
            created_by=actor if actor is not None and actor.is_authenticated else None,
        )
        step.save(update_fields=["campaign"])
    Variant.objects.update_or_create(
        campaign=step.campaign, name="A", defaults={"subject": step.subject, "text": step.body}
    )
    Campaign.objects.filter(pk=step.campaign_id).update(
        name=f"{step.journey.name}: {step.subject}"[:200],
        consent_purpose_id=step.journey.consent_purpose_id,
    )


def step_add(*, journey: Journey, actor: AbstractBaseUser | None, **fields: Any) -> Step:
    """Add a step at the end of the list."""
    _require_marketer(actor)
    _require_editable(journey)
    with transaction.atomic():
        Journey.objects.select_for_update().get(pk=journey.pk)
        last = journey.steps.aggregate(n=Max("position"))["n"] or 0
        step = Step(journey=journey, position=last + 1)
        _apply(step, fields, STEP_FIELDS)
        errors = _step_errors(step)
        if errors:
            raise ValidationError(errors)
        step.save()
        _step_message_sync(step, actor)
    return step


def step_update(*, step: Step, actor: AbstractBaseUser | None, **changes: Any) -> Step:
    _require_marketer(actor)
    _require_editable(step.journey)
    with transaction.atomic():
        changed = _apply(step, changes, STEP_FIELDS)
        errors = _step_errors(step)
        if errors:
            raise ValidationError(errors)
        if changed:
            step.save(update_fields=changed)
        _step_message_sync(step, actor)
    return step


def step_remove(*, step: Step, actor: AbstractBaseUser | None) -> None:
    """Remove a step no customer stands on (a test run on it ends); its message's campaign
    stays when it has sends."""
    _require_marketer(actor)
    _require_editable(step.journey)
    on_it = step.enrolments.filter(state=Enrolment.State.ACTIVE)
    if on_it.filter(is_test=False).exists():
        raise ValidationError({"step": "customers are on this step; wait until they move on"})
    with transaction.atomic():
        now = timezone.now()
        for enrolment in on_it:
            EnrolmentEvent.objects.create(
                enrolment=enrolment, step=step, kind=EnrolmentEvent.Kind.EXITED, at=now,
                detail="the step was removed",
            )  # fmt: skip
        on_it.update(
            state=Enrolment.State.EXITED, ended_at=now, due_at=None,
            end_reason="the step was removed",
        )  # fmt: skip
        campaign_id = step.campaign_id
        step.delete()
        if campaign_id:
            Campaign.objects.filter(pk=campaign_id, sends__isnull=True).delete()
            Campaign.objects.filter(pk=campaign_id).update(status=Campaign.Status.STOPPED)


def step_move(*, step: Step, actor: AbstractBaseUser | None, direction: str) -> Step:
    """Swap the step with its neighbour above ("up") or below ("down")."""
    _require_marketer(actor)
    _require_editable(step.journey)
    if direction not in ("up", "down"):
        raise ValidationError({"direction": "up or down"})
    with transaction.atomic():
        Journey.objects.select_for_update().get(pk=step.journey_id)
        siblings = step.journey.steps.exclude(pk=step.pk)
        neighbour = (
            siblings.filter(position__lt=step.position).order_by("-position").first()
            if direction == "up"
            else siblings.filter(position__gt=step.position).order_by("position").first()
        )
        if neighbour is None:
            return step
        step.position, neighbour.position = neighbour.position, step.position
        step.save(update_fields=["position"])
        neighbour.save(update_fields=["position"])
    return step


def journey_problems(journey: Journey) -> dict[str, str]:
    """What stops a journey from running, by field."""
    problems = _journey_errors(journey)
    steps = list(journey.steps.all())
    if not steps:
        problems["steps"] = "add at least one step"
    for step in steps:
        errors = _step_errors(step)
        if errors:
            problems["steps"] = f"step {step.position}: " + "; ".join(errors.values())
            break
    return problems


def journey_activate(*, journey: Journey, actor: AbstractBaseUser | None) -> Journey:
    """Start enrolling: customers who trigger it from now on enter (and the paused ones go on)."""
    _require_marketer(actor)
    problems = journey_problems(journey)
    if problems:
        raise ValidationError(problems)
    now = timezone.now()
    with transaction.atomic():
        journey = Journey.objects.select_for_update().get(pk=journey.pk)
        if journey.status == Journey.Status.ACTIVE:
            return journey
        journey.status = Journey.Status.ACTIVE
        journey.activated_at = now
        # Who triggered it while it was paused or a draft does not enter afterwards.
        journey.trigger_cursor = now
        journey.save(update_fields=["status", "activated_at", "trigger_cursor", "updated_at"])
    return journey


def journey_pause(*, journey: Journey, actor: AbstractBaseUser | None) -> Journey:
    """Stop enrolling and moving customers on; they stay where they are until it is resumed."""
    _require_marketer(actor)
    Journey.objects.filter(pk=journey.pk, status=Journey.Status.ACTIVE).update(
        status=Journey.Status.PAUSED, updated_at=timezone.now()
    )
    journey.refresh_from_db()
    return journey


def _enrol_one(*, journey: Journey, customer: Customer, is_test: bool) -> Enrolment:
    now = timezone.now()
    with transaction.atomic():
        Journey.objects.select_for_update().get(pk=journey.pk)
        if customer.erased_at is not None:
            raise ValidationError({"customer": "this customer's data was erased"})
        mine = journey.enrolments.filter(customer=customer)
        if mine.filter(state=Enrolment.State.ACTIVE).exists():
            raise ValidationError({"customer": "this customer is already in the journey"})
        if not is_test:
            real = mine.filter(is_test=False)
            last = real.aggregate(at=Max("entered_at"))["at"]
            if journey.reentry == Journey.Reentry.ONCE and last is not None:
                raise ValidationError({"customer": "this customer has been in the journey before"})
            if (
                journey.reentry == Journey.Reentry.AFTER_DAYS
                and last is not None
                and last > now - dt.timedelta(days=journey.reentry_days)
            ):
                raise ValidationError(
                    {"customer": f"in the journey less than {journey.reentry_days} days ago"}
                )
        first = journey.steps.order_by("position", "pk").first()
        enrolment = Enrolment.objects.create(
            journey=journey,
            customer=customer,
            entry=(mine.aggregate(n=Max("entry"))["n"] or 0) + 1,
            is_test=is_test,
            step=first,
            step_since=now,
            due_at=now + step_wait(first, is_test=is_test),
            entered_at=now,
        )
        EnrolmentEvent.objects.create(
            enrolment=enrolment,
            kind=EnrolmentEvent.Kind.ENTERED,
            at=now,
            detail="test mode" if is_test else "",
        )
        if first is not None:
            EnrolmentEvent.objects.create(
                enrolment=enrolment, step=first, kind=EnrolmentEvent.Kind.REACHED, at=now
            )
        transaction.on_commit(journeys_advance_queue)
    return enrolment


def journeys_advance_queue() -> None:
    from journeys.tasks import journeys_advance_task

    journeys_advance_task.delay()


def journey_test_start(
    *, journey: Journey, actor: AbstractBaseUser | None, customer: Customer
) -> Enrolment:
    """Run one chosen customer through the journey, active or not, with the waits shortened
    (JOURNEYS_TEST_WAIT_SECONDS): real messages and tasks, marked as a test."""
    _require_marketer(actor)
    problems = journey_problems(journey)
    if problems:
        raise ValidationError(problems)
    return _enrol_one(journey=journey, customer=customer, is_test=True)


def enrolment_create(
    *, journey: Journey, actor: AbstractBaseUser | None, customer: Customer
) -> Enrolment:
    """Enrol a customer by hand (or through the API), as the re-entry policy allows."""
    _require_marketer(actor)
    if journey.status != Journey.Status.ACTIVE:
        raise ValidationError({"status": "activate the journey before enrolling customers"})
    return _enrol_one(journey=journey, customer=customer, is_test=False)


def enrolment_hurry(*, enrolment: Enrolment, actor: AbstractBaseUser | None) -> Enrolment:
    """Test mode: end the current wait now instead of at its shortened time."""
    _require_marketer(actor)
    if not enrolment.is_test:
        raise ValidationError({"enrolment": "only a test enrolment's waits can be skipped"})
    Enrolment.objects.filter(pk=enrolment.pk, state=Enrolment.State.ACTIVE).update(
        due_at=timezone.now()
    )
    transaction.on_commit(journeys_advance_queue)
    enrolment.refresh_from_db()
    return enrolment


def enrolment_exit(*, enrolment: Enrolment, actor: AbstractBaseUser | None) -> Enrolment:
    """Take a customer out of the journey by hand."""
    _require_marketer(actor)
    now = timezone.now()
    with transaction.atomic():
        updated = Enrolment.objects.filter(pk=enrolment.pk, state=Enrolment.State.ACTIVE).update(
            state=Enrolment.State.EXITED, ended_at=now, due_at=None, end_reason="taken out by staff"
        )
        if updated:
            EnrolmentEvent.objects.create(
                enrolment=enrolment,
                step_id=enrolment.step_id,
                kind=EnrolmentEvent.Kind.EXITED,
                at=now,
                detail="taken out by staff",
            )
    enrolment.refresh_from_db()
    return enrolment
