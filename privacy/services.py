"""Consent: every grant or withdrawal is appended to the ledger and the current state follows."""

import csv
import io
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.core.mail import send_mail
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.template.loader import render_to_string
from django.utils import timezone

from customers.importing.reading import csv_problem
from customers.marks import customers_mark, customers_mark_where
from customers.models import Customer
from privacy.audit import audit_record
from privacy.links import confirmation_url
from privacy.models import (
    BUILTIN_PURPOSES,
    BulkConsentJob,
    ConsentRecord,
    ConsentSource,
    ConsentState,
    ConsentStatus,
    ConsentWording,
    PendingConsent,
    Purpose,
    Suppression,
)
from privacy.suppression import suppression_add, suppression_lift


@dataclass(frozen=True)
class ConsentChange:
    """One change for consent_record_many: which customer, which purpose, granted or not, and
    what proves it when that differs from change to change (else the batch's evidence)."""

    customer_id: int
    purpose: str
    state: str
    recorded_at: datetime | None = None
    evidence: str = ""


def consent_record(
    *,
    customer: Customer,
    purpose: str,
    state: str,
    source: str,
    actor: AbstractBaseUser | None = None,
    wording: ConsentWording | None = None,
    ip_address: str | None = None,
    evidence: str = "",
    recorded_at: datetime | None = None,
) -> ConsentRecord:
    """Append a grant or withdrawal to the ledger and bring the current state up to date."""
    if state not in ConsentStatus.values:
        raise ValueError(f"state: expected one of {', '.join(ConsentStatus.values)}, got {state!r}")
    purpose_obj = Purpose.objects.get(code=purpose)
    recorded_at = recorded_at or timezone.now()
    with transaction.atomic():
        customers_mark(customer_ids=[customer.pk])  # for segments with consent conditions
        record = ConsentRecord.objects.create(
            customer=customer,
            purpose=purpose_obj,
            state=state,
            source=source,
            actor=actor if actor is not None and actor.is_authenticated else None,
            wording=wording,
            ip_address=ip_address,
            evidence=evidence,
            recorded_at=recorded_at,
        )
        current = (
            ConsentState.objects.select_for_update()
            .filter(customer=customer, purpose=purpose_obj)
            .first()
        )
        if current is None:
            ConsentState.objects.create(
                customer=customer,
                purpose=purpose_obj,
                state=state,
                changed_at=recorded_at,
                record=record,
            )
        elif recorded_at >= current.changed_at:
            current.state = state
            current.changed_at = recorded_at
            current.record = record
            current.save(update_fields=["state", "changed_at", "record"])
        if actor is not None and actor.is_authenticated:
            audit_record(
                actor=actor,
                action="consent",
                object_kind="customer",
                object_id=customer.pk,
                details={"purpose": purpose, "state": state, "record": record.pk},
            )
    return record


def consent_grant(*, customer: Customer, purpose: str, source: str, **kwargs) -> ConsentRecord:
    return consent_record(
        customer=customer, purpose=purpose, state=ConsentStatus.GRANTED, source=source, **kwargs
    )


def consent_withdraw(*, customer: Customer, purpose: str, source: str, **kwargs) -> ConsentRecord:
    return consent_record(
        customer=customer, purpose=purpose, state=ConsentStatus.WITHDRAWN, source=source, **kwargs
    )


def consent_record_many(
    *,
    changes: Iterable[ConsentChange],
    source: str,
    actor: AbstractBaseUser | None = None,
    evidence: str = "",
    batch_size: int = 5000,
) -> int:
    """Append many ledger records at once (imports, bulk changes) and update the states set-based.

    Returns the number of records written.
    """
    now = timezone.now()
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    records = [
        ConsentRecord(
            customer_id=c.customer_id,
            purpose_id=c.purpose,
            state=c.state,
            recorded_at=c.recorded_at or now,
            source=source,
            actor_id=actor_id,
            evidence=c.evidence or evidence,
        )
        for c in changes
    ]
    if not records:
        return 0
    with transaction.atomic():
        ConsentRecord.objects.bulk_create(records, batch_size=batch_size)
        consent_states_rebuild(customer_ids={r.customer_id for r in records})
    return len(records)


