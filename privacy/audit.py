"""The audit log of staff access to personal data: ids and counts only, never the data itself."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.utils import timezone

from privacy.models import AuditEntry

_SAFE_STRING_LENGTH = 64


def _safe_scalar(value):
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        if len(value) <= _SAFE_STRING_LENGTH and "@" not in value and " " not in value.strip():
            return value
    return "[removed]"


def _safe_value(value):
    """Ids, counts, flags and short codes pass (also in lists, such as the names of the fields
    an edit changed); anything that could be personal data does not."""
    if isinstance(value, list | tuple | set):
        return [_safe_scalar(v) for v in list(value)[:1000]]
    return _safe_scalar(value)


def audit_details_sanitise(details: dict | None) -> dict:
    """Keep only values that cannot carry personal data (ids, counts, codes without spaces)."""
    return {str(k)[:_SAFE_STRING_LENGTH]: _safe_value(v) for k, v in (details or {}).items()}


def audit_record(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    action: str,
    object_kind: str,
    object_id: int | None = None,
    details: dict | None = None,
) -> AuditEntry:
    """Append one entry to the audit log (in the caller's transaction)."""
    actor_id = actor.pk if actor is not None and actor.is_authenticated else None
    return AuditEntry.objects.create(
        at=timezone.now(),
        actor_id=actor_id,
        action=action[:16],
        object_kind=object_kind[:50],
        object_id=object_id,
        details=audit_details_sanitise(details),
    )


def audit_access_hook(
    user: AbstractBaseUser, action: str, object_kind: str, object_id: int | None, details: dict
) -> None:
    """The hook customers.registry calls when staff read or change personal data."""
    audit_record(
        actor=user, action=action, object_kind=object_kind, object_id=object_id, details=details
    )
