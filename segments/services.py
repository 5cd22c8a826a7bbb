"""Every write on segments: create, edit, refresh (set-based), static members, deletion."""

import csv
import datetime as dt
import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.text import slugify

from crm.text import text_problem
from customers.importing.reading import csv_problem, file_not_text
from customers.importing.values import shown
from customers.marks import customers_mark, customers_mark_where
from customers.models import Customer
from customers.selectors import customer_fields_hidden_from
from privacy.models import Purpose
from segments.compiler import compile_rule_sql
from segments.models import Membership, MembershipChange, RefreshRun, Segment
from segments.rules import (
    RULE_VERSION,
    RuleError,
    RuleInvalid,
    rule_changes_with_time,
    segment_references,
    validate,
)

BATCH = 5000


def segment_rule_errors(
    *, rule: Any, segment: Segment | None = None, actor: AbstractBaseUser | None = None
) -> list[RuleError]:
    """Validate a rule against the stored segments and purposes (existence and cycles) and
    against what the author (`actor`; None for the system) may read of customers."""
    names: dict[int, str] = {}

    def lookup(segment_id: int) -> Segment | None:
        found = Segment.objects.filter(pk=segment_id).only("pk", "name").first()
        if found is not None:
            names[found.pk] = found.name
        return found

    def dependencies(segment_id: int) -> Iterable[int]:
        if segment is not None and segment_id == segment.pk:
            return segment_references(rule)
        stored = Segment.objects.filter(pk=segment_id).values_list("rule", flat=True).first()
        return segment_references(stored or {})

    def name(segment_id: int) -> str:
        if segment is not None and segment_id == segment.pk:
            return f"{segment.name} (#{segment.pk})"
        if segment_id not in names:
            names[segment_id] = (
                Segment.objects.filter(pk=segment_id).values_list("name", flat=True).first() or "?"
            )
        return f"{names[segment_id]} (#{segment_id})"

    return validate(
        rule,
        segment_id=segment.pk if segment is not None else None,
        segment_lookup=lookup,
        dependencies=dependencies,
        segment_name=name,
        purposes=Purpose.objects.values_list("code", flat=True),
        unreadable=customer_fields_hidden_from(actor) if actor is not None else (),
    )


def _check(
    *, kind: str, rule: Any, segment: Segment | None, actor: AbstractBaseUser | None
) -> None:
    if kind == Segment.Kind.STATIC:
        if rule not in (None, {}, ""):
            raise RuleInvalid([RuleError("rule", "a static segment has no rule")])
        return
    errors = segment_rule_errors(rule=rule, segment=segment, actor=actor)
    if errors:
        raise RuleInvalid(errors)


def _unique_slug(name: str, exclude_pk: int | None = None) -> str:
    base = slugify(name)[:180] or "segment"
    slug, n = base, 2
    while Segment.objects.filter(slug=slug).exclude(pk=exclude_pk).exists():
        slug, n = f"{base}-{n}", n + 1
    return slug


def segment_create(
    *,
    name: str,
    owner: AbstractBaseUser | None,
    kind: str = Segment.Kind.RULE,
    rule: Any = None,
    description: str = "",
    slug: str = "",
    refresh_interval: dt.timedelta | None = None,
    min_size_warning: int = 100,
    actor: AbstractBaseUser | None = None,
) -> Segment:
    """Create a rule or static segment; a rule is validated (paths, cycles, and the fields the
    author `actor` may read) before it is stored."""
    if not name.strip():
        raise ValidationError({"name": "required"})
    if kind not in Segment.Kind.values:
        raise ValidationError({"kind": f"expected one of {', '.join(Segment.Kind.values)}"})
    rule = {} if kind == Segment.Kind.STATIC else rule
    _check(kind=kind, rule=rule, segment=None, actor=actor)
    if slug and Segment.objects.filter(slug=slug).exists():
        raise ValidationError({"slug": "a segment with this slug exists"})
    interval = refresh_interval if kind == Segment.Kind.RULE else None
    return Segment.objects.create(
        name=name.strip(),
        slug=slug or _unique_slug(name),
        description=description,
        kind=kind,
        rule=rule,
        rule_version=RULE_VERSION,
        refresh_interval=interval,
        next_refresh_at=timezone.now() if interval else None,
        min_size_warning=min_size_warning,
        owner=owner if owner is not None and owner.is_authenticated else None,
    )


