"""The customer list's "add to a static segment" bulk action (crm/bulk.py), registered by
segments on the customers' list: the customers ticked or matching the filter join a static
segment, as segment_add_members records joins (membership history, dependants marked)."""

from collections.abc import Mapping

from django import forms
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError

from crm.bulk import BulkAction, bulk_action_register
from crm.roles import Role, user_has_role
from customers.registry import access_record
from segments.models import Segment


def _static_segments():
    return Segment.objects.filter(kind=Segment.Kind.STATIC).order_by("name", "id")


def _check(actor: AbstractBaseUser, params: Mapping) -> dict:
    if not user_has_role(actor, Role.MARKETING):
        raise PermissionDenied("Only marketing staff and admins change static segments.")
    segment = params.get("segment")
    segment_id = getattr(segment, "pk", segment)
    if segment_id in (None, ""):
        raise ValidationError({"segment": "Choose the static segment."})
    if not str(segment_id).isdigit() or not _static_segments().filter(pk=int(segment_id)).exists():
        raise ValidationError(
            {"segment": "Choose a static segment: a rule segment's members follow its rule."}
        )
    return {"segment": int(segment_id)}


def _apply(ids: list[int], params: dict, actor: AbstractBaseUser) -> int:
    from segments.services import segment_add_members

    segment = Segment.objects.get(pk=params["segment"])
    run = segment_add_members(segment=segment, customers=ids)
    access_record(
        user=actor,
        action="change",
        object_kind="segment",
        object_id=segment.pk,
        details={"bulk": True, "rows": len(ids), "joined": run.joined},
    )
    return run.joined


def _field(user: AbstractBaseUser):
    if not user_has_role(user, Role.MARKETING):
        return None
    return forms.ModelChoiceField(
        queryset=_static_segments(), label="Static segment", empty_label="—"
    )


def _facts(params: dict) -> list[tuple[str, str]]:
    segment = Segment.objects.filter(pk=params.get("segment")).first()
    return [("Segment", segment.name if segment else "?")]


def segments_bulk_register() -> None:
    bulk_action_register(
        "customers",
        BulkAction(
            name="add_to_segment",
            label="Add to a static segment",
            check=_check,
            apply=_apply,
            title="Add customers to a static segment",
            button="Add {count} {noun}",
            describe=_facts,
            param="segment",
            field=_field,
        ),
    )
