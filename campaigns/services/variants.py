"""A campaign's message variants (A/B)."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError

from campaigns.models import Campaign, Variant
from campaigns.rendering import variant_problems
from campaigns.services.access import _require_editable, _require_marketer


def _check_variant(subject: str, html: str, text: str) -> None:
    problems = variant_problems(subject=subject, html=html, text=text)
    if problems:
        errors: dict[str, list[str]] = {}
        for problem in problems:
            errors.setdefault(problem.field, []).append(f"line {problem.line}: {problem.message}")
        raise ValidationError(errors)


def variant_create(
    *,
    campaign: Campaign,
    actor: AbstractBaseUser | None,
    subject: str,
    text: str,
    html: str = "",
    name: str = "",
    share: int = 1,
) -> Variant:
    """Add an A/B variant; its templates are checked now, with line numbers, not at send time."""
    _require_marketer(actor)
    _require_editable(campaign)
    if not subject.strip():
        raise ValidationError({"subject": "required"})
    if not text.strip():
        raise ValidationError({"text": "required (the plain-text part of the message)"})
    if int(share) < 1:
        raise ValidationError({"share": "must be at least 1"})
    _check_variant(subject, html, text)
    name = name.strip() or chr(ord("A") + campaign.variants.count())
    if campaign.variants.filter(name=name).exists():
        raise ValidationError({"name": f"the campaign already has a variant {name!r}"})
    return Variant.objects.create(
        campaign=campaign, name=name, subject=subject, html=html, text=text, share=int(share)
    )


def variant_update(*, variant: Variant, actor: AbstractBaseUser | None, **changes: Any) -> Variant:
    _require_marketer(actor)
    _require_editable(variant.campaign)
    allowed = {"name", "subject", "html", "text", "share"}
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise ValidationError({name: "unknown field" for name in unknown})
    merged = {k: changes.get(k, getattr(variant, k)) for k in allowed}
    if not str(merged["subject"]).strip():
        raise ValidationError({"subject": "required"})
    if int(merged["share"]) < 1:
        raise ValidationError({"share": "must be at least 1"})
    _check_variant(merged["subject"], merged["html"], merged["text"])
    for name in changes:
        setattr(variant, name, merged[name])
    variant.save(update_fields=list(changes))
    return variant


def variant_delete(*, variant: Variant, actor: AbstractBaseUser | None) -> None:
    _require_marketer(actor)
    _require_editable(variant.campaign)
    variant.delete()
