"""The journey engine: triggers become enrolments, and due enrolments move on, in bulk.

Each round locks a batch of due enrolments (`FOR UPDATE SKIP LOCKED`, so two workers never take
the same one), checks the exits and the goal first, then runs each step for all the enrolments
standing on it with a few set-based statements, records what happened and moves them on, all in
one transaction. A worker killed midway rolls the whole round back: nothing was done, the
enrolments are still due, and the next round does the step once. A send step writes the send
row of each enrolment (unique per campaign, customer and entry) in that same transaction; the
message itself is handed over by campaign delivery, with its claim, consent re-check and honest
states (campaigns/delivery.py).
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from campaigns.audience import classified_sql, insert_sends
from campaigns.models import MessageEvent, Send
from customers.models import Customer, Event, Purchase
from journeys.models import Enrolment, EnrolmentEvent, Journey, Step
from privacy.models import ConsentState, ConsentStatus
from segments.models import Membership, Segment

# Joins and events are read again this far back, so that one committed late (its time taken
# before a slower transaction committed) is still seen; an enrolment is never made twice for it.
TRIGGER_OVERLAP = dt.timedelta(seconds=60)


def step_wait(step: Step | None, *, is_test: bool) -> dt.timedelta:
    """How long an enrolment waits on `step` (none but on a wait step; shortened in a test run)."""
    if step is None or step.kind != Step.Kind.WAIT or step.wait is None:
        return dt.timedelta(0)
    if is_test:
        return min(step.wait, dt.timedelta(seconds=settings.JOURNEYS_TEST_WAIT_SECONDS))
    return step.wait


def _next_in_order(steps: list[Step], step: Step) -> Step | None:
    later = [s for s in steps if s.position > step.position]
    return later[0] if later else None


def _previous_send(steps: list[Step], step: Step) -> Step | None:
    earlier = [s for s in steps if s.position < step.position and s.kind == Step.Kind.SEND]
    return earlier[-1] if earlier else None


def _events(rows: Iterable[tuple[int, int | None]], kind: str, now: dt.datetime, detail: str = ""):
    EnrolmentEvent.objects.bulk_create(
        [
            EnrolmentEvent(enrolment_id=pk, step_id=step_id, kind=kind, at=now, detail=detail[:300])
            for pk, step_id in rows
        ]
    )


def _end(ids: list[int], *, state: str, reason: str, kind: str, step_id, now: dt.datetime) -> None:
    if not ids:
        return
    Enrolment.objects.filter(pk__in=ids).update(
        state=state, ended_at=now, due_at=None, end_reason=reason[:200]
    )
    _events(((pk, step_id) for pk in ids), kind, now, reason)


def _move(rows: list[tuple], target: Step | None, now: dt.datetime) -> None:
    """Put the enrolments (row tuples) on `target`, or complete them at the end of the list."""
    if not rows:
        return
    if target is None:
        _end(
            [r[0] for r in rows],
            state=Enrolment.State.COMPLETED,
            reason="reached the end of the journey",
            kind=EnrolmentEvent.Kind.COMPLETED,
            step_id=None,
            now=now,
        )
        return
    for is_test in (False, True):
        ids = [r[0] for r in rows if r[6] == is_test]
        if ids:
            Enrolment.objects.filter(pk__in=ids).update(
                step=target, step_since=now, due_at=now + step_wait(target, is_test=is_test)
            )
    _events(((r[0], target.pk) for r in rows), EnrolmentEvent.Kind.REACHED, now)


def _exits(rows: list[tuple], journeys: dict[int, Journey], now: dt.datetime) -> set[int]:
    """End the enrolments whose customer was erased, withdrew consent, left the trigger segment
    or reached the goal; returns their ids."""
    ended: set[int] = set()
    by_journey: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        by_journey[row[1]].append(row[0])
    for journey_id, ids in by_journey.items():
        journey = journeys[journey_id]
        pending = Enrolment.objects.filter(pk__in=ids)
        checks = [
            (
                Q(customer__erased_at__isnull=False),
                Enrolment.State.EXITED,
                "personal data erased",
                EnrolmentEvent.Kind.EXITED,
            ),
            (
                Exists(
                    ConsentState.objects.filter(
                        customer_id=OuterRef("customer_id"),
                        purpose_id=journey.consent_purpose_id,
                        state=ConsentStatus.WITHDRAWN,
                    )
                ),
                Enrolment.State.EXITED,
                "withdrew consent",
                EnrolmentEvent.Kind.EXITED,
            ),
        ]
        if journey.exit_on_segment_leave and journey.trigger_segment_id:
            checks.append(
                (
                    ~Exists(
                        Membership.objects.filter(
                            customer_id=OuterRef("customer_id"),
                            segment_id=journey.trigger_segment_id,
                        )
                    ),
                    Enrolment.State.EXITED,
                    "left the trigger segment",
                    EnrolmentEvent.Kind.EXITED,
                )
            )
        goal = goal_condition(journey)
        if goal is not None:
            checks.append(
                (goal, Enrolment.State.CONVERTED, "reached the goal", EnrolmentEvent.Kind.CONVERTED)
            )
        for condition, state, reason, kind in checks:
            hit = list(pending.exclude(pk__in=ended).filter(condition).values_list("pk", "step_id"))
            if not hit:
                continue
            Enrolment.objects.filter(pk__in=[pk for pk, _s in hit]).update(
                state=state, ended_at=now, due_at=None, end_reason=reason
            )
            EnrolmentEvent.objects.bulk_create(
                [
                    EnrolmentEvent(
                        enrolment_id=pk, step_id=step_id, kind=kind, at=now, detail=reason
                    )
                    for pk, step_id in hit
                ]
            )
            ended.update(pk for pk, _s in hit)
    return ended


def goal_condition(journey: Journey) -> Q | Exists | None:
    """The condition on enrolments that says the customer reached the journey's goal."""
    if journey.goal == Journey.Goal.PURCHASE:
        return Exists(
            Purchase.objects.filter(
                customer_id=OuterRef("customer_id"), purchased_at__gte=OuterRef("entered_at")
            )
        )
    if journey.goal == Journey.Goal.SEGMENT and journey.goal_segment_id:
        return Exists(
            Membership.objects.filter(
                customer_id=OuterRef("customer_id"), segment_id=journey.goal_segment_id
            )
        )
    return None