_EDITABLE = ("name", "slug", "description", "rule", "refresh_interval", "min_size_warning", "owner")


def segment_update(
    *, segment: Segment, actor: AbstractBaseUser | None = None, **changes: Any
) -> Segment:
    """Change a segment's settings or rule; the membership changes at the next refresh. A rule
    is validated as segment_create does, for the author `actor`."""
    unknown = set(changes) - set(_EDITABLE)
    if unknown:
        raise ValidationError({key: "cannot be changed" for key in unknown})
    if "rule" in changes:
        _check(kind=segment.kind, rule=changes["rule"], segment=segment, actor=actor)
    if "name" in changes and not str(changes["name"]).strip():
        raise ValidationError({"name": "required"})
    if (
        changes.get("slug")
        and Segment.objects.filter(slug=changes["slug"]).exclude(pk=segment.pk).exists()
    ):
        raise ValidationError({"slug": "a segment with this slug exists"})
    if segment.kind == Segment.Kind.STATIC:
        changes.pop("refresh_interval", None)
    for key, value in changes.items():
        setattr(segment, key, value)
    fields = list(changes)
    if "rule" in changes:
        segment.rule_version = RULE_VERSION
        fields.append("rule_version")
    if "refresh_interval" in changes:
        segment.next_refresh_at = (
            (segment.last_refreshed_at or timezone.now()) + segment.refresh_interval
            if segment.refresh_interval
            else None
        )
        fields.append("next_refresh_at")
    segment.save(update_fields=[*fields, "updated_at"])
    return segment


def segment_delete(*, segment: Segment) -> None:
    """Delete a segment, unless another segment's rule refers to it."""
    users = [
        other
        for other in Segment.objects.filter(kind=Segment.Kind.RULE).exclude(pk=segment.pk)
        if segment.pk in segment_references(other.rule)
    ]
    if users:
        names = ", ".join(f"{s.name} (#{s.pk})" for s in users)
        raise ValidationError({"segment": f"used by the rule of {names}"})
    segment.delete()


# Refresh ------------------------------------------------------------------------------------


def _tables() -> tuple[str, str]:
    q = connection.ops.quote_name
    return q(Membership._meta.db_table), q(MembershipChange._meta.db_table)