def consent_states_rebuild(*, customer_ids: Iterable[int] | None = None) -> None:
    """Derive the current state per (customer, purpose) from the newest ledger record.

    One DELETE and one INSERT ... SELECT per chunk of customers (all at once without ids), the
    newest record found by NOT EXISTS of a newer one.
    """
    state_table = ConsentState._meta.db_table
    record_table = ConsentRecord._meta.db_table
    insert = (
        f"INSERT INTO {state_table} (customer_id, purpose_id, state, changed_at, record_id) "
        f"SELECT r.customer_id, r.purpose_id, r.state, r.recorded_at, r.id FROM {record_table} r "
        f"WHERE NOT EXISTS (SELECT 1 FROM {record_table} n WHERE n.customer_id = r.customer_id "
        "AND n.purpose_id = r.purpose_id AND (n.recorded_at > r.recorded_at "
        "OR (n.recorded_at = r.recorded_at AND n.id > r.id)))"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        if customer_ids is None:
            # Everyone's consent may change: every customer is marked for segments.
            customers_mark_where(select_ids=f"SELECT id FROM {Customer._meta.db_table}")
            cursor.execute(f"DELETE FROM {state_table}")
            cursor.execute(insert)
            return
        ids = sorted(set(customer_ids))
        for start in range(0, len(ids), 5000):
            chunk = ids[start : start + 5000]
            customers_mark(customer_ids=chunk)
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(f"DELETE FROM {state_table} WHERE customer_id IN ({marks})", chunk)
            cursor.execute(f"{insert} AND r.customer_id IN ({marks})", chunk)


def purposes_ensure() -> None:
    """Create the built-in consent purposes where they are missing."""
    for code, name, description in BUILTIN_PURPOSES:
        Purpose.objects.get_or_create(
            code=code, defaults={"name": name, "description": description}
        )


def consent_state_for(*, customer: Customer) -> dict[str, str]:
    """The current state per purpose for one customer ("unknown" where nothing was recorded)."""
    states = dict(customer.consent_states.values_list("purpose_id", "state"))
    return {
        code: states.get(code, "unknown") for code in Purpose.objects.values_list("code", flat=True)
    }


def _actor_or_none(actor: AbstractBaseUser | None) -> AbstractBaseUser | None:
    return actor if actor is not None and actor.is_authenticated else None


def consent_confirmation_request(
    *,
    customer: Customer,
    source: str,
    purpose: str = Purpose.EMAIL_MARKETING,
    wording: ConsentWording | None = None,
    ip_address: str | None = None,
    site_url: str = "",
) -> PendingConsent:
    """Start a double opt-in: store a pending grant and email a signed confirmation link.

    Nothing is granted until the link is followed (consent_confirm).
    """
    return consent_confirmations_request(
        customer=customer,
        purposes=[(purpose, wording)],
        source=source,
        ip_address=ip_address,
        site_url=site_url,
    )[0]


def consent_confirmations_request(
    *,
    customer: Customer,
    purposes: list[tuple[str, ConsentWording | None]],
    source: str,
    ip_address: str | None = None,
    site_url: str = "",
) -> list[PendingConsent]:
    """Double opt-in for several purposes at once: one pending grant each, one email with a
    signed confirmation link per purpose."""
    if not customer.email:
        raise ValueError("email: the customer has no email address to confirm")
    if not purposes:
        return []
    with transaction.atomic():
        pendings = [
            PendingConsent.objects.create(
                customer=customer,
                purpose_id=purpose,
                source=source,
                wording=wording,
                ip_address=ip_address,
                requested_at=timezone.now(),
            )
            for purpose, wording in purposes
        ]
        confirmations = [
            (p.purpose, f"{site_url.rstrip('/')}{confirmation_url(pending_id=p.pk)}")
            for p in pendings
        ]
        body = render_to_string(
            "privacy/email/confirm_consent.txt",
            {"customer": customer, "confirmations": confirmations},
        )
        email = customer.email
        transaction.on_commit(
            lambda: send_mail("Please confirm your subscription", body, None, [email])
        )
    return pendings


def consent_confirm(*, pending: PendingConsent, ip_address: str | None = None) -> ConsentRecord:
    """Confirm a pending grant: now it is granted, in the ledger. Following the link twice is harmless."""
    with transaction.atomic():
        pending = (
            PendingConsent.objects.select_for_update().select_related("customer").get(pk=pending.pk)
        )
        if pending.record_id is not None:
            return pending.record
        record = consent_grant(
            customer=pending.customer,
            purpose=pending.purpose_id,
            source=pending.source,
            wording=pending.wording,
            ip_address=ip_address or pending.ip_address,
            evidence=f"Double opt-in {pending.pk} confirmed by emailed link",
        )
        pending.confirmed_at = record.recorded_at
        pending.record = record
        pending.save(update_fields=["confirmed_at", "record"])
        # The person proved they hold the address and asked afresh: it may be contacted again.
        suppression_lift(email=pending.customer.email)
    return record


def consent_preferences_update(
    *, customer: Customer, states: dict[str, str], ip_address: str | None = None
) -> list[ConsentRecord]:
    """Apply the choices a customer made in the preference centre: one ledger record per change."""
    current = consent_state_for(customer=customer)
    records = []
    with transaction.atomic():
        for purpose, state in states.items():
            if purpose not in current:
                raise ValueError(f"{purpose}: unknown purpose")
            if state not in ConsentStatus.values:
                raise ValueError(f"{purpose}: expected granted or withdrawn, got {state!r}")
            if current[purpose] == state:
                continue
            records.append(
                consent_record(
                    customer=customer,
                    purpose=purpose,
                    state=state,
                    source=ConsentSource.PREFERENCE_CENTRE,
                    ip_address=ip_address,
                    evidence="Changed in the preference centre (signed link)",
                )
            )
            if state == ConsentStatus.GRANTED and purpose == Purpose.EMAIL_MARKETING:
                suppression_lift(email=customer.email)
            if state == ConsentStatus.GRANTED and purpose == Purpose.SMS_MARKETING:
                suppression_lift(phone=customer.phone)
    return records


def consent_unsubscribe_all(
    *,
    customer: Customer,
    source: str = ConsentSource.PREFERENCE_CENTRE,
    ip_address: str | None = None,
) -> int:
    """Withdraw every purpose and suppress the addresses, so no import can re-target them."""
    current = consent_state_for(customer=customer)
    with transaction.atomic():
        changed = 0
        for purpose, state in current.items():
            if state != ConsentStatus.WITHDRAWN:
                consent_withdraw(
                    customer=customer,
                    purpose=purpose,
                    source=source,
                    ip_address=ip_address,
                    evidence="Unsubscribed from everything",
                )
                changed += 1
        suppression_add(
            reason=Suppression.Reason.UNSUBSCRIBE, email=customer.email, phone=customer.phone
        )
    return changed


def consent_gpc_honour(
    *, customer: Customer, ip_address: str | None = None
) -> ConsentRecord | None:
    """A Global Privacy Control signal (Sec-GPC: 1) is an opt-out of sale and sharing (CCPA)."""
    state = (
        customer.consent_states.filter(purpose_id=Purpose.DATA_SALE)
        .values_list("state", flat=True)
        .first()
    )
    if state == ConsentStatus.WITHDRAWN:
        return None
    return consent_withdraw(
        customer=customer,
        purpose=Purpose.DATA_SALE,
        source=ConsentSource.GPC,
        ip_address=ip_address,
        evidence="Sec-GPC: 1 header on a public page",
    )


def _identifiers_parse(text: str) -> list[str]:
    """Emails or external ids from a CSV: the first column of each row, header row skipped."""
    values = []
    # Universal newlines: lines may end in CR alone, as old Mac files do.
    rows = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=None))
    for i in itertools.count():
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ValueError(
                f"file: line {rows.line_num} is not valid CSV ({csv_problem(exc)})"
            ) from None
        if not row or not row[0].strip():
            continue
        value = row[0].strip()
        if i == 0 and value.lower() in {"email", "external_id", "id", "customer"}:
            continue
        if "\x00" in value:
            # PostgreSQL stores no NUL, and no customer's email or external id holds one.
            raise ValueError(
                f"file: line {rows.line_num} holds a NUL character (\\x00); is the file CSV text?"
            )
        values.append(value)
    return values


