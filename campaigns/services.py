"""Every write to campaigns: definition, launch, pause, resume, cancel, stop, triggered sends.

Errors are django ValidationErrors keyed by the field they concern, so the API and the pages show
them next to the right input.
"""

import datetime as dt
import secrets
import zoneinfo
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from campaigns.audience import (
    audience_estimate,
    classified_sql,
    exclusion_counts,
    insert_sends,
    targeted,
)
from campaigns.models import (
    CAMPAIGN_SEGMENT_SETTINGS,
    CAMPAIGN_SETTINGS,
    CHANNEL_PURPOSE,
    Campaign,
    Channel,
    Promotion,
    PromotionCode,
    Send,
    Variant,
)
from campaigns.rendering import variant_problems
from crm.roles import Role, user_has_role
from privacy.models import Purpose

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are typed by hand
CODE_LENGTH = 12  # 32^12 = 2^60 possibilities: unguessable


def _require_marketer(actor: AbstractBaseUser | None) -> None:
    if actor is not None and not user_has_role(actor, Role.MARKETING):
        raise PermissionError("Only marketing staff and admins manage campaigns.")


def _apply(campaign: Campaign, changes: dict[str, Any]) -> list[str]:
    unknown = sorted(set(changes) - set(CAMPAIGN_SETTINGS))
    if unknown:
        raise ValidationError({name: "unknown field" for name in unknown})
    errors: dict[str, str] = {}
    if "name" in changes and not str(changes["name"] or "").strip():
        errors["name"] = "required"
    if "channel" in changes and changes["channel"] not in Channel.values:
        errors["channel"] = f"expected one of {', '.join(Channel.values)}"
    if "kind" in changes and changes["kind"] not in Campaign.Kind.values:
        errors["kind"] = f"expected one of {', '.join(Campaign.Kind.values)}"
    if "time_zone" in changes:
        try:
            zoneinfo.ZoneInfo(str(changes["time_zone"]))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            errors["time_zone"] = f"unknown time zone {changes['time_zone']!r}"
    if "holdout_percent" in changes:
        value = Decimal(str(changes["holdout_percent"] or 0))
        if not 0 <= value <= 50:
            errors["holdout_percent"] = "must be between 0 and 50"
        changes["holdout_percent"] = value
    if "consent_purpose" in changes and changes["consent_purpose"]:
        code = getattr(changes["consent_purpose"], "pk", changes["consent_purpose"])
        if not Purpose.objects.filter(pk=code).exists():
            errors["consent_purpose"] = f"unknown purpose {code!r}"
        changes["consent_purpose"] = code
    if errors:
        raise ValidationError(errors)
    updated = []
    for name, value in changes.items():
        if name in CAMPAIGN_SEGMENT_SETTINGS:
            continue
        if name == "consent_purpose":
            campaign.consent_purpose_id = value or None
        elif name == "send_at" and value is not None and timezone.is_naive(value):
            zone = zoneinfo.ZoneInfo(changes.get("time_zone", campaign.time_zone))
            campaign.send_at = timezone.make_aware(value, zone)
        else:
            setattr(campaign, name, value)
        updated.append(name)
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_url:
        raise ValidationError({"webhook_url": "required for the webhook channel"})
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_secret:
        campaign.webhook_secret = webhook_secret_new()
        updated.append("webhook_secret")
    return updated


def webhook_secret_new() -> str:
    """The signing key of a new webhook campaign: CAMPAIGNS_WEBHOOK_SECRET when the site sets one
    (one receiver for every campaign), otherwise a random key of its own."""
    return settings.CAMPAIGNS_WEBHOOK_SECRET or secrets.token_urlsafe(32)


def campaign_webhook_secret_rotate(
    *, campaign: Campaign, actor: AbstractBaseUser | None
) -> Campaign:
    """Give a webhook campaign a new random signing key (the old one was shown to too many, or
    leaked); the receiver must be given the new one."""
    _require_marketer(actor)
    if campaign.channel != Channel.WEBHOOK:
        raise ValidationError({"webhook_secret": "only a webhook campaign has a signing secret"})
    campaign.webhook_secret = secrets.token_urlsafe(32)
    campaign.save(update_fields=["webhook_secret", "updated_at"])
    return campaign


def _set_segments(campaign: Campaign, changes: dict[str, Any]) -> None:
    if "target_segments" in changes:
        campaign.target_segments.set(changes["target_segments"])
    if "exclusion_segments" in changes:
        campaign.exclusion_segments.set(changes["exclusion_segments"])