def _diff(segment_id: int, run_id: int, at: Any, sql: str, params: list) -> tuple[int, int, int]:
    """The rule evaluated once into a temporary table, then one statement deletes the leavers
    and inserts the joiners.

    A joiner is one membership row (its join is on the row); a leaver is logged with the join it
    ends, so a refresh writes nothing for the members who stay. Joiners are inserted in customer
    order, as a scan of the customers would yield them: the indexes then grow at their right
    edge and the foreign-key checks at commit read the customers in order, not at random.
    """
    m, c = _tables()
    diff = f"""
        WITH gone AS (
            DELETE FROM {m} AS old WHERE old.segment_id = %s AND old.customer_id IN (
                SELECT customer_id FROM {m} WHERE segment_id = %s
                EXCEPT SELECT id FROM segment_wanted
            )
            RETURNING old.customer_id, old.since, old.run_id
        ),
        came AS (
            INSERT INTO {m} (segment_id, customer_id, since, run_id)
            SELECT %s, j.id, %s, %s FROM (
                SELECT id FROM segment_wanted
                EXCEPT SELECT customer_id FROM {m} WHERE segment_id = %s
            ) j
            ORDER BY j.id
            RETURNING 1
        ),
        logged AS (
            INSERT INTO {c} (segment_id, customer_id, run_id, change, at)
            SELECT %s, customer_id, run_id, 'joined', since FROM gone
            UNION ALL
            SELECT %s, customer_id, %s, 'left', %s FROM gone
        )
        SELECT (SELECT count(*) FROM segment_wanted), (SELECT count(*) FROM came),
               (SELECT count(*) FROM gone)
    """
    args = [
        *(segment_id, segment_id),  # gone
        *(segment_id, at, run_id, segment_id),  # came
        *(segment_id, segment_id, run_id, at),  # logged
    ]
    with connection.cursor() as cursor:
        # The rule runs with the planner's own choices (a nested loop over an index is often
        # its best plan). The diff then runs with nested loops off: the temporary table has no
        # statistics and the membership's lag behind a refresh that just changed many rows, and
        # a nested loop over either would be quadratic; the differences are EXCEPTs (hashed or
        # sorted set operations) and the one join a hash join.
        cursor.execute("DROP TABLE IF EXISTS segment_wanted")
        cursor.execute(f"CREATE TEMPORARY TABLE segment_wanted ON COMMIT DROP AS {sql}", params)
        cursor.execute("SET LOCAL enable_nestloop = off")
        cursor.execute(diff, args)
        size, joined, left = cursor.fetchone()
        cursor.execute("SET LOCAL enable_nestloop = on")
        cursor.execute("DROP TABLE segment_wanted")
    return size, joined, left


def membership_stays_end(
    *, cursor: Any, segment_id: int, run_id: int, at: Any, leaving: str, params: list
) -> int:
    """End the stays of the members matching `leaving` (SQL on the membership row `old`):
    log each leave with the join it ends, delete the rows; returns how many left."""
    m, c = _tables()
    # One statement: the deleted rows feed both log lines, so no lookup of the leavers among
    # millions of earlier changes (which the planner may do row by row after a big relabel).
    cursor.execute(
        f"WITH gone AS (DELETE FROM {m} AS old WHERE old.segment_id = %s AND {leaving} "
        "RETURNING old.segment_id, old.customer_id, old.run_id, old.since), "
        f"logged AS (INSERT INTO {c} (segment_id, customer_id, run_id, change, at) "
        "SELECT segment_id, customer_id, run_id, 'joined', since FROM gone "
        "UNION ALL SELECT segment_id, customer_id, %s, 'left', %s FROM gone) "
        "SELECT count(*) FROM gone",
        [segment_id, *params, run_id, at],
    )
    return cursor.fetchone()[0]


def segment_refresh(
    *,
    segment: Segment,
    trigger: str = RefreshRun.Trigger.MANUAL,
    run: RefreshRun | None = None,
    now: dt.datetime | None = None,
) -> RefreshRun:
    """Recompute membership set-based in one transaction and record who joined and who left.

    The segment row is locked for the whole diff, so the same segment never refreshes twice at
    once: a second refresh waits and then diffs against the first one's result.
    """
    if run is None:
        run = RefreshRun.objects.create(
            segment=segment, trigger=trigger, status=RefreshRun.Status.RUNNING
        )
    else:
        RefreshRun.objects.filter(pk=run.pk).update(
            status=RefreshRun.Status.RUNNING, started_at=timezone.now()
        )
    try:
        with transaction.atomic():
            locked = Segment.objects.select_for_update().get(pk=segment.pk)
            started = timezone.now()
            if locked.kind == Segment.Kind.STATIC:
                size, joined, left = locked.memberships.count(), 0, 0
            else:
                sql, params = compile_rule_sql(locked.rule, now=now or started)
                at = connection.ops.adapt_datetimefield_value(started)
                size, joined, left = _diff(locked.pk, run.pk, at, sql, params)
                if (joined or left) and segment_dependents(segment_id=locked.pk):
                    _mark_run_changes(run_id=run.pk, segment_id=locked.pk)
            finished = timezone.now()
            run.status = RefreshRun.Status.DONE
            run.started_at, run.finished_at, run.duration = started, finished, finished - started
            run.size, run.joined, run.left = size, joined, left
            run.save(
                update_fields=[
                    "status",
                    "started_at",
                    "finished_at",
                    "duration",
                    "size",
                    "joined",
                    "left",
                ]
            )
            locked.last_refreshed_at = finished
            locked.last_refresh_duration = finished - started
            locked.member_count = size
            locked.next_refresh_at = (
                finished + locked.refresh_interval if locked.refresh_interval else None
            )
            locked.save(
                update_fields=[
                    "last_refreshed_at",
                    "last_refresh_duration",
                    "member_count",
                    "next_refresh_at",
                ]
            )
    except Exception as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        RefreshRun.objects.filter(pk=run.pk).update(
            status=RefreshRun.Status.FAILED, finished_at=timezone.now(), message=reason[:2000]
        )
        raise
    segment.refresh_from_db()
    return run


