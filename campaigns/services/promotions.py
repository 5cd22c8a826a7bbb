"""A campaign's promotion and its codes."""

import datetime as dt
import secrets
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone

from campaigns.models import Campaign, Promotion, PromotionCode, Send
from campaigns.services.access import _require_editable, _require_marketer

CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are typed by hand


CODE_LENGTH = 12  # 32^12 = 2^60 possibilities: unguessable


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