def split_condition(step: Step, steps: list[Step]):
    """The condition on enrolments that sends them down the split's yes branch."""
    if step.condition in (Step.Condition.OPENED, Step.Condition.CLICKED):
        previous = _previous_send(steps, step)
        if previous is None or previous.campaign_id is None:
            return Q(pk__in=[])
        # A click is also an open: the pixel is often blocked where the link is not.
        kinds = (
            [MessageEvent.Kind.OPEN, MessageEvent.Kind.CLICK]
            if step.condition == Step.Condition.OPENED
            else [MessageEvent.Kind.CLICK]
        )
        return Exists(
            MessageEvent.objects.filter(
                send__campaign_id=previous.campaign_id,
                send__customer_id=OuterRef("customer_id"),
                send__occurrence=OuterRef("entry"),
                kind__in=kinds,
            )
        )
    if step.condition == Step.Condition.IN_SEGMENT:
        return Exists(
            Membership.objects.filter(
                customer_id=OuterRef("customer_id"), segment_id=step.condition_segment_id
            )
        )
    if step.condition == Step.Condition.PURCHASED:
        return Exists(
            Purchase.objects.filter(
                customer_id=OuterRef("customer_id"), purchased_at__gte=OuterRef("entered_at")
            )
        )
    return Q(pk__in=[])


def _run_send(step: Step, rows: list[tuple], now: dt.datetime) -> int | None:
    """Write each enrolment's send row (one per campaign, customer and entry: a retry adds
    nothing) and record whether the message is on its way or why not. Returns the campaign to
    dispatch."""
    campaign = step.campaign
    by_entry: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        by_entry[row[4]].append(row[2])
    for entry, customer_ids in by_entry.items():
        insert_sends(
            *classified_sql(
                campaign,
                now=now,
                customers=Customer.objects.filter(pk__in=customer_ids),
                occurrence=entry,
            )
        )
    outcome = {
        (customer_id, occurrence): (status, reason)
        for customer_id, occurrence, status, reason in Send.objects.filter(
            campaign=campaign, customer_id__in=[r[2] for r in rows]
        ).values_list("customer_id", "occurrence", "status", "reason")
    }
    events = []
    for row in rows:
        status, reason = outcome.get((row[2], row[4]), (Send.Status.SKIPPED, "no message"))
        if status in (Send.Status.EXCLUDED, Send.Status.SKIPPED, Send.Status.CANCELLED):
            kind, detail = EnrolmentEvent.Kind.NOT_SENT, reason
        else:
            kind, detail = EnrolmentEvent.Kind.SENT, f"“{step.subject}”"
        events.append(
            EnrolmentEvent(
                enrolment_id=row[0], step_id=step.pk, kind=kind, at=now, detail=detail[:300]
            )
        )
    EnrolmentEvent.objects.bulk_create(events)
    return campaign.pk