def segment_dependents(*, segment_id: int) -> list[int]:
    """The rule segments whose rules refer to this segment (directly)."""
    rules = Segment.objects.filter(kind=Segment.Kind.RULE).exclude(pk=segment_id)
    return [
        pk for pk, rule in rules.values_list("pk", "rule") if segment_id in segment_references(rule)
    ]


def _mark_run_changes(*, run_id: int, segment_id: int) -> None:
    """Mark the customers a refresh moved in or out of a segment that other rules refer to, so
    the real-time worker re-evaluates them for those rules (customers.marks)."""
    m, c = _tables()
    customers_mark_where(
        select_ids=f"SELECT customer_id FROM {m} WHERE segment_id = %s AND run_id = %s "
        f"UNION ALL SELECT customer_id FROM {c} WHERE run_id = %s AND change = 'left'",
        params=[segment_id, run_id, run_id],
    )


def segments_in_dependency_order(segments: Iterable[Segment]) -> list[Segment]:
    """Segments ordered so that a segment comes after those its rule refers to."""
    pending = {s.pk: s for s in segments}
    ordered: list[Segment] = []
    visiting: set[int] = set()
    done: set[int] = set()

    def visit(segment: Segment) -> None:
        if segment.pk in done or segment.pk in visiting:
            return
        visiting.add(segment.pk)
        for ref in sorted(segment_references(segment.rule)):
            if ref in pending:
                visit(pending[ref])
        visiting.discard(segment.pk)
        done.add(segment.pk)
        ordered.append(segment)

    for segment in sorted(pending.values(), key=lambda s: s.pk):
        visit(segment)
    return ordered


def segment_refresh_many(
    *, segments: Iterable[Segment], trigger: str = RefreshRun.Trigger.MANUAL
) -> list[RefreshRun]:
    """Refresh several segments, dependencies first."""
    return [
        segment_refresh(segment=s, trigger=trigger) for s in segments_in_dependency_order(segments)
    ]


def segments_refresh_due(*, now: dt.datetime | None = None) -> list[RefreshRun]:
    """Refresh every rule segment whose interval has passed, in dependency order, and every rule
    segment without an interval whose rule changes with time alone (`rule_changes_with_time`:
    writes keep it up to date in real time, the clock does not) and whose last refresh is older
    than SEGMENTS_TIME_RULES_REFRESH_SECONDS."""
    now = now or timezone.now()
    rule_segments = Segment.objects.filter(kind=Segment.Kind.RULE)
    due = list(rule_segments.filter(next_refresh_at__lte=now))
    every = settings.SEGMENTS_TIME_RULES_REFRESH_SECONDS
    if every:
        stale = rule_segments.filter(refresh_interval__isnull=True).filter(
            Q(last_refreshed_at__isnull=True)
            | Q(last_refreshed_at__lte=now - dt.timedelta(seconds=every))
        )
        due += [s for s in stale if rule_changes_with_time(s.rule)]
    return segment_refresh_many(segments=due, trigger=RefreshRun.Trigger.SCHEDULE)