def campaign_create(*, actor: AbstractBaseUser | None, name: str, **fields: Any) -> Campaign:
    """Create a draft campaign; the consent purpose defaults from the channel."""
    _require_marketer(actor)
    campaign = Campaign(created_by=actor if actor is not None and actor.is_authenticated else None)
    _apply(campaign, {"name": name, **fields})
    campaign.name = campaign.name.strip()
    if not campaign.consent_purpose_id:
        campaign.consent_purpose_id = CHANNEL_PURPOSE[campaign.channel]
    with transaction.atomic():
        campaign.save()
        _set_segments(campaign, fields)
    return campaign


def _require_editable(campaign: Campaign) -> None:
    if not campaign.is_editable:
        raise ValidationError(
            {"status": f"a {campaign.get_status_display().lower()} campaign cannot be changed"}
        )


def campaign_update(
    *, campaign: Campaign, actor: AbstractBaseUser | None, **changes: Any
) -> Campaign:
    _require_marketer(actor)
    _require_editable(campaign)
    with transaction.atomic():
        updated = _apply(campaign, changes)
        if updated:
            campaign.save(update_fields=[*updated, "updated_at"])
        _set_segments(campaign, changes)
    return campaign


def campaign_delete(*, campaign: Campaign, actor: AbstractBaseUser | None) -> None:
    _require_marketer(actor)
    if campaign.status != Campaign.Status.DRAFT:
        raise ValidationError({"status": "only draft campaigns can be deleted"})
    campaign.delete()


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


def promotion_set(
    *,
    campaign: Campaign,
    actor: AbstractBaseUser | None,
    discount: str,
    value: Decimal,
    code_mode: str = Promotion.CodeMode.UNIQUE,
    shared_code: str = "",
    expires_at: dt.datetime | None = None,
    redemption_cap: int | None = None,
) -> Promotion:
    """Attach (or replace) the campaign's promotion."""
    _require_marketer(actor)
    _require_editable(campaign)
    errors = {}
    if discount not in Promotion.Discount.values:
        errors["discount"] = f"expected one of {', '.join(Promotion.Discount.values)}"
    value = Decimal(str(value))
    if value <= 0:
        errors["value"] = "must be more than 0"
    elif discount == Promotion.Discount.PERCENT and value > 100:
        errors["value"] = "a percentage is at most 100"
    if code_mode not in Promotion.CodeMode.values:
        errors["code_mode"] = f"expected one of {', '.join(Promotion.CodeMode.values)}"
    if code_mode == Promotion.CodeMode.SHARED and not shared_code.strip():
        errors["shared_code"] = "required for a shared code"
    if redemption_cap is not None and int(redemption_cap) < 1:
        errors["redemption_cap"] = "must be at least 1"
    if errors:
        raise ValidationError(errors)
    promotion, _ = Promotion.objects.update_or_create(
        campaign=campaign,
        defaults={
            "discount": discount,
            "value": value,
            "code_mode": code_mode,
            "shared_code": shared_code.strip().upper() if code_mode == "shared" else "",
            "expires_at": expires_at,
            "redemption_cap": redemption_cap,
        },
    )
    return promotion


def promotion_remove(*, campaign: Campaign, actor: AbstractBaseUser | None) -> None:
    _require_marketer(actor)
    _require_editable(campaign)
    Promotion.objects.filter(campaign=campaign).delete()


def promotion_code_new() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def promotion_codes_create(*, campaign: Campaign, since: dt.datetime | None = None) -> int:
    """A unique code for every pending recipient without one, generated in bulk.

    PostgreSQL draws the codes from gen_random_uuid() (the server's cryptographic random source)
    in the same INSERT ... SELECT; Python's `secrets` fills in any a collision left out.
    """
    promotion = Promotion.objects.filter(campaign=campaign).first()
    if promotion is None or promotion.code_mode != Promotion.CodeMode.UNIQUE:
        return 0
    now = timezone.now()
    recipients = Send.objects.filter(campaign=campaign, status=Send.Status.PENDING).exclude(
        customer__promotion_codes__promotion=promotion
    )
    if since is not None:
        recipients = recipients.filter(created_at__gte=since)
    table = PromotionCode._meta.db_table
    created = 0
    sql, params = recipients.order_by().values_list("customer_id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (promotion_id, customer_id, code, created_at) "
            f"SELECT %s, q.customer_id, upper(substr(replace(gen_random_uuid()::text, '-', ''),"
            f" 1, 16)), %s FROM ({sql}) q ON CONFLICT DO NOTHING",
            [promotion.pk, now, *params],
        )
        created = cursor.rowcount
    # Whatever is still missing (the astronomically rare collision): Python secrets.
    missing = recipients.values_list("customer_id", flat=True).iterator(chunk_size=5000)
    batch: list[PromotionCode] = []
    for customer_id in missing:
        batch.append(
            PromotionCode(
                promotion=promotion,
                customer_id=customer_id,
                code=promotion_code_new(),
                created_at=now,
            )
        )
        if len(batch) >= 5000:
            PromotionCode.objects.bulk_create(batch, ignore_conflicts=True)
            created += len(batch)
            batch = []
    if batch:
        PromotionCode.objects.bulk_create(batch, ignore_conflicts=True)
        created += len(batch)
    return created