def _run_task(step: Step, journey: Journey, rows: list[tuple], now: dt.datetime) -> None:
    """A follow-up for each customer's owner (the journey's author when there is none), shown on
    the owner's dashboard."""
    from deals.models import Activity

    owners = dict(
        Customer.objects.filter(pk__in=[r[2] for r in rows]).values_list("pk", "owner_id")
    )
    due = timezone.localdate(now) + dt.timedelta(days=step.task_due_days)
    Activity.objects.bulk_create(
        [
            Activity(
                kind=Activity.Kind.TASK,
                subject=step.task_subject[:200],
                body=f"From the journey “{journey.name}”.",
                customer_id=row[2],
                assignee_id=owners.get(row[2]) or journey.created_by_id,
                due_date=due,
                occurred_at=now,
            )
            for row in rows
        ]
    )
    _events(((r[0], step.pk) for r in rows), EnrolmentEvent.Kind.TASK, now, step.task_subject)


def _round(*, now: dt.datetime, batch_size: int) -> tuple[int, set[int]]:
    """One batch of due enrolments, each moved one step on, in one transaction."""
    campaigns: set[int] = set()
    with transaction.atomic():
        rows = list(
            Enrolment.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(state=Enrolment.State.ACTIVE, due_at__lte=now)
            .filter(Q(is_test=True) | Q(journey__status=Journey.Status.ACTIVE))
            .order_by("due_at")
            .values_list(
                "pk", "journey_id", "customer_id", "step_id", "entry", "entered_at", "is_test"
            )[:batch_size]
        )
        if not rows:
            return 0, campaigns
        journeys = Journey.objects.in_bulk({r[1] for r in rows})
        steps_of: dict[int, list[Step]] = defaultdict(list)
        for step in Step.objects.filter(journey_id__in=journeys).select_related("campaign"):
            steps_of[step.journey_id].append(step)
        steps = {s.pk: s for group in steps_of.values() for s in group}
        ended = _exits(rows, journeys, now)
        on_step: dict[int | None, list[tuple]] = defaultdict(list)
        for row in rows:
            if row[0] not in ended:
                on_step[row[3]].append(row)
        for step_id, group in on_step.items():
            step = steps.get(step_id)
            if step is None:
                _move(group, None, now)
                continue
            journey = journeys[step.journey_id]
            ordered = steps_of[step.journey_id]
            following = _next_in_order(ordered, step)
            if step.kind == Step.Kind.SEND:
                campaigns.add(_run_send(step, group, now))
                _move(group, following, now)
            elif step.kind == Step.Kind.WAIT:
                _events(((r[0], step.pk) for r in group), EnrolmentEvent.Kind.WAITED, now)
                _move(group, following, now)
            elif step.kind == Step.Kind.SPLIT:
                yes = set(
                    Enrolment.objects.filter(pk__in=[r[0] for r in group])
                    .filter(split_condition(step, ordered))
                    .values_list("pk", flat=True)
                )
                yes_rows = [r for r in group if r[0] in yes]
                no_rows = [r for r in group if r[0] not in yes]
                _events(((r[0], step.pk) for r in yes_rows), EnrolmentEvent.Kind.BRANCH_YES, now)
                _events(((r[0], step.pk) for r in no_rows), EnrolmentEvent.Kind.BRANCH_NO, now)
                _move(yes_rows, steps.get(step.yes_step_id) or following, now)
                _move(no_rows, steps.get(step.no_step_id) or following, now)
            elif step.kind == Step.Kind.TASK:
                _run_task(step, journey, group, now)
                _move(group, following, now)
            else:
                _end(
                    [r[0] for r in group],
                    state=Enrolment.State.COMPLETED,
                    reason="reached an end step",
                    kind=EnrolmentEvent.Kind.COMPLETED,
                    step_id=step.pk,
                    now=now,
                )
        if campaigns:
            from campaigns.services import campaign_dispatch_queue

            for campaign_id in campaigns:
                transaction.on_commit(
                    lambda pk=campaign_id: campaign_dispatch_queue(campaign_id=pk)
                )
    return len(rows), campaigns


def enrolments_advance_due(
    *, now: dt.datetime | None = None, batch_size: int | None = None, max_rounds: int = 50
) -> int:
    """Move every due enrolment on, step by step, until none is due (or `max_rounds`: a journey
    whose branches loop without a wait cannot keep a worker forever). Returns the moves."""
    size = batch_size or settings.JOURNEYS_BATCH_SIZE
    total = 0
    for _ in range(max_rounds):
        moved, _campaigns = _round(now=now or timezone.now(), batch_size=size)
        total += moved
        if not moved:
            break
    return total