def segment_refresh_queue(
    *, segment: Segment, trigger: str = RefreshRun.Trigger.MANUAL
) -> RefreshRun:
    """Queue a refresh on a worker once the transaction commits (in-process when no broker is
    configured); the run reports its state. A refresh that fails, or a broker that does not
    answer, leaves the run failed or queued (then stuck) for the page to show; it never fails
    the request that queued it."""
    from segments.tasks import segment_refresh_task

    run = RefreshRun.objects.create(segment=segment, trigger=trigger, task_id=str(uuid.uuid4()))
    transaction.on_commit(
        lambda: segment_refresh_task.apply_async(
            args=[segment.pk], kwargs={"trigger": trigger, "run_id": run.pk}, task_id=run.task_id
        ),
        robust=True,
    )
    return run


def segment_refresh_after_save(
    *, segment: Segment, previous_rule: Any = None, created: bool = False
) -> RefreshRun | None:
    """Queue a refresh (trigger "edit") of a rule segment just created or whose rule changed, so
    a saved segment has its members without anyone asking for a refresh. None when there is
    nothing to recompute: a static segment, or an edit that left the rule as it was."""
    if segment.kind != Segment.Kind.RULE or (not created and segment.rule == previous_rule):
        return None
    return segment_refresh_queue(segment=segment, trigger=RefreshRun.Trigger.EDIT)


# Static segments ----------------------------------------------------------------------------


def _require_static(segment: Segment) -> None:
    if segment.kind != Segment.Kind.STATIC:
        raise ValidationError({"segment": "members are added by hand only to static segments"})


def _change_members(*, segment: Segment, customer_ids: list[int], change: str) -> RefreshRun:
    _require_static(segment)
    run = RefreshRun.objects.create(
        segment=segment, trigger=RefreshRun.Trigger.MEMBERS, status=RefreshRun.Status.RUNNING
    )
    started = timezone.now()
    with transaction.atomic():
        Segment.objects.select_for_update().get(pk=segment.pk)
        count = 0
        for i in range(0, len(customer_ids), BATCH):
            batch = customer_ids[i : i + BATCH]
            current = Membership.objects.filter(segment=segment, customer_id__in=batch)
            if change == MembershipChange.Change.JOINED:
                members = set(current.values_list("customer_id", flat=True))
                existing = set(Customer.objects.filter(pk__in=batch).values_list("pk", flat=True))
                joiners = [
                    Membership(segment=segment, customer_id=c, since=started, run=run)
                    for c in sorted(existing - members)
                ]
                Membership.objects.bulk_create(joiners)
                count += len(joiners)
            else:
                stays = list(
                    current.order_by("customer_id").values_list("customer_id", "since", "run_id")
                )
                MembershipChange.objects.bulk_create(_ended(segment, stays, run, started))
                current.delete()
                count += len(stays)
        if count and segment_dependents(segment_id=segment.pk):
            customers_mark(customer_ids=customer_ids)
        size = segment.memberships.count()
        finished = timezone.now()
        RefreshRun.objects.filter(pk=run.pk).update(
            status=RefreshRun.Status.DONE,
            started_at=started,
            finished_at=finished,
            duration=finished - started,
            size=size,
            joined=count if change == MembershipChange.Change.JOINED else 0,
            left=count if change == MembershipChange.Change.LEFT else 0,
        )
        Segment.objects.filter(pk=segment.pk).update(
            member_count=size, last_refreshed_at=finished, last_refresh_duration=finished - started
        )
    segment.refresh_from_db()
    run.refresh_from_db()
    return run


