"""Writes on customer data. Views, API, tasks and commands call these; none write models directly."""

import logging
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import FieldDoesNotExist, PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from crm.roles import Role, user_edits_customers, user_has_role
from customers.contact_hashes import email_hash, phone_hash
from customers.fields import (
    CUSTOMER_EDITABLE_FIELDS,
    CUSTOMER_VALUE_FIELDS,
    EMAIL_IN_USE,
    EXTERNAL_ID_IN_USE,
    clean_country,
    customer_email_in_use,
    customer_external_id_in_use,
    customer_field_clean,
)
from customers.marks import (
    MARKS_TABLE,
    customers_mark,
    customers_mark_where,
    customers_marked_notify,
)
from customers.models import (
    Account,
    Customer,
    Event,
    FiguresCheck,
    Note,
    Product,
    Purchase,
    Tag,
)
from customers.registry import access_record, addresses_refused, merge_hooks
from customers.selectors import accounts_visible_to, customers_visible_to

logger = logging.getLogger(__name__)


# The figures derived from a customer's purchases, as SQL over the purchases `p` of one customer.
CUSTOMER_FIGURES = {
    "lifetime_value": "COALESCE(SUM(p.amount), 0)",
    "purchase_count": "COUNT(p.id)",
    "first_purchase_at": "MIN(p.purchased_at)",
    "last_purchase_at": "MAX(p.purchased_at)",
    "average_order_value": "COALESCE(ROUND(AVG(p.amount), 2), 0)",
}


def customer_figures_drifted(*, limit: int = 100) -> tuple[int, int, list[int]]:
    """Customers whose stored figures disagree with their purchases, in one set-based read:
    (customers checked, customers drifted, the ids of the first `limit` drifted)."""
    customers = Customer._meta.db_table
    purchases = Purchase._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE drifted), "
            "(array_agg(id ORDER BY id) FILTER (WHERE drifted))[1:%s] FROM ("
            "SELECT c.id, ("
            + ", ".join(f"c.{name}" for name in CUSTOMER_FIGURES)
            + ") IS DISTINCT FROM ("
            + ", ".join(f"a.{name}" for name in CUSTOMER_FIGURES)
            + ") AS drifted "
            f"FROM {customers} c CROSS JOIN LATERAL (SELECT "
            + ", ".join(f"{expr} AS {name}" for name, expr in CUSTOMER_FIGURES.items())
            + f" FROM {purchases} p WHERE p.customer_id = c.id) a) checked",
            [limit],
        )
        checked, drifted, ids = cursor.fetchone()
    return checked, drifted, list(ids or [])


def customer_figures_check(*, repair: bool = True) -> "FiguresCheck":
    """Check that every customer's figures agree with their purchases; record the outcome (the
    admin lists the checks), log any drift, and with `repair` recompute the drifted figures."""
    checked, drifted, ids = customer_figures_drifted()
    repaired = 0
    if drifted:
        logger.warning(
            "customer figures drift: %s of %s customers disagree with their purchases "
            "(first ids: %s)%s",
            drifted,
            checked,
            ids[:10],
            "; recomputing them" if repair else "",
        )
        if repair:
            repaired = customer_stats_refresh()
    return FiguresCheck.objects.create(
        customers_checked=checked,
        customers_drifted=drifted,
        customers_repaired=repaired,
        drifted_ids=ids,
    )


