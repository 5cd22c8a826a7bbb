"""Bulk actions over the rows of a list (deals, customers, accounts): one machinery for every list.

An app registers its list from its AppConfig.ready() (`bulk_list_register`): how to find the rows
an actor picked (ticked ids, or every row matching the list's filter, always within what the
actor may see), how to export them, and its actions. A higher app may add an action to a lower
app's list (`bulk_action_register`: segments adds "add to a static segment" to the customers).

One request per action (page or API). An export streams at once; every other action is checked,
asked for on the page (crm.confirm), then recorded as a BulkJob and run by a Celery task: the rows
are found again under the author's rules when the job runs, their ids read once, and the action
applied set-based in batches of BATCH rows (one statement per table and batch, never a loop of
saves), each batch committed with the job's progress so a person follows it.
"""

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from crm.models import BulkJob

EXPORT = "export"
MAX_IDS = 10_000
BATCH = 25_000


@dataclass(frozen=True)
class BulkAction:
    """An action on a list's rows.

    check(actor, params) -> the cleaned params (JSON), or raises ValidationError (naming the
    field) or PermissionDenied; apply(ids, params, actor) -> rows changed, set-based over one
    batch, with the audit row where personal data changes.
    """

    name: str
    label: str
    check: Callable[[AbstractBaseUser, Mapping], dict]
    apply: Callable[[list[int], dict, AbstractBaseUser], int]
    title: str = ""
    # The confirmation's button, with {count} and {noun}: "Delete {count} {noun}".
    button: str = "{label} ({count} {noun})"
    warning: str = ""
    danger: bool = False
    # The facts a confirmation shows about the cleaned params, e.g. [("New owner", "sam")].
    describe: Callable[[dict], list[tuple[str, str]]] = lambda params: []
    # The one thing the action needs (owner, tag, segment) and the form field that asks for it
    # on the page, made for the person who sees the list.
    param: str = ""
    field: Callable[[AbstractBaseUser], object] | None = None


@dataclass
class BulkList:
    """A list whose rows can be acted on in bulk.

    targets(actor, ids, query) -> the rows `ids` (else every row matching `query`) name, among
    those the actor may see; clean_filter(query) -> the query's valid filter fields, or raises
    ValidationError; export(actor, rows) -> CSV lines of what the actor may read.
    """

    name: str
    noun: str
    list_url: str
    targets: Callable[[AbstractBaseUser, list[int] | None, Mapping | None], QuerySet]
    clean_filter: Callable[[Mapping], dict]
    export: Callable[[AbstractBaseUser, QuerySet], Iterator[str]]
    may_read: Callable[[AbstractBaseUser], bool]
    actions: dict[str, BulkAction] = field(default_factory=dict)


_LISTS: dict[str, BulkList] = {}


def bulk_list_register(bulk_list: BulkList) -> None:
    _LISTS[bulk_list.name] = bulk_list


def bulk_action_register(list_name: str, action: BulkAction) -> None:
    _LISTS[list_name].actions[action.name] = action


def bulk_list_get(name: str) -> BulkList:
    if name not in _LISTS:
        raise ValidationError({"list": f"Choose one of: {', '.join(sorted(_LISTS))}."})
    return _LISTS[name]


def bulk_action_choices(bulk_list: BulkList) -> list[tuple[str, str]]:
    return [(a.name, a.label) for a in bulk_list.actions.values()] + [(EXPORT, "Export as CSV")]


def bulk_clean_ids(ids, *, noun: str = "row") -> list[int]:
    if not isinstance(ids, list | tuple) or not ids:
        raise ValidationError({"ids": f"Tick at least one {noun}, or choose every one matching."})
    if len(ids) > MAX_IDS:
        raise ValidationError(
            {"ids": f"At most {MAX_IDS} ids at once: choose every {noun} matching the filter."}
        )
    cleaned = []
    for value in ids:
        text = str(value)
        if not text.isdigit() or len(text) > 12:
            raise ValidationError({"ids": f"{text[:20]!r} is not a {noun} number."})
        cleaned.append(int(text))
    return sorted(set(cleaned))