def campaign_problems(campaign: Campaign) -> dict[str, str]:
    """What stops a campaign from launching, by field."""
    problems = {}
    if not campaign.target_segments.exists():
        problems["target_segments"] = "choose at least one target segment"
    variants = list(campaign.variants.all())
    if not variants:
        problems["variants"] = "add at least one message variant"
    for variant in variants:
        found = variant_problems(subject=variant.subject, html=variant.html, text=variant.text)
        if found:
            problems["variants"] = f"variant {variant.name}: {found[0]}"
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_url:
        problems["webhook_url"] = "required for the webhook channel"
    if campaign.channel == Channel.WEBHOOK and not campaign.webhook_secret:
        problems["webhook_secret"] = (
            "the webhook campaign has no signing secret: rotate the secret to create one"
        )
    return problems


def campaign_warnings(campaign: Campaign) -> list[str]:
    """What does not stop a launch but is likely a mistake (shown on the review step)."""
    warnings = []
    uses_promotion = any(
        "promotion." in source
        for variant in campaign.variants.all()
        for source in (variant.subject, variant.html, variant.text)
    )
    if uses_promotion and not Promotion.objects.filter(campaign=campaign).exists():
        warnings.append(
            "The message uses the promotion, but the campaign has none: its code and discount "
            "will be empty."
        )
    return warnings


# What the audience step's live estimate may vary before anything is saved.
ESTIMATE_FIELDS = (
    "target_segments",
    "exclusion_segments",
    "channel",
    "consent_purpose",
    "frequency_cap_count",
    "frequency_cap_days",
    "holdout_percent",
)


def campaign_audience_estimate(
    *, campaign: Campaign | None, changes: dict[str, Any], now: dt.datetime | None = None
) -> dict:
    """The audience (targeted, recipients, holdout, excluded by reason) the campaign would have
    with these unsaved settings.

    The settings are applied inside a transaction that is always rolled back, so the estimate
    runs the very SQL of the launch snapshot and nothing is kept.
    """
    unknown = sorted(set(changes) - set(ESTIMATE_FIELDS))
    if unknown:
        raise ValidationError({name: "unknown field" for name in unknown})
    now = now or timezone.now()
    with transaction.atomic():
        if campaign is None:
            draft = Campaign(name="audience estimate")
        else:
            draft = Campaign.objects.get(pk=campaign.pk)
        scalars = {k: v for k, v in changes.items() if not k.endswith("_segments")}
        # The endpoint does not change who is in the audience; _apply insists on one.
        draft.webhook_url = draft.webhook_url or "https://estimate.invalid/"
        _apply(draft, scalars)
        if not draft.consent_purpose_id:
            draft.consent_purpose_id = CHANNEL_PURPOSE[draft.channel]
        draft.save()
        _set_segments(draft, changes)
        estimate = audience_estimate(draft, now=now)
        transaction.set_rollback(True)
    return estimate


def campaign_snapshot(*, campaign: Campaign, now: dt.datetime | None = None) -> dict[str, int]:
    """Write the send rows of a broadcast's audience, set-based; returns counts by status."""
    now = now or timezone.now()
    sql, params = classified_sql(campaign, now=now)
    insert_sends(sql, params)
    promotion_codes_create(campaign=campaign)
    campaign.exclusions = exclusion_counts(campaign)
    campaign.save(update_fields=["exclusions"])
    return campaign.exclusions


