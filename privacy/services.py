"""Consent: every grant or withdrawal is appended to the ledger and the current state follows."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from customers.models import Customer
from privacy.models import ConsentRecord, ConsentState, ConsentStatus, ConsentWording, Purpose


@dataclass(frozen=True)
class ConsentChange:
    """One change for consent_record_many: which customer, which purpose, granted or not."""

    customer_id: int
    purpose: str
    state: str
    recorded_at: datetime | None = None


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
            evidence=evidence,
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
    """Derive the current state per (customer, purpose) from the newest ledger record, set-based."""
    records = ConsentRecord.objects.all()
    states = ConsentState.objects.all()
    if customer_ids is not None:
        ids = list(customer_ids)
        records = records.filter(customer_id__in=ids)
        states = states.filter(customer_id__in=ids)
    newest = records.order_by("customer_id", "purpose_id", "-recorded_at", "-id")
    with transaction.atomic():
        states.delete()
        batch: list[ConsentState] = []
        last_key = None
        for rec in newest.values_list("id", "customer_id", "purpose_id", "state", "recorded_at").iterator(
            chunk_size=20000
        ):
            key = (rec[1], rec[2])
            if key == last_key:
                continue
            last_key = key
            batch.append(
                ConsentState(
                    record_id=rec[0],
                    customer_id=rec[1],
                    purpose_id=rec[2],
                    state=rec[3],
                    changed_at=rec[4],
                )
            )
            if len(batch) >= 5000:
                ConsentState.objects.bulk_create(batch)
                batch.clear()
        ConsentState.objects.bulk_create(batch)


def consent_state_for(*, customer: Customer) -> dict[str, str]:
    """The current state per purpose for one customer ("unknown" where nothing was recorded)."""
    states = dict(customer.consent_states.values_list("purpose_id", "state"))
    return {code: states.get(code, "unknown") for code in Purpose.objects.values_list("code", flat=True)}