def customer_stats_refresh(*, customer_ids: Iterable[int] | None = None) -> int:
    """Recompute the derived purchase figures set-based, for some customers or for all.

    One UPDATE ... FROM a grouped aggregate per chunk of customers (one for all), writing only
    the rows whose figures changed, and marking those customers for segments (customers.marks).
    Returns rows updated. A chunk is one array parameter of up
    to 200,000 ids: each chunk reads the purchases once, so fewer chunks read less.
    """
    customers = Customer._meta.db_table
    purchases = Purchase._meta.db_table
    figures = CUSTOMER_FIGURES
    # The customers whose figures change are marked for segments in the same statement.
    statement = (
        f"WITH changed AS (UPDATE {customers} SET "
        + ", ".join(f"{name} = a.{name}" for name in figures)
        + " FROM (SELECT c.id AS id, "
        + ", ".join(f"{expr} AS {name}" for name, expr in figures.items())
        + f" FROM {customers} c LEFT JOIN {purchases} p ON p.customer_id = c.id"
        + " {where} GROUP BY c.id) a"
        + f" WHERE {customers}.id = a.id AND ("
        + " OR ".join(f"{customers}.{name} IS DISTINCT FROM a.{name}" for name in figures)
        + f") RETURNING {customers}.id) "
        + f"INSERT INTO {MARKS_TABLE} AS m (customer_id, marked_at) "
        + "SELECT id, clock_timestamp() FROM changed ORDER BY id "
        + "ON CONFLICT (customer_id) DO UPDATE SET marked_at = LEAST(m.marked_at, EXCLUDED.marked_at)"
    )
    updated = 0
    with transaction.atomic(), connection.cursor() as cursor:
        if customer_ids is None:
            cursor.execute(statement.format(where=""))
            updated = cursor.rowcount
            if updated:
                customers_marked_notify()
            return updated
        ids = sorted(set(customer_ids))
        for start in range(0, len(ids), 200_000):
            chunk = ids[start : start + 200_000]
            cursor.execute(statement.format(where="WHERE c.id = ANY(%s)"), [chunk])
            updated += cursor.rowcount
        if updated:
            customers_marked_notify()
    return updated


# --- Customers, accounts, notes and merges as staff edit them (web UI and API) ---------------

ACCOUNT_EDITABLE_FIELDS = (
    "name",
    "kind",
    "industry",
    "size",
    "website",
    "address",
    "city",
    "postal_code",
    "country",
    "owner",
)


def _require_editor(actor: AbstractBaseUser | None) -> None:
    if actor is not None and not user_edits_customers(actor):
        raise PermissionDenied(
            "Only sales staff and admins create or change customers and accounts."
        )


OWNER_REFUSED = "Only an administrator can assign an owner other than you."
ACCOUNT_HIDDEN = "No account with that number that you may see."


def _check_owner(
    *, actor: AbstractBaseUser | None, owner, record: Account | Customer | None
) -> None:
    """Staff own what they create and may take what they change; only an administrator hands a
    record to someone else (or to nobody). Keeping the owner an existing `record` has is no
    assignment. The API and the pages both come here."""
    if actor is None or actor.is_superuser:
        return
    owner_id = getattr(owner, "pk", owner)
    if owner_id == actor.pk or (record is not None and owner_id == record.owner_id):
        return
    raise ValidationError({"owner": OWNER_REFUSED})


def _check_account(
    *, actor: AbstractBaseUser | None, account: Account | None, current_account_id: int | None
) -> None:
    """A customer joins only an account the user may see (keeping the one it has is fine)."""
    if actor is None or account is None or account.pk == current_account_id:
        return
    if not accounts_visible_to(actor).filter(pk=account.pk).exists():
        raise ValidationError({"account": ACCOUNT_HIDDEN})


def _refuse_addresses(*, email: str | None, phone: str | None) -> None:
    """Refuse an email or phone that a higher app forbids recording (an erased person's)."""
    refused = addresses_refused(email_hashes=[email_hash(email)], phone_hashes=[phone_hash(phone)])
    if refused:
        raise ValidationError(
            {kind: f"This address {reason}." for (kind, _hash), reason in sorted(refused.items())}
        )


def _normalise_customer_fields(fields: dict, *, customer: Customer | None = None) -> dict:
    """Every profile field through its one cleaner (customers.fields), as the form, the API and
    the import read it (the cleaners give the same value for a value they cleaned before), and
    an email another customer has refused. All errors at once, by field."""
    errors: dict[str, list[str]] = {}
    for name in CUSTOMER_VALUE_FIELDS:
        if name in fields:
            try:
                fields[name] = customer_field_clean(name, fields[name])
            except ValidationError as exc:
                errors[name] = exc.messages
    exclude_pk = customer.pk if customer is not None else None
    if "email" not in errors and customer_email_in_use(fields.get("email"), exclude_pk=exclude_pk):
        errors["email"] = [EMAIL_IN_USE]
    if "external_id" not in errors and customer_external_id_in_use(
        fields.get("external_id"), exclude_pk=exclude_pk
    ):
        errors["external_id"] = [EXTERNAL_ID_IN_USE]
    if errors:
        raise ValidationError(errors)
    return fields