def campaign_launch(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    """Snapshot the audience and start sending (now, or at the scheduled time)."""
    _require_marketer(actor)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.SCHEDULED):
            raise ValidationError({"status": f"a {campaign.status} campaign cannot be launched"})
        problems = campaign_problems(campaign)
        if problems:
            raise ValidationError(problems)
        now = timezone.now()
        if campaign.send_at and campaign.send_at > now:
            campaign.status = Campaign.Status.SCHEDULED
            campaign.save(update_fields=["status", "updated_at"])
            return campaign
        campaign.launched_at = now
        campaign.status = Campaign.Status.SENDING
        if campaign.kind == Campaign.Kind.TRIGGERED:
            # Only customers who join from now on; the beat task turns joins into sends.
            campaign.trigger_cursor = now
            campaign.save(update_fields=["status", "launched_at", "trigger_cursor", "updated_at"])
            return campaign
        campaign.save(update_fields=["status", "launched_at", "updated_at"])
        campaign_snapshot(campaign=campaign, now=now)
        transaction.on_commit(lambda: campaign_dispatch_queue(campaign_id=campaign.pk))
    return campaign


def campaign_dispatch_queue(*, campaign_id: int) -> None:
    from campaigns.tasks import campaign_dispatch_task  # tasks import this module

    campaign_dispatch_task.delay(campaign_id)