def consent_bulk_job_create(
    *,
    purpose: str,
    state: str,
    evidence: str,
    actor: AbstractBaseUser | None,
    csv_text: str = "",
    audience: str = "",
    audience_id: int | None = None,
) -> BulkConsentJob:
    """Queue a grant or withdrawal for every customer in a CSV or an audience (e.g. a segment)."""
    from privacy.registry import audience_providers
    from privacy.tasks import consent_bulk_job_run_task

    if not Purpose.objects.filter(code=purpose).exists():
        raise ValueError(f"purpose: unknown purpose {purpose!r}")
    if state not in ConsentStatus.values:
        raise ValueError(f"state: expected one of {', '.join(ConsentStatus.values)}")
    if not evidence.strip():
        raise ValueError("evidence: say where this change comes from")
    identifiers = _identifiers_parse(csv_text) if csv_text else []
    if audience:
        if audience not in audience_providers():
            raise ValueError(f"audience: unknown audience {audience!r}")
        if audience_id is None:
            raise ValueError("audience_id: choose which one")
    elif not identifiers:
        raise ValueError("file: the CSV holds no emails or external ids")
    with transaction.atomic():
        job = BulkConsentJob.objects.create(
            purpose_id=purpose,
            state=state,
            evidence=evidence.strip()[:300],
            identifiers="\n".join(identifiers),
            audience=audience,
            audience_id=audience_id,
            created_by=_actor_or_none(actor),
        )
        transaction.on_commit(lambda: consent_bulk_job_run_task.delay(job.pk))
    return job


