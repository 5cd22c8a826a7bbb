"""Erasure: delete or anonymise everything held on a person, across every registered model, in
one transaction; remove their mentions from free text anywhere (privacy.mentions); suppress
their addresses; log the erasure without personal data so it can be re-applied after a database
restore. Bulk erasures (retention, re-applying the log) go by batches that scrub the stored files
and the free text once for the whole batch."""

import datetime as dt
import json
from collections.abc import Iterable
from pathlib import Path

from django.conf import settings
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models.expressions import BaseExpression, Combinable
from django.utils import timezone

from customers.importing.stored_files import ErasedAddresses
from customers.marks import customers_mark
from customers.models import Customer
from privacy.audit import audit_record
from privacy.mentions import mentions_erase
from privacy.models import DataSubjectRequest, ErasureLog, Suppression
from privacy.registry import PersonalData, personal_data_files, personal_data_models
from privacy.suppression import email_hash, phone_hash, suppression_add

ERASED_SOURCE = "erased"
# People per transaction in a bulk erasure: the stored files are read once per batch.
ERASURE_BATCH_SIZE = 200


def _anonymise_values(entry: PersonalData) -> dict:
    values = {}
    for name, value in entry.anonymise.items():
        if callable(value) and not isinstance(value, BaseExpression | Combinable):
            value = value()
        values[name] = value
    return values


def _erase_entry(entry: PersonalData, customer_id: int) -> int:
    rows = entry.rows_for(customer_id)
    if entry.erase_filter is not None:
        rows = rows.filter(entry.erase_filter)
    # Plain filters on the primary key: distinct() joins cannot be updated or deleted directly.
    rows = entry.model._base_manager.filter(pk__in=list(rows.values_list("pk", flat=True)))
    if callable(entry.erase):
        entry.erase(rows)
        return 0
    if entry.erase == "delete":
        # models.QuerySet.delete, not the model's own: the consent ledger refuses deletes from the
        # application, and erasure is the one place the law requires them.
        return models.QuerySet.delete(rows)[0]
    if entry.erase == "anonymise":
        return models.QuerySet.update(rows, **_anonymise_values(entry))
    return 0


def _erasure_order(entries: list[PersonalData]) -> list[PersonalData]:
    """Models that point at other registered models are erased first (children before parents)."""
    labels = {e.label for e in entries}
    depth: dict[str, int] = {}

    def level(model, seen=()) -> int:
        label = model._meta.label_lower
        if label in depth:
            return depth[label]
        parents = [
            f.related_model
            for f in model._meta.concrete_fields
            if f.is_relation
            and f.related_model is not None
            and f.related_model._meta.label_lower in labels
            and f.related_model._meta.label_lower not in seen
            and f.related_model is not model
        ]
        depth[label] = 1 + max((level(p, (*seen, label)) for p in parents), default=0)
        return depth[label]

    return sorted(entries, key=lambda e: (e.model is Customer, -level(e.model), e.label))


def erasure_log_append(log: ErasureLog) -> None:
    """Append the erasure to the log file outside the database (ids and hashes only)."""
    path = Path(settings.PRIVACY_ERASURE_LOG_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = {
        "customer_id": log.customer_id,
        "email_hash": log.email_hash,
        "phone_hash": log.phone_hash,
        "reason": log.reason,
        "request_id": log.request_id,
        "erased_at": log.erased_at.isoformat(),
    }
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(line) + "\n")


def _traces_scrub(customers: list[Customer]) -> None:
    # Files and free text first, while the rows still say who the people are; a failure aborts
    # the erasure rather than report it done with traces left in storage or in other rows.
    for files in personal_data_files():
        files.scrub_all(customers)
    mentions_erase(customers=customers)


def _rows_erase(
    customer: Customer,
    *,
    actor: AbstractBaseUser | None,
    reason: str,
    request: DataSubjectRequest | None,
    suppress: bool,
    write_log: bool,
) -> ErasureLog | None:
    """Erase one locked customer's rows, suppress, audit and log (the files are scrubbed)."""
    hashes = {
        Suppression.Kind.EMAIL: email_hash(customer.email),
        Suppression.Kind.PHONE: phone_hash(customer.phone),
    }
    for entry in _erasure_order(personal_data_models()):
        _erase_entry(entry, customer.pk)
    LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
    ).delete()
    if suppress:
        suppression_add(reason=reason, hashes=hashes)
    audit_record(
        actor=actor,
        action="erase",
        object_kind="customer",
        object_id=customer.pk,
        details={"request": request.pk if request else None, "reason": reason},
    )
    if not write_log:
        return None
    log = ErasureLog.objects.create(
        customer_id=customer.pk,
        email_hash=hashes[Suppression.Kind.EMAIL],
        phone_hash=hashes[Suppression.Kind.PHONE],
        reason=reason,
        request_id=request.pk if request else None,
        actor_id=actor.pk if actor is not None and actor.is_authenticated else None,
        erased_at=timezone.now(),
    )
    transaction.on_commit(lambda: erasure_log_append(log))
    return log


