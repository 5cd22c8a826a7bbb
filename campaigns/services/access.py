"""Who may change campaigns, and which campaigns can still be changed."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from campaigns.models import Campaign
from crm.roles import Role, user_has_role


def _require_marketer(actor: AbstractBaseUser | None) -> None:
    if actor is not None and not user_has_role(actor, Role.MARKETING):
        raise PermissionError("Only marketing staff and admins manage campaigns.")


def _require_editable(campaign: Campaign) -> None:
    if not campaign.is_editable:
        raise ValidationError(
            {"status": f"a {campaign.get_status_display().lower()} campaign cannot be changed"}
        )