def _bulk_customer_ids(
    *, audience: str, audience_id: int | None, identifiers: list[str]
) -> tuple[set[int], int]:
    """The customers a bulk change reaches, and how many identifiers matched no one."""
    from privacy.registry import audience_providers

    if audience:
        provider = audience_providers().get(audience)
        return (set(provider.customers(audience_id)) if provider else set()), 0
    emails = {v.lower() for v in identifiers if "@" in v}
    external = {v for v in identifiers if "@" not in v}
    found = (
        Customer.objects.annotate(email_lower=Lower("email"))
        .filter(Q(email_lower__in=emails) | Q(external_id__in=external))
        .values_list("id", "email_lower", "external_id")
    )
    ids, seen = set(), set()
    for customer_id, email_lower, external_id in found:
        ids.add(customer_id)
        seen.update({email_lower, external_id})
    return ids, len({v.lower() if "@" in v else v for v in identifiers} - seen)


def consent_bulk_preview(
    *,
    purpose: str,
    state: str,
    csv_text: str = "",
    audience: str = "",
    audience_id: int | None = None,
) -> dict[str, int | list[str]]:
    """What a bulk change would do, without doing it: customers matched, identifiers matched
    by no one, and how many customers' state would change (the others have it already)."""
    identifiers = _identifiers_parse(csv_text) if csv_text else []
    ids, unmatched = _bulk_customer_ids(
        audience=audience, audience_id=audience_id, identifiers=identifiers
    )
    already = ConsentState.objects.filter(
        customer_id__in=ids, purpose_id=purpose, state=state
    ).count()
    return {
        "matched": len(ids),
        "unmatched": unmatched,
        "will_change": len(ids) - already,
        "identifiers": identifiers,
    }


def consent_bulk_job_run(*, job: BulkConsentJob) -> BulkConsentJob:
    """Apply a bulk job set-based; the identifiers (personal data) are dropped once done."""
    BulkConsentJob.objects.filter(pk=job.pk).update(
        status=BulkConsentJob.Status.RUNNING, started_at=timezone.now()
    )
    ids, unmatched = _bulk_customer_ids(
        audience=job.audience,
        audience_id=job.audience_id,
        identifiers=[v for v in job.identifiers.splitlines() if v],
    )
    changes = [
        ConsentChange(customer_id=i, purpose=job.purpose_id, state=job.state) for i in sorted(ids)
    ]
    with transaction.atomic():
        written = consent_record_many(
            changes=changes, source=ConsentSource.BULK, actor=job.created_by, evidence=job.evidence
        )
        audit_record(
            actor=job.created_by,
            action="consent",
            object_kind="bulk_consent_job",
            object_id=job.pk,
            details={"purpose": job.purpose_id, "state": job.state, "customers": written},
        )
        job.matched, job.unmatched, job.changed = len(ids), unmatched, written
        job.status = BulkConsentJob.Status.DONE
        job.identifiers = ""
        job.finished_at = timezone.now()
        job.save(
            update_fields=[
                "matched",
                "unmatched",
                "changed",
                "status",
                "identifiers",
                "finished_at",
            ]
        )
    return job