def _ended(
    segment: Segment,
    stays: list[tuple[int, dt.datetime, int | None]],
    run: RefreshRun,
    at: dt.datetime,
) -> list[MembershipChange]:
    """The log rows of stays that end now: each leave, with the join it ends."""
    rows = []
    for customer_id, since, joined_in in stays:
        rows.append(
            MembershipChange(
                segment=segment,
                customer_id=customer_id,
                run_id=joined_in,
                change="joined",
                at=since,
            )
        )
        rows.append(
            MembershipChange(
                segment=segment, customer_id=customer_id, run=run, change="left", at=at
            )
        )
    return rows


def _ids(customers: Iterable[int] | QuerySet) -> list[int]:
    if isinstance(customers, QuerySet):
        return list(customers.order_by().values_list("pk", flat=True))
    return sorted({int(c) for c in customers})


def segment_add_members(*, segment: Segment, customers: Iterable[int] | QuerySet) -> RefreshRun:
    """Add customers (ids or a queryset, e.g. a list page selection) to a static segment."""
    return _change_members(segment=segment, customer_ids=_ids(customers), change="joined")


def segment_remove_members(*, segment: Segment, customers: Iterable[int] | QuerySet) -> RefreshRun:
    """Remove customers from a static segment."""
    return _change_members(segment=segment, customer_ids=_ids(customers), change="left")


@dataclass
class CsvMembersReport:
    """What a CSV of emails or external ids matched, and the lines that matched no one."""

    run: RefreshRun | None = None
    matched: int = 0
    unmatched: list[tuple[int, str]] = field(default_factory=list)


def _may_name_a_customer(value: str) -> bool:
    """Whether a value could be a stored email or external id: the database holds no NUL or
    lone surrogate, and nothing longer than an email may be."""
    return len(value) <= 254 and text_problem(value) is None


def segment_members_from_csv(
    *, segment: Segment, content: bytes | str, remove: bool = False
) -> CsvMembersReport:
    """Add (or remove) the customers a CSV names by email or external id, one per line.

    The first column of each line is used; a header `email` or `external_id` is skipped.
    """
    _require_static(segment)
    if isinstance(content, bytes):
        not_text = file_not_text(content[:16])
        if not_text:
            raise ValidationError({"file": not_text})
    text = content.decode("utf-8-sig", errors="replace") if isinstance(content, bytes) else content
    wanted: list[tuple[int, str]] = []
    report = CsvMembersReport()
    # Universal newlines: lines may end in CR alone, as old Mac files do.
    rows = csv.reader(io.StringIO(text, newline=None))
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ValidationError(
                {"file": f"line {rows.line_num}: not valid CSV ({csv_problem(exc)})"}
            ) from None
        number = rows.line_num
        value = row[0].strip() if row else ""
        if not value or (number == 1 and value.lower() in ("email", "external_id", "id")):
            continue
        if not _may_name_a_customer(value):
            report.unmatched.append((number, shown(value)))
            continue
        wanted.append((number, value))
    found: dict[str, int] = {}
    values = [v for _, v in wanted]
    for i in range(0, len(values), BATCH):
        batch = values[i : i + BATCH]
        lowered = [v.lower() for v in batch]
        for pk, email in (
            Customer.objects.annotate(email_lower=Lower("email"))
            .filter(email_lower__in=lowered)
            .values_list("pk", "email_lower")
        ):
            found[email] = pk
        for pk, external_id in Customer.objects.filter(external_id__in=batch).values_list(
            "pk", "external_id"
        ):
            found.setdefault(external_id, pk)
    ids: set[int] = set()
    for number, value in wanted:
        pk = found.get(value.lower()) or found.get(value)
        if pk is None:
            report.unmatched.append((number, shown(value)))
        else:
            ids.add(pk)
    report.unmatched.sort()
    report.matched = len(ids)
    change = segment_remove_members if remove else segment_add_members
    report.run = change(segment=segment, customers=ids)
    return report