def _enrol_sql(journey: Journey, candidates: QuerySet[Customer], *, now, since) -> tuple[str, list]:
    inner, params = candidates.order_by().values("pk").query.sql_with_params()
    table = Enrolment._meta.db_table
    first = journey.steps.order_by("position", "pk").values_list("pk", flat=True).first()
    policy = {
        Journey.Reentry.ONCE: "NOT COALESCE(prev.any_real, false)",
        Journey.Reentry.AFTER_DAYS: "(prev.last_entered IS NULL OR prev.last_entered < %s)",
        Journey.Reentry.ALWAYS: "true",
    }[journey.reentry]
    policy_params = (
        [now - dt.timedelta(days=journey.reentry_days)]
        if journey.reentry == Journey.Reentry.AFTER_DAYS
        else []
    )
    first_wait = step_wait(Step.objects.filter(pk=first).first(), is_test=False) if first else None
    sql = f"""
INSERT INTO {table} (journey_id, customer_id, entry, is_test, state, step_id, step_since, due_at,
                     entered_at, end_reason)
SELECT %s, c.pk, COALESCE(prev.max_entry, 0) + 1, false, 'active', %s, %s, %s, %s, ''
FROM ({inner}) c
JOIN {Customer._meta.db_table} cu ON cu.id = c.pk AND cu.erased_at IS NULL
LEFT JOIN (
  SELECT customer_id, max(entry) AS max_entry,
         max(entered_at) FILTER (WHERE NOT is_test) AS last_entered,
         bool_or(NOT is_test) AS any_real, bool_or(state = 'active') AS any_active
  FROM {table} WHERE journey_id = %s GROUP BY customer_id
) prev ON prev.customer_id = c.pk
WHERE {policy}
  AND NOT COALESCE(prev.any_active, false)
  AND (prev.last_entered IS NULL OR prev.last_entered < %s)
ON CONFLICT DO NOTHING
RETURNING id, step_id"""
    return sql, [
        journey.pk,
        first,
        now,
        now + (first_wait or dt.timedelta(0)),
        now,
        *params,
        journey.pk,
        *policy_params,
        since,
    ]


def enrolments_insert(
    *, journey: Journey, customers: QuerySet[Customer], now: dt.datetime, since: dt.datetime
) -> int:
    """Enrol the customers the re-entry policy lets in (one statement) and record their entry."""
    sql, params = _enrol_sql(journey, customers, now=now, since=since)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        created = cursor.fetchall()
    events = []
    for pk, step_id in created:
        events.append(EnrolmentEvent(enrolment_id=pk, kind=EnrolmentEvent.Kind.ENTERED, at=now))
        if step_id:
            events.append(
                EnrolmentEvent(
                    enrolment_id=pk, step_id=step_id, kind=EnrolmentEvent.Kind.REACHED, at=now
                )
            )
    EnrolmentEvent.objects.bulk_create(events)
    return len(created)


def triggered_customers(journey: Journey, *, after: dt.datetime, until: dt.datetime):
    """The customers whose trigger fired in (after, until]."""
    if journey.trigger == Journey.Trigger.SEGMENT and journey.trigger_segment_id:
        from segments.selectors import segment_joiners

        return segment_joiners(
            segments=Segment.objects.filter(pk=journey.trigger_segment_id), after=after, until=until
        )
    if journey.trigger == Journey.Trigger.EVENT and journey.trigger_event_type:
        return Customer.objects.filter(
            Exists(
                Event.objects.filter(
                    customer_id=OuterRef("pk"),
                    type=journey.trigger_event_type,
                    occurred_at__gt=after,
                    occurred_at__lte=until,
                )
            )
        )
    return None


def journey_enrol_triggered(*, journey: Journey, now: dt.datetime | None = None) -> int:
    """Turn the journey's new triggers into enrolments; returns how many."""
    now = now or timezone.now()
    with transaction.atomic():
        journey = Journey.objects.select_for_update().get(pk=journey.pk)
        if journey.status != Journey.Status.ACTIVE:
            return 0
        start = journey.trigger_cursor or journey.activated_at or now
        # Never before the journey was (last) activated: who joined earlier does not enter.
        after = max(start - TRIGGER_OVERLAP, journey.activated_at or start)
        customers = triggered_customers(journey, after=after, until=now)
        added = 0
        if customers is not None:
            added = enrolments_insert(journey=journey, customers=customers, now=now, since=after)
        Journey.objects.filter(pk=journey.pk).update(trigger_cursor=now)
    return added


def journeys_run_due(*, now: dt.datetime | None = None) -> dict[str, int]:
    """What beat runs every few seconds: new enrolments for every active journey, then every
    due enrolment moved on."""
    enrolled = 0
    for journey in Journey.objects.filter(status=Journey.Status.ACTIVE).exclude(
        trigger=Journey.Trigger.MANUAL
    ):
        enrolled += journey_enrol_triggered(journey=journey, now=now)
    return {"enrolled": enrolled, "moved": enrolments_advance_due(now=now)}