def bulk_check(
    *, actor: AbstractBaseUser, bulk_list: BulkList, action: str, params: Mapping | None = None
) -> dict:
    """The action's cleaned params, once the actor may take it; an export needs reading only."""
    if not bulk_list.may_read(actor):
        raise PermissionDenied(f"Your role does not open the {bulk_list.noun}.")
    if action == EXPORT:
        return {}
    if action not in bulk_list.actions:
        choices = ", ".join(name for name, _ in bulk_action_choices(bulk_list))
        raise ValidationError({"action": f"Choose one of: {choices}."})
    return bulk_list.actions[action].check(actor, params or {})


def bulk_targets(
    *,
    actor: AbstractBaseUser,
    bulk_list: BulkList,
    ids: list[int] | None,
    query: Mapping | None,
) -> QuerySet:
    return bulk_list.targets(actor, ids, None if ids is not None else (query or {}))


def bulk_job_create(
    *,
    actor: AbstractBaseUser,
    list_name: str,
    action: str,
    ids: list | None = None,
    query: Mapping | None = None,
    params: Mapping | None = None,
) -> BulkJob:
    """Check the action and the selection, record the job and queue it once this commits."""
    from crm.tasks import bulk_job_run_task

    bulk_list = bulk_list_get(list_name)
    if action == EXPORT:
        raise ValidationError({"action": "An export is answered at once, not queued."})
    cleaned = bulk_check(actor=actor, bulk_list=bulk_list, action=action, params=params)
    by_filter = ids is None
    ids = [] if by_filter else bulk_clean_ids(ids, noun=bulk_list.noun.rstrip("s"))
    query = bulk_list.clean_filter(query or {}) if by_filter else {}
    matched = bulk_targets(
        actor=actor, bulk_list=bulk_list, ids=None if by_filter else ids, query=query
    ).count()
    with transaction.atomic():
        job = BulkJob.objects.create(
            list_name=list_name,
            action=action,
            params=cleaned,
            ids=ids,
            by_filter=by_filter,
            filter=query,
            matched=matched,
            created_by=actor,
        )
        transaction.on_commit(lambda: bulk_job_run_task.delay(job.pk))
    return job


def _fail(job: BulkJob, error: Exception) -> None:
    messages = getattr(error, "messages", None) or [str(error)]
    BulkJob.objects.filter(pk=job.pk).update(
        status=BulkJob.Status.FAILED, message=" ".join(messages), finished_at=timezone.now()
    )


def bulk_job_run(*, job: BulkJob, batch: int = BATCH) -> BulkJob:
    """Apply the job batch by batch, each batch one statement per table, committed with the
    progress; the rows are the author's to change when the job runs, not when it was asked."""
    BulkJob.objects.filter(pk=job.pk).update(
        status=BulkJob.Status.RUNNING, started_at=timezone.now(), progress_done=0, changed=0
    )
    actor = job.created_by
    changed = done = 0
    try:
        if actor is None:
            raise PermissionDenied("The person who asked for this is no longer here.")
        bulk_list = bulk_list_get(job.list_name)
        params = bulk_check(actor=actor, bulk_list=bulk_list, action=job.action, params=job.params)
        action = bulk_list.actions[job.action]
        targets = bulk_targets(
            actor=actor,
            bulk_list=bulk_list,
            ids=None if job.by_filter else job.ids,
            query=job.filter if job.by_filter else None,
        )
        ids = list(targets.order_by("pk").values_list("pk", flat=True))
        BulkJob.objects.filter(pk=job.pk).update(progress_total=len(ids))
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            with transaction.atomic():
                changed += action.apply(chunk, params, actor)
                done += len(chunk)
                BulkJob.objects.filter(pk=job.pk).update(progress_done=done, changed=changed)
    except (PermissionDenied, ValidationError) as error:
        _fail(job, error)
    except Exception as error:
        # The batches done so far stay done (each committed); say so, and let the worker log it.
        _fail(job, RuntimeError(f"Stopped after {done} of the rows: {type(error).__name__}."))
        raise
    else:
        BulkJob.objects.filter(pk=job.pk).update(
            status=BulkJob.Status.DONE,
            changed=changed,
            progress_done=done,
            finished_at=timezone.now(),
        )
    job.refresh_from_db()
    return job


def bulk_jobs_visible_to(user: AbstractBaseUser) -> QuerySet[BulkJob]:
    """A person follows their own bulk jobs; administrators every one."""
    jobs = BulkJob.objects.select_related("created_by")
    return jobs if user.is_superuser else jobs.filter(created_by_id=user.pk)