def customer_erase(
    *,
    customer: Customer,
    actor: AbstractBaseUser | None = None,
    reason: str = Suppression.Reason.ERASURE,
    request: DataSubjectRequest | None = None,
    suppress: bool = True,
    write_log: bool = True,
) -> ErasureLog | None:
    """Erase one person across the registry in one transaction; purchases stay, anonymised."""
    with transaction.atomic():
        # Marked for segments first, before the row is locked (see customers.marks).
        customers_mark(customer_ids=[customer.pk])
        customer = Customer.objects.select_for_update().filter(pk=customer.pk).first()
        if customer is None:
            return None
        _traces_scrub([customer])
        return _rows_erase(
            customer,
            actor=actor,
            reason=reason,
            request=request,
            suppress=suppress,
            write_log=write_log,
        )


def customers_erase(
    *,
    customer_ids: Iterable[int],
    actor: AbstractBaseUser | None = None,
    reason: str = Suppression.Reason.ERASURE,
    suppress: bool = True,
    write_log: bool = True,
    batch_size: int = ERASURE_BATCH_SIZE,
) -> int:
    """Erase many people, a transaction per batch that scrubs the stored files once for the
    whole batch (not once per person); returns the number erased."""
    ids = sorted(set(customer_ids))
    erased = 0
    for start in range(0, len(ids), batch_size):
        with transaction.atomic():
            customers_mark(customer_ids=ids[start : start + batch_size])
            customers = list(
                Customer.objects.select_for_update()
                .filter(pk__in=ids[start : start + batch_size])
                .order_by("pk")
            )
            _traces_scrub(customers)
            for customer in customers:
                _rows_erase(
                    customer,
                    actor=actor,
                    reason=reason,
                    request=None,
                    suppress=suppress,
                    write_log=write_log,
                )
        erased += len(customers)
    return erased


def erased_addresses_since(since: dt.datetime) -> ErasedAddresses:
    """The hashed emails and phones of the people erased since a time (from the erasure log)."""
    emails: set[str] = set()
    phones: set[str] = set()
    for email, phone in ErasureLog.objects.filter(erased_at__gte=since).values_list(
        "email_hash", "phone_hash"
    ):
        emails.update({email} if email else ())
        phones.update({phone} if phone else ())
    return ErasedAddresses(email_hashes=frozenset(emails), phone_hashes=frozenset(phones))


def _erasure_log_file_entries() -> list[dict]:
    path = Path(settings.PRIVACY_ERASURE_LOG_PATH)
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


def erasures_reapply() -> dict[str, int]:
    """Re-apply every logged erasure (after a restore from a backup taken before some of them).

    Reads the erasure log table and the log file; restores missing log rows and suppression
    hashes, and erases again every logged customer that holds personal data again.
    """
    known = {(e.customer_id, e.erased_at.isoformat()) for e in ErasureLog.objects.all()}
    restored_logs = 0
    for line in _erasure_log_file_entries():
        if (line["customer_id"], line["erased_at"]) in known:
            continue
        ErasureLog.objects.create(
            customer_id=line["customer_id"],
            email_hash=line.get("email_hash", ""),
            phone_hash=line.get("phone_hash", ""),
            reason=line.get("reason") or Suppression.Reason.ERASURE,
            request_id=line.get("request_id"),
            erased_at=line["erased_at"],
        )
        known.add((line["customer_id"], line["erased_at"]))
        restored_logs += 1
    suppressed = 0
    customer_ids = set()
    for log in ErasureLog.objects.all():
        suppressed += suppression_add(
            reason=log.reason,
            hashes={Suppression.Kind.EMAIL: log.email_hash, Suppression.Kind.PHONE: log.phone_hash},
        )
        customer_ids.add(log.customer_id)
    erased = customers_erase(
        customer_ids=Customer.objects.filter(pk__in=customer_ids)
        .exclude(source=ERASED_SOURCE, email__isnull=True, first_name="", last_name="", phone="")
        .values_list("pk", flat=True),
        reason=Suppression.Reason.ERASURE,
        write_log=False,
    )
    return {
        "restored_log_entries": restored_logs,
        "suppressions_restored": suppressed,
        "customers_erased": erased,
    }