def _account_country(fields: dict) -> dict:
    if "country" in fields:
        try:
            fields["country"] = clean_country(fields["country"])
        except ValidationError as exc:
            raise ValidationError({"country": exc.messages}) from None
    return fields


def _unknown_fields(fields: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValidationError({name: "This field cannot be set." for name in unknown})


def customer_create(
    *,
    actor: AbstractBaseUser | None = None,
    tags: Iterable[Tag] | None = None,
    by_the_person: bool = False,
    **fields,
) -> Customer:
    """Create a customer after validating every field; the owner defaults to the creating user.

    An address a higher app refuses (an erased person's) is refused, unless `by_the_person`: the
    person gave it themselves (the sign-up form), so they may come back."""
    _require_editor(actor)
    _unknown_fields(fields, CUSTOMER_EDITABLE_FIELDS)
    fields = _normalise_customer_fields(fields)
    if "owner" not in fields and actor is not None and actor.is_authenticated:
        fields["owner"] = actor
    if "owner" in fields:
        _check_owner(actor=actor, owner=fields["owner"], record=None)
    _check_account(actor=actor, account=fields.get("account"), current_account_id=None)
    customer = Customer(**fields)
    customer.full_clean()
    if not by_the_person:
        _refuse_addresses(email=customer.email, phone=customer.phone)
    with transaction.atomic():
        customer.save(force_insert=True)
        customers_mark(customer_ids=[customer.pk])
        if tags is not None:
            customer.tags.set(tags)
        if actor is not None:
            access_record(
                user=actor,
                action="change",
                object_kind="customer",
                object_id=customer.pk,
                details={"operation": "create"},
            )
    return customer


def customer_update(
    *,
    customer: Customer,
    actor: AbstractBaseUser | None = None,
    tags: Iterable[Tag] | None = None,
    **fields,
) -> Customer:
    """Change a customer's profile fields (and tags when given) after validating them."""
    _require_editor(actor)
    _unknown_fields(fields, CUSTOMER_EDITABLE_FIELDS)
    fields = _normalise_customer_fields(fields, customer=customer)
    if "owner" in fields:
        _check_owner(actor=actor, owner=fields["owner"], record=customer)
    if "account" in fields:
        _check_account(
            actor=actor, account=fields["account"], current_account_id=customer.account_id
        )
    # Only an address the customer does not already have is checked: one written another way
    # (case, spacing, punctuation) is the same address, kept even if an erased person shared it.
    new_email = fields.get("email")
    if email_hash(new_email) == email_hash(customer.email):
        new_email = None
    new_phone = fields.get("phone")
    if phone_hash(new_phone) == phone_hash(customer.phone):
        new_phone = None
    # The audit entry names the fields that really changed (a form posts all of them).
    changed = sorted(name for name, value in fields.items() if getattr(customer, name) != value)
    for name, value in fields.items():
        setattr(customer, name, value)
    customer.full_clean()
    _refuse_addresses(email=new_email, phone=new_phone)
    with transaction.atomic():
        customers_mark(customer_ids=[customer.pk])
        if tags is not None:
            tags = list(tags)
            if {t.pk for t in tags} != set(customer.tags.values_list("pk", flat=True)):
                changed.append("tags")
        customer.save(update_fields=[*fields, "updated_at"])
        if tags is not None:
            customer.tags.set(tags)
        if actor is not None:
            access_record(
                user=actor,
                action="change",
                object_kind="customer",
                object_id=customer.pk,
                details={"fields": changed},
            )
    return customer


def account_create(
    *,
    actor: AbstractBaseUser | None = None,
    tags: Iterable[Tag] | None = None,
    **fields,
) -> Account:
    """Create an account after validating it; the owner defaults to the creating user."""
    _require_editor(actor)
    _unknown_fields(fields, ACCOUNT_EDITABLE_FIELDS)
    fields = _account_country(fields)
    if "owner" not in fields and actor is not None and actor.is_authenticated:
        fields["owner"] = actor
    if "owner" in fields:
        _check_owner(actor=actor, owner=fields["owner"], record=None)
    account = Account(**fields)
    account.full_clean()
    with transaction.atomic():
        account.save(force_insert=True)
        if tags is not None:
            account.tags.set(tags)
    return account


def account_update(
    *,
    account: Account,
    actor: AbstractBaseUser | None = None,
    tags: Iterable[Tag] | None = None,
    **fields,
) -> Account:
    """Change an account's fields (and tags when given) after validating them."""
    _require_editor(actor)
    _unknown_fields(fields, ACCOUNT_EDITABLE_FIELDS)
    if "owner" in fields:
        _check_owner(actor=actor, owner=fields["owner"], record=account)
    fields = _account_country(fields)
    for name, value in fields.items():
        setattr(account, name, value)
    account.full_clean()
    with transaction.atomic():
        # Rules read the account's name, industry, size, kind and country through its customers.
        customers_mark_where(
            select_ids=f"SELECT id FROM {Customer._meta.db_table} WHERE account_id = %s",
            params=[account.pk],
        )
        account.save(update_fields=[*fields, "updated_at"])
        if tags is not None:
            account.tags.set(tags)
    return account


def note_create(
    *,
    author: AbstractBaseUser,
    body: str,
    customer: Customer | None = None,
    account: Account | None = None,
    kind: str = Note.Kind.NOTE,
    due_date: date | None = None,
) -> Note:
    """Log a note, or a follow-up when it has a due date, on a customer or an account."""
    _require_editor(author)
    note = Note(
        customer=customer,
        account=account,
        author=author,
        kind=kind,
        body=body.strip(),
        due_date=due_date,
    )
    if customer is None and account is None:
        raise ValidationError({"customer": "A note belongs to a customer or an account."})
    # A note goes only on a customer or an account the author may see (the API and the pages
    # find them through the same selectors; this keeps any other caller to the same rule).
    if customer is not None and not customers_visible_to(author).filter(pk=customer.pk).exists():
        raise ValidationError({"customer": "No customer with that number that you may see."})
    if account is not None and not accounts_visible_to(author).filter(pk=account.pk).exists():
        raise ValidationError({"account": ACCOUNT_HIDDEN})
    note.full_clean()
    note.save(force_insert=True)
    return note


def note_complete(*, note: Note, actor: AbstractBaseUser | None = None) -> Note:
    """Mark a follow-up done (once: completing it again keeps the first completion time)."""
    _require_editor(actor)
    if not note.done:
        note.done = True
        note.done_at = timezone.now()
        note.save(update_fields=["done", "done_at"])
    return note


def _merge_fill_blanks(*, target: Customer, duplicate: Customer) -> list[str]:
    """Copy profile fields the target lacks from the duplicate; the target wins where both have one."""
    filled = []
    for name in CUSTOMER_EDITABLE_FIELDS:
        if name == "attributes":
            merged = {**duplicate.attributes, **target.attributes}
            if merged != target.attributes:
                target.attributes = merged
                filled.append(name)
            continue
        if getattr(target, f"{name}_id" if name in ("account", "owner") else name) in (None, ""):
            value = getattr(duplicate, name)
            if value not in (None, ""):
                setattr(target, name, value)
                filled.append(name)
    return filled


def customer_merge(
    *, target: Customer, duplicate: Customer, actor: AbstractBaseUser | None = None
) -> Customer:
    """Fold a duplicate customer into the target: everything the duplicate has moves over.

    Purchases, events, notes, tags and consent records move set-based; blank profile fields of the
    target are filled from the duplicate; higher apps move their own rows through merge hooks;
    the figures are recomputed; the duplicate is deleted and the merge is recorded on the target's
    timeline as a `customer_merged` event.
    """
    _require_editor(actor)
    if target.pk == duplicate.pk:
        raise ValidationError({"duplicate": "A customer cannot be merged into itself."})
    if actor is not None:
        seen = customers_visible_to(actor).filter(pk__in=[target.pk, duplicate.pk]).count()
        if seen != 2:
            raise ValidationError({"duplicate": "No customer with that number that you may see."})
    with transaction.atomic():
        # Marked first, before the rows are locked (see customers.marks); the duplicate's mark
        # goes with it.
        customers_mark(customer_ids=[target.pk, duplicate.pk])
        locked = {
            c.pk: c
            for c in Customer.objects.select_for_update().filter(pk__in=[target.pk, duplicate.pk])
        }
        if len(locked) != 2:
            raise ValidationError({"duplicate": "One of the customers no longer exists."})
        target, duplicate = locked[target.pk], locked[duplicate.pk]
        moved = {
            "purchases": Purchase.objects.filter(customer=duplicate).update(customer=target),
            "events": Event.objects.filter(customer=duplicate).update(customer=target),
            "notes": Note.objects.filter(customer=duplicate).update(customer=target),
            "consent_records": _consent_records_reassign(
                target_id=target.pk, duplicate_id=duplicate.pk
            ),
        }
        target.tags.add(*duplicate.tags.all())
        for hook in merge_hooks():
            hook(target.pk, duplicate.pk)
        filled = _merge_fill_blanks(target=target, duplicate=duplicate)
        snapshot = {
            "merged_customer_id": duplicate.pk,
            "merged_external_id": duplicate.external_id,
            "moved": moved,
            "filled": filled,
        }
        duplicate.delete()  # frees its unique email and external id before the target takes them
        if filled:
            target.full_clean(exclude=["owner", "account"])
            target.save(update_fields=[*filled, "updated_at"])
        customer_stats_refresh(customer_ids=[target.pk])
        Event.objects.create(
            customer=target,
            type="customer_merged",
            occurred_at=timezone.now(),
            properties={**snapshot, "by": getattr(actor, "pk", None)},
        )
        if actor is not None:
            access_record(
                user=actor,
                action="merge",
                object_kind="customer",
                object_id=target.pk,
                details={"merged_customer_id": snapshot["merged_customer_id"], "moved": moved},
            )
    target.refresh_from_db()
    return target


def _consent_records_reassign(*, target_id: int, duplicate_id: int) -> int:
    """Move the duplicate's consent ledger rows to the target with one set-based UPDATE.

    The ledger is append-only and its QuerySet refuses update(). A merge is the one documented
    exception: no record's content (state, time, source, wording, actor, evidence) changes, only
    which of the two records of the same person it hangs on, and the merge itself is recorded.
    The table is found through the reverse relation, so this app does not import privacy.
    """
    try:
        ledger = Customer._meta.get_field("consent_records").related_model
    except FieldDoesNotExist:
        return 0
    table = connection.ops.quote_name(ledger._meta.db_table)
    column = connection.ops.quote_name(ledger._meta.get_field("customer").column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET {column} = %s WHERE {column} = %s", [target_id, duplicate_id]
        )
        return cursor.rowcount


# --- Purchases, products, events, notes and tags as the API writes them ----------------------


def _require_role(actor: AbstractBaseUser | None, *roles: str, doing: str) -> None:
    """System callers (actor None: imports, tasks) pass; staff need one of the roles."""
    if actor is not None and not user_has_role(actor, *roles):
        raise PermissionDenied(f"Your role does not allow you to {doing}.")


def tags_get_or_create(*, names: Iterable[str]) -> list[Tag]:
    """The Tag rows for the names, matching existing tags regardless of case, creating new ones."""
    wanted: dict[str, str] = {}
    for name in names:
        name = name.strip()
        if name:
            wanted.setdefault(name.lower(), name)
    if not wanted:
        return []
    query = Q()
    for name in wanted.values():
        query |= Q(name__iexact=name)
    found = {tag.name.lower(): tag for tag in Tag.objects.filter(query)}
    missing = [Tag(name=name) for key, name in wanted.items() if key not in found]
    if missing:
        Tag.objects.bulk_create(missing, ignore_conflicts=True)
        found.update({tag.name.lower(): tag for tag in Tag.objects.filter(query)})
    return [found[key] for key in wanted]


def purchase_create(
    *,
    customer: Customer,
    purchased_at: datetime,
    amount: Decimal,
    actor: AbstractBaseUser | None = None,
    external_id: str | None = None,
    currency: str = "EUR",
    quantity: int = 1,
    channel: str = Purchase.Channel.ONLINE,
    product: Product | None = None,
    category: str = "",
    promotion_code: str = "",
) -> Purchase:
    """Record a purchase (once: the same order or the same row again is refused) and refresh the
    customer's figures in the same transaction."""
    _require_role(actor, Role.SALES, doing="record purchases")
    external_id = (external_id or "").strip() or None
    currency = currency.strip().upper()
    if not category and product is not None:
        category = product.category
    purchase = Purchase(
        customer=customer,
        external_id=external_id,
        purchased_at=purchased_at,
        amount=amount,
        currency=currency,
        quantity=quantity,
        channel=channel,
        product=product,
        category=category,
        promotion_code=promotion_code.strip(),
    )
    # The import derives the same key, so a purchase posted and imported is stored once. Imported
    # here because the import module itself builds on this one.
    from customers.importing.purchases import purchase_dedup_key

    purchase.dedup_key = purchase_dedup_key(
        customer_id=customer.pk,
        external_id=external_id,
        purchased_at=purchased_at,
        amount=amount,
        currency=currency,
        quantity=quantity,
        channel=channel,
        product_id=product.pk if product is not None else None,
        category=category,
        promotion_code=purchase.promotion_code,
    )
    purchase.full_clean(exclude=["dedup_key"])
    if Purchase.objects.filter(dedup_key=purchase.dedup_key).exists():
        raise ValidationError(
            {"external_id": "A purchase with this order number is already recorded."}
            if external_id
            else {"non_field_errors": "The same purchase is already recorded for this customer."}
        )
    with transaction.atomic():
        customers_mark(customer_ids=[customer.pk])
        purchase.save(force_insert=True)
        customer_stats_refresh(customer_ids=[customer.pk])
    return purchase


def product_create(
    *,
    sku: str,
    name: str,
    actor: AbstractBaseUser | None = None,
    category: str = "",
    price: Decimal = Decimal("0"),
) -> Product:
    """Add a product to the catalogue."""
    _require_role(actor, Role.MARKETING, doing="manage products")
    product = Product(sku=sku.strip(), name=name.strip(), category=category.strip(), price=price)
    product.full_clean()
    product.save(force_insert=True)
    return product


def product_update(*, product: Product, actor: AbstractBaseUser | None = None, **fields) -> Product:
    """Change a product's sku, name, category or price."""
    _require_role(actor, Role.MARKETING, doing="manage products")
    _unknown_fields(fields, ("sku", "name", "category", "price"))
    for name, value in fields.items():
        setattr(product, name, value.strip() if isinstance(value, str) else value)
    product.full_clean()
    product.save(update_fields=list(fields))
    return product


def product_delete(*, product: Product, actor: AbstractBaseUser | None = None) -> None:
    """Remove a product; its purchases stay, without a product."""
    _require_role(actor, Role.MARKETING, doing="manage products")
    product.delete()


def event_create(
    *,
    customer: Customer,
    type: str,
    occurred_at: datetime,
    actor: AbstractBaseUser | None = None,
    properties: dict | None = None,
) -> Event:
    """Record something a customer did (page view, email open, app action)."""
    _require_role(actor, Role.MARKETING, doing="record behaviour events")
    event = Event(
        customer=customer, type=type.strip(), occurred_at=occurred_at, properties=properties or {}
    )
    event.full_clean()
    with transaction.atomic():
        customers_mark(customer_ids=[customer.pk])
        event.save(force_insert=True)
    return event


def events_create(*, events: Iterable[Event], actor: AbstractBaseUser | None = None) -> list[Event]:
    """Record many things customers did at once: event_create's checks, one insert."""
    _require_role(actor, Role.MARKETING, doing="record behaviour events")
    events = list(events)
    if not events:
        return []
    for event in events:
        event.type = event.type.strip()
        # The customer is checked below for the whole batch, not with one query per event.
        event.full_clean(exclude=["customer"])
    wanted = {event.customer_id for event in events}
    found = set(Customer.objects.filter(pk__in=wanted).values_list("pk", flat=True))
    if missing := sorted(wanted - found):
        raise ValidationError(
            {"customer": [f"customer instance with id {pk} does not exist." for pk in missing]}
        )
    with transaction.atomic():
        customers_mark(customer_ids=wanted)
        return Event.objects.bulk_create(events)


def note_update(*, note: Note, actor: AbstractBaseUser | None = None, **fields) -> Note:
    """Change a note's text, kind or due date, or mark a follow-up done or open again."""
    _require_editor(actor)
    _unknown_fields(fields, ("body", "kind", "due_date", "done"))
    if "body" in fields:
        fields["body"] = fields["body"].strip()
    if "done" in fields and fields["done"] != note.done:
        note.done_at = timezone.now() if fields["done"] else None
        fields["done_at"] = note.done_at
    for name, value in fields.items():
        setattr(note, name, value)
    note.full_clean()
    note.save(update_fields=list(fields))
    return note


def note_delete(*, note: Note, actor: AbstractBaseUser | None = None) -> None:
    """Remove a note or follow-up."""
    _require_editor(actor)
    note.delete()