def campaign_dispatch(*, campaign: Campaign, batch_size: int | None = None) -> int:
    """Queue delivery tasks over the pending rows (ids only); returns the number of batches."""
    from campaigns.tasks import campaign_send_batch_task

    if campaign.status != Campaign.Status.SENDING:
        return 0
    size = batch_size or settings.CAMPAIGNS_BATCH_SIZE
    Campaign.objects.filter(pk=campaign.pk).update(dispatched_at=timezone.now())
    ids = (
        Send.objects.filter(campaign=campaign, status=Send.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    batches = 0
    batch: list[int] = []
    for send_id in ids.iterator(chunk_size=10000):
        batch.append(send_id)
        if len(batch) >= size:
            campaign_send_batch_task.delay(campaign.pk, batch)
            batches, batch = batches + 1, []
    if batch:
        campaign_send_batch_task.delay(campaign.pk, batch)
        batches += 1
    if not batches:
        campaign_finish_if_done(campaign=campaign)
    return batches


def campaign_finish_if_done(*, campaign: Campaign) -> bool:
    """Mark a sending broadcast sent once no row is pending or being sent."""
    if campaign.kind != Campaign.Kind.BROADCAST:
        return False
    busy = Send.objects.filter(
        campaign=campaign, status__in=[Send.Status.PENDING, Send.Status.CLAIMED]
    ).exists()
    if busy:
        return False
    return bool(
        Campaign.objects.filter(pk=campaign.pk, status=Campaign.Status.SENDING).update(
            status=Campaign.Status.SENT, finished_at=timezone.now()
        )
    )


def _transition(campaign: Campaign, *, allowed: tuple[str, ...], to: str) -> Campaign:
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.status not in allowed:
            raise ValidationError({"status": f"a {locked.status} campaign cannot become {to}"})
        locked.status = to
        fields = ["status", "updated_at"]
        if to in (Campaign.Status.CANCELLED, Campaign.Status.STOPPED):
            locked.finished_at = timezone.now()
            fields.append("finished_at")
        locked.save(update_fields=fields)
    return locked


def campaign_pause(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    """Stop handing out rows; the ones being sent finish, the rest wait for resume."""
    _require_marketer(actor)
    return _transition(campaign, allowed=(Campaign.Status.SENDING,), to=Campaign.Status.PAUSED)


def campaign_resume(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    _require_marketer(actor)
    campaign = _transition(campaign, allowed=(Campaign.Status.PAUSED,), to=Campaign.Status.SENDING)
    transaction.on_commit(lambda: campaign_dispatch_queue(campaign_id=campaign.pk))
    return campaign


def campaign_cancel(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    """Cancel: nothing more goes out; pending rows are marked cancelled."""
    _require_marketer(actor)
    with transaction.atomic():
        campaign = _transition(
            campaign,
            allowed=(
                Campaign.Status.DRAFT,
                Campaign.Status.SCHEDULED,
                Campaign.Status.SENDING,
                Campaign.Status.PAUSED,
            ),
            to=Campaign.Status.CANCELLED,
        )
        Send.objects.filter(campaign=campaign, status=Send.Status.PENDING).update(
            status=Send.Status.CANCELLED, reason="campaign cancelled"
        )
    return campaign


def campaign_stop(*, campaign: Campaign, actor: AbstractBaseUser | None) -> Campaign:
    """End a triggered campaign: no new entries; what is queued is cancelled."""
    _require_marketer(actor)
    with transaction.atomic():
        campaign = _transition(
            campaign,
            allowed=(Campaign.Status.SENDING, Campaign.Status.PAUSED),
            to=Campaign.Status.STOPPED,
        )
        Send.objects.filter(campaign=campaign, status=Send.Status.PENDING).update(
            status=Send.Status.CANCELLED, reason="campaign stopped"
        )
    return campaign


def campaigns_start_scheduled(*, now: dt.datetime | None = None) -> list[int]:
    """Launch the scheduled campaigns whose time has come (beat)."""
    now = now or timezone.now()
    started = []
    for campaign in Campaign.objects.filter(status=Campaign.Status.SCHEDULED, send_at__lte=now):
        campaign_launch(campaign=campaign, actor=None)
        started.append(campaign.pk)
    return started


def campaign_trigger(*, campaign: Campaign, now: dt.datetime | None = None) -> int:
    """Turn new joins of the target segments into sends (after the delay); returns rows added.

    A customer is sent to at most once per campaign: a leave and re-entry adds nothing, unless
    the campaign allows repeats, in which case each new join is one more message. Who left the
    segments again before the delay was over gets nothing: they no longer match the targeting.
    """
    from segments.selectors import segment_joiners

    now = now or timezone.now()
    delay = campaign.trigger_delay or dt.timedelta(0)
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.kind != Campaign.Kind.TRIGGERED or campaign.status != Campaign.Status.SENDING:
            return 0
        start = campaign.trigger_cursor or campaign.launched_at or now
        until = now - delay
        if until <= start:
            return 0
        joiners = segment_joiners(
            segments=campaign.target_segments.all(), after=start, until=until
        ).filter(pk__in=targeted(campaign).values("pk"))
        added = 0
        if campaign.allow_repeats:
            # Each repeat gets the next occurrence number, so the unique key still holds.
            rounds = (
                Send.objects.filter(campaign=campaign)
                .values_list("occurrence", flat=True)
                .order_by("-occurrence")
                .first()
            )
            next_round = (rounds or 0) + 1
            # The periods never overlap, so every join in this one is a new entry. Repeats go
            # first: once inserted, this run's first-timers would look like repeats.
            earlier = Send.objects.filter(campaign=campaign).values("customer_id")
            again = joiners.filter(pk__in=earlier)
            added += insert_sends(
                *classified_sql(campaign, now=now, customers=again, occurrence=next_round)
            )
            first_time = joiners.exclude(pk__in=earlier)
            added += insert_sends(*classified_sql(campaign, now=now, customers=first_time))
        else:
            customers = joiners
            added += insert_sends(*classified_sql(campaign, now=now, customers=customers))
        campaign.trigger_cursor = until
        campaign.save(update_fields=["trigger_cursor"])
        promotion_codes_create(campaign=campaign, since=now)
        counts = exclusion_counts(campaign)
        Campaign.objects.filter(pk=campaign.pk).update(exclusions=counts)
        if added:
            transaction.on_commit(lambda: campaign_dispatch_queue(campaign_id=campaign.pk))
    return added


def campaigns_trigger_due(*, now: dt.datetime | None = None) -> int:
    total = 0
    for campaign in Campaign.objects.filter(
        kind=Campaign.Kind.TRIGGERED, status=Campaign.Status.SENDING
    ):
        total += campaign_trigger(campaign=campaign, now=now)
    return total


def sends_sweep(*, stale_after: dt.timedelta | None = None, now: dt.datetime | None = None) -> int:
    """Put rows stuck in `claimed` (their worker died) back to pending and re-queue their
    campaigns; returns the rows released. A released row's old worker can no longer record it
    as sent: marking sent checks the claim's attempt number."""
    now = now or timezone.now()
    stale_after = (
        stale_after
        if stale_after is not None
        else dt.timedelta(seconds=settings.CAMPAIGNS_CLAIM_TIMEOUT)
    )
    released = Send.objects.filter(
        status=Send.Status.CLAIMED, claimed_at__lt=now - stale_after
    ).update(status=Send.Status.PENDING, claimed_at=None)
    # Also re-queue sending campaigns whose queued batches may have died with a worker.
    stale = Campaign.objects.filter(status=Campaign.Status.SENDING).filter(
        Q(dispatched_at__lt=now - stale_after) | Q(dispatched_at__isnull=True)
    )
    for campaign in stale:
        if Send.objects.filter(campaign=campaign, status=Send.Status.PENDING).exists():
            campaign_dispatch(campaign=campaign)
        else:
            campaign_finish_if_done(campaign=campaign)
    return released


def sends_cancel_for_customer(queryset) -> None:
    """Erasure: cancel the person's pending sends, anonymise the delivered ones' provider ids."""
    queryset.filter(status__in=[Send.Status.PENDING, Send.Status.CLAIMED]).update(
        status=Send.Status.CANCELLED, reason="personal data erased"
    )
    queryset.update(provider_message_id="")
