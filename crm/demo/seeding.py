"""Deterministic demo data for the whole product: staff in every role, customers and what they did.

The same seed and the same day give the same data. Everything is written in bulk; the derived
customer figures are recomputed once at the end by customers.services.customer_stats_refresh and
consent goes through the ledger (privacy.services.consent_record_many), never around it.
"""

import datetime as dt
import functools
import itertools
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.db import connection, models, transaction
from django.utils import timezone
from tqdm import tqdm

from crm.demo import vocabulary as v
from crm.roles import Role
from customers.models import Account, Customer, Event, Note, Product, Purchase, Tag
from customers.phones import phone_e164
from customers.services import customer_stats_refresh
from privacy.models import ConsentSource, ConsentState, ConsentStatus, Purpose
from privacy.services import ConsentChange, consent_record_many

DEMO_PASSWORD = "demo-pass-2024"
# username -> (role group or None for the superuser, first name, last name)
DEMO_USERS: dict[str, tuple[str | None, str, str]] = {
    "admin": (None, "Ada", "Admin"),
    "sales": (Role.SALES, "Sam", "Seller"),
    "sales2": (Role.SALES, "Sasha", "Seller"),
    "marketing": (Role.MARKETING, "Mia", "Marketer"),
    "privacy": (Role.PRIVACY, "Pia", "Privacy"),
}
SALES_USERNAMES = ("sales", "sales2")
BATCH_SIZE = 2000
HISTORY_DAYS = 730  # purchases span the last two years


@dataclass
class DemoSummary:
    """How many rows of each kind the seeding wrote."""

    counts: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        return ", ".join(f"{n} {name}" for name, n in self.counts.items())


def demo_users_ensure(*, password: str = DEMO_PASSWORD) -> dict[str, models.Model]:
    """Create (or reset the password of) one user per role, exactly as the README lists them."""
    user_model = get_user_model()
    # One hash for all: the password is the same, published one, and hashing is slow on purpose.
    encoded = make_password(password)
    users = {}
    for username, (role, first_name, last_name) in DEMO_USERS.items():
        user, _ = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first_name,
                "last_name": last_name,
                "email": f"{username}@crm.example",
            },
        )
        user.is_active = True
        user.is_staff = role is None
        user.is_superuser = role is None
        user.password = encoded
        user.save(update_fields=["is_active", "is_staff", "is_superuser", "password"])
        if role is not None:
            user.groups.add(Group.objects.get(name=role))
        users[username] = user
    return users


# A step a higher app adds to the demo (segments, ...): it gets the demo staff by username, runs
# after the customers are committed, may be run again on the same data, and returns a count.
DemoStep = Callable[[dict[str, models.Model]], int]
_extra_steps: dict[str, DemoStep] = {}


def demo_step_register(name: str, step: DemoStep) -> None:
    """Add demo data of a higher app, written after the customers, purchases and consents."""
    _extra_steps[name] = step


def demo_data_clear() -> None:
    """Delete the demo's business data (customers and everything hanging off them); keep staff."""
    with transaction.atomic():
        Note.objects.all().delete()
        # The derived consent states protect the ledger rows they point at: drop them first.
        ConsentState.objects.all().delete()
        Customer.objects.all().delete()  # cascades to purchases, events, the ledger, memberships
        Account.objects.all().delete()
        Product.objects.all().delete()
        Tag.objects.all().delete()


def demo_data_seed(
    *,
    customers: int,
    seed: int,
    today: dt.date | None = None,
    progress: bool = True,
) -> DemoSummary:
    """Write `customers` demo customers with accounts, purchases, events, notes and consent."""
    if customers < 0:
        raise ValueError(f"customers: expected zero or more, got {customers}")
    today = today or timezone.now().date()
    seeder = _Seeder(rng=random.Random(seed), today=today, seed=seed)
    steps = [
        ("users", seeder.staff),
        ("products", seeder.products),
        ("tags", seeder.tags),
        ("accounts", lambda: seeder.accounts(customers)),
        ("customers", lambda: seeder.customers(customers)),
        ("purchases", seeder.purchases),
        ("events", seeder.events),
        ("notes", seeder.notes),
        ("consents", seeder.consents),
        ("figures", seeder.figures),
    ]
    extra = dict(_extra_steps)
    bar = tqdm(
        total=len(steps) + len(extra), desc="Seeding demo data", unit="step", disable=not progress
    )
    with transaction.atomic(), _explicit_timestamps(Account, Customer, Purchase, Note):
        for name, step in steps:
            bar.set_postfix_str(name)
            step()
            bar.update()
    with connection.cursor() as cursor:
        # Statistics for the planner now, not whenever autovacuum gets to it (if it runs at all):
        # without them a rule's plan is a nested loop that grows with the square of the customers.
        cursor.execute("ANALYZE")
    for name, extra_step in extra.items():  # each in transactions of its own, on committed data
        bar.set_postfix_str(name)
        seeder.counts[name] = extra_step(seeder.users)
        bar.update()
    bar.close()
    return DemoSummary(counts=seeder.counts)


@contextmanager
def _explicit_timestamps(*model_classes: type[models.Model]) -> Iterator[None]:
    """Let the seeder set created_at/updated_at itself, so data has a history and is repeatable."""
    switched = []
    for model in model_classes:
        for f in model._meta.concrete_fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                switched.append((f, f.auto_now, f.auto_now_add))
                f.auto_now = f.auto_now_add = False
    try:
        yield
    finally:
        for f, auto_now, auto_now_add in switched:
            f.auto_now, f.auto_now_add = auto_now, auto_now_add


@functools.cache
def _cumulative(choices: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    return [c for c, _ in choices], list(itertools.accumulate(w for _, w in choices))


def _weighted(rng: random.Random, choices: Sequence[tuple[str, int]]) -> str:
    names, cumulative = _cumulative(tuple(choices))
    return rng.choices(names, cum_weights=cumulative)[0]


def _fill(rng: random.Random, template: str) -> str:
    """Fill a template: '#' becomes a digit, '@' a capital letter."""
    out = []
    for ch in template:
        if ch == "#":
            out.append(str(rng.randrange(10)))
        elif ch == "@":
            out.append("ABCDEFGHJKLMNPRSTUVWXYZ"[rng.randrange(23)])
        else:
            out.append(ch)
    return "".join(out)


def _money(value: float) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


class _Seeder:
    """Holds what the steps share (the random stream, the rows written so far)."""

    def __init__(self, *, rng: random.Random, today: dt.date, seed: int) -> None:
        self.rng = rng
        self.seed = seed
        # Everything happens before the start of `today`, so nothing lies in the future.
        self.now = dt.datetime.combine(today, dt.time(0, 0), tzinfo=dt.UTC)
        self.counts: dict[str, int] = {}
        self.users: dict = {}
        self.account_rows: list[Account] = []
        self.customer_rows: list[Customer] = []
        self.interests: dict[int, list[str]] = {}  # customer index -> interest tags

    def ago(self, days: float) -> dt.datetime:
        """A moment `days` days before now, on a whole second."""
        return (self.now - dt.timedelta(days=days)).replace(microsecond=0)

    def staff(self) -> None:
        self.users = demo_users_ensure()
        self.sales = [self.users[name] for name in SALES_USERNAMES]
        self.counts["users"] = len(self.users)

    def products(self) -> None:
        Product.objects.bulk_create(
            [
                Product(sku=sku, name=name, category=cat, price=price)
                for sku, name, cat, price in v.PRODUCTS
            ]
        )
        self.product_rows = list(
            Product.objects.filter(sku__in=[p[0] for p in v.PRODUCTS]).order_by("sku")
        )
        self.by_category: dict[str, list[Product]] = {}
        for product in self.product_rows:
            self.by_category.setdefault(product.category, []).append(product)
        self.counts["products"] = len(self.product_rows)

    def tags(self) -> None:
        names = [*v.INTERESTS, *v.STATUS_TAGS]
        Tag.objects.bulk_create([Tag(name=n) for n in names], ignore_conflicts=True)
        self.tag_ids = dict(Tag.objects.filter(name__in=names).values_list("name", "id"))

    def accounts(self, customers: int) -> None:
        rng = self.rng
        # About one account per five customers; companies gather contacts, households families.
        for i in range(max(1, customers // 5) if customers else 0):
            country = rng.choices(v.COUNTRIES, weights=[c.weight for c in v.COUNTRIES])[0]
            city = rng.choice(country.cities)
            household = rng.random() < 0.55
            if household:
                last_name = rng.choice(country.last_names)
                name, industry, size, website = f"{last_name} household", "", "", ""
                kind = Account.Kind.HOUSEHOLD
            else:
                last_name = ""
                stem = rng.choice(v.COMPANY_WORDS[0]) + rng.choice(v.COMPANY_WORDS[1])
                name = f"{stem} {country.company_suffix}"
                industry = rng.choice(v.INDUSTRIES)
                size = _weighted(
                    rng, [("1-9", 35), ("10-49", 30), ("50-249", 20), ("250-999", 10), ("1000+", 5)]
                )
                website = f"https://{v.ascii_slug(stem)}{i}.example.com"
                kind = Account.Kind.COMPANY
            created = self.ago(rng.uniform(30, 3 * 365))
            account = Account(
                name=name,
                kind=kind,
                industry=industry,
                size=size,
                website=website,
                address=f"{rng.randint(1, 180)} {rng.choice(('Main', 'Park', 'Station', 'Market', 'Church'))} Street",
                city=city.name,
                postal_code=_fill(rng, city.postal_template),
                country=country.code,
                owner=self.sales[i % len(self.sales)],
                created_at=created,
                updated_at=created,
            )
            account._demo = (country, city, last_name)  # what its members inherit
            self.account_rows.append(account)
        Account.objects.bulk_create(self.account_rows, batch_size=BATCH_SIZE)
        self.counts["accounts"] = len(self.account_rows)

    def customers(self, count: int) -> None:
        rng = self.rng
        width = max(6, len(str(count)))
        rows, tag_links = [], []
        for i in range(count):
            account = (
                rng.choice(self.account_rows) if self.account_rows and rng.random() < 0.8 else None
            )
            if account is not None:
                country, city, family_name = account._demo
                owner = account.owner
            else:
                country = rng.choices(v.COUNTRIES, weights=[c.weight for c in v.COUNTRIES])[0]
                city, family_name = rng.choice(country.cities), ""
                owner = self.sales[i % len(self.sales)] if rng.random() < 0.95 else None
            gender = _weighted(rng, v.GENDERS)
            if gender == "female" or (gender not in ("male", "female") and rng.random() < 0.5):
                first_name = rng.choice(country.female_names)
            else:
                first_name = rng.choice(country.male_names)
            last_name = family_name or rng.choice(country.last_names)
            number = f"{i + 1:0{width}d}"
            email = None
            if rng.random() < 0.96:
                email = f"{v.ascii_slug(first_name)}.{v.ascii_slug(last_name)}.{number}@example.com"
            interests = rng.sample(list(v.INTERESTS), k=rng.choice((0, 1, 1, 2, 2, 3)))
            status = [t for t in v.STATUS_TAGS if rng.random() < 0.12]
            attributes = {
                "loyalty_tier": _weighted(rng, v.LOYALTY_TIERS),
                "shoe_size": rng.randint(36, 42) if gender == "female" else rng.randint(39, 47),
                "newsletter_frequency": rng.choice(("weekly", "monthly", "never")),
            }
            if account is not None and account.kind == Account.Kind.COMPANY:
                attributes["job_title"] = rng.choice(v.JOB_TITLES)
            # Most customers joined over the last three years; a few joined this week.
            joined_days = rng.uniform(0, 7) if rng.random() < 0.02 else rng.uniform(7, 3 * 365)
            created = self.ago(joined_days)
            rows.append(
                Customer(
                    account=account,
                    external_id=f"CUST-{number}",
                    first_name=first_name,
                    last_name=last_name,
                    email=email,
                    # Stored in E.164, as the form, the API and the import store phones.
                    phone=(phone_e164(_fill(rng, country.phone_template)) or "")
                    if rng.random() < 0.85
                    else "",
                    birth_date=self.now.date() - dt.timedelta(days=rng.randint(18 * 365, 82 * 365)),
                    gender=gender,
                    country=country.code,
                    region=city.region,
                    city=city.name,
                    postal_code=_fill(rng, city.postal_template),
                    language=country.language,
                    income_band=_weighted(rng, v.INCOME_BANDS) if rng.random() < 0.8 else "",
                    attributes=attributes,
                    source=_weighted(rng, v.SOURCES),
                    owner=owner,
                    created_at=created,
                    updated_at=created,
                )
            )
            self.interests[i] = interests
            tag_links.append([*interests, *status])
        Customer.objects.bulk_create(rows, batch_size=BATCH_SIZE)
        self.customer_rows = rows
        through = Customer.tags.through
        links = [
            through(customer_id=c.pk, tag_id=self.tag_ids[name])
            for c, names in zip(rows, tag_links, strict=True)
            for name in names
        ]
        through.objects.bulk_create(links, batch_size=BATCH_SIZE)
        self.counts["customers"] = len(rows)

    def purchases(self) -> None:
        rng = self.rng
        channels = v.CHANNELS
        rows = []
        order = 0
        for i, customer in enumerate(self.customer_rows):
            # Long tail: a fifth never bought, most bought a few times, a few dozens of times.
            if rng.random() < 0.2:
                continue
            n = min(80, int(rng.lognormvariate(0.7, 1.1)) + 1)
            since = min(HISTORY_DAYS, (self.now - customer.created_at).days)
            n = max(1, round(n * min(1.0, (since + 30) / 365)))  # newcomers had less time to buy
            favourite = [c for tag in self.interests[i] for c in v.INTERESTS[tag]] or list(
                v.CATEGORIES
            )
            for _ in range(n):
                order += 1
                category = rng.choice(favourite) if rng.random() < 0.7 else rng.choice(v.CATEGORIES)
                product = rng.choice(self.by_category[category]) if rng.random() < 0.9 else None
                quantity = 1 if rng.random() < 0.8 else rng.randint(2, 4)
                if product is not None:
                    # Prices vary with sales and sizes around the list price, log-normally.
                    amount = float(product.price) * quantity * rng.lognormvariate(0, 0.12)
                else:
                    amount = rng.lognormvariate(4.0, 0.8)
                promotion = ""
                if rng.random() < 0.12:
                    promotion = rng.choice(v.PROMOTION_CODES)
                    amount *= 0.85
                at = self.ago(rng.uniform(0, max(since, 1)))
                external_id = f"ORD-{self.seed}-{order:07d}"
                rows.append(
                    Purchase(
                        customer=customer,
                        external_id=external_id,
                        dedup_key=f"ext:{external_id}",
                        purchased_at=at,
                        amount=_money(max(amount, 1.0)),
                        currency="EUR",
                        quantity=quantity,
                        channel=_weighted(rng, channels),
                        product=product,
                        category=category,
                        promotion_code=promotion,
                        created_at=at,
                    )
                )
        Purchase.objects.bulk_create(rows, batch_size=BATCH_SIZE)
        self.counts["purchases"] = len(rows)

    def events(self) -> None:
        rng = self.rng
        rows = []
        for customer in self.customer_rows:
            if rng.random() < 0.3:
                continue
            for _ in range(int(rng.expovariate(1 / 8))):
                kind = _weighted(rng, v.EVENT_TYPES)
                product = rng.choice(self.product_rows)
                if kind in ("page_view", "add_to_cart", "wishlist_add"):
                    properties = {
                        "sku": product.sku,
                        "path": f"/shop/{product.category}/{product.sku.lower()}",
                    }
                elif kind == "search":
                    properties = {"query": product.name.split()[-1].lower()}
                else:
                    properties = {
                        "campaign": rng.choice(
                            ("spring-sale", "newsletter", "new-arrivals", "winback")
                        )
                    }
                rows.append(
                    Event(
                        customer=customer,
                        type=kind,
                        occurred_at=self.ago(rng.uniform(0, 180)),
                        properties=properties,
                    )
                )
        Event.objects.bulk_create(rows, batch_size=BATCH_SIZE)
        self.counts["events"] = len(rows)

    def notes(self) -> None:
        rng = self.rng
        bodies = {
            Note.Kind.NOTE: (
                "Prefers contact by e-mail.",
                "Asked about the loyalty programme.",
                "Interested in the new collection.",
                "Complained about a late delivery; resolved.",
            ),
            Note.Kind.CALL: (
                "Called about an open order.",
                "Follow-up call on the quote.",
                "Discussed renewal of the annual contract.",
            ),
            Note.Kind.MEETING: ("Met at the trade fair.", "Showroom visit with the buying team."),
            Note.Kind.TASK: (
                "Send the updated price list.",
                "Prepare a quote for the spring order.",
                "Check in after the first purchase.",
                "Invite to the VIP evening.",
            ),
        }
        rows = []
        subjects = [("customer", c) for c in self.customer_rows if rng.random() < 0.25]
        subjects += [("account", a) for a in self.account_rows if rng.random() < 0.4]
        for kind_of, subject in subjects:
            author = subject.owner or rng.choice(self.sales)
            kind = _weighted(
                rng,
                [
                    (Note.Kind.NOTE, 40),
                    (Note.Kind.CALL, 25),
                    (Note.Kind.MEETING, 10),
                    (Note.Kind.TASK, 25),
                ],
            )
            created = self.ago(rng.uniform(0, 120))
            note = Note(author=author, kind=kind, body=rng.choice(bodies[kind]), created_at=created)
            setattr(note, kind_of, subject)
            if kind == Note.Kind.TASK or rng.random() < 0.2:
                # Follow-ups: some overdue, some due in the coming days, some already done.
                roll = rng.random()
                if roll < 0.3:
                    note.due_date = self.now.date() - dt.timedelta(days=rng.randint(1, 21))
                elif roll < 0.7:
                    note.due_date = self.now.date() + dt.timedelta(days=rng.randint(0, 10))
                else:
                    note.due_date = (created + dt.timedelta(days=rng.randint(1, 14))).date()
                    note.done = True
                    note.done_at = max(created, self.ago(rng.uniform(0, 5)))
            rows.append(note)
        Note.objects.bulk_create(rows, batch_size=BATCH_SIZE)
        self.counts["notes"] = len(rows)

    def consents(self) -> None:
        rng = self.rng
        granted, withdrawn_later, opted_out = [], [], []
        for customer in self.customer_rows:
            given_at = max(customer.created_at, self.ago(HISTORY_DAYS))
            if customer.email and rng.random() < 0.68:
                granted.append(
                    ConsentChange(
                        customer.pk, Purpose.EMAIL_MARKETING, ConsentStatus.GRANTED, given_at
                    )
                )
                if rng.random() < 0.1:
                    later = given_at + (self.now - given_at) * rng.uniform(0.2, 0.95)
                    withdrawn_later.append(
                        ConsentChange(
                            customer.pk,
                            Purpose.EMAIL_MARKETING,
                            ConsentStatus.WITHDRAWN,
                            later.replace(microsecond=0),
                        )
                    )
            if customer.phone and rng.random() < 0.25:
                granted.append(
                    ConsentChange(
                        customer.pk, Purpose.SMS_MARKETING, ConsentStatus.GRANTED, given_at
                    )
                )
            if rng.random() < 0.35:
                granted.append(
                    ConsentChange(customer.pk, Purpose.PROFILING, ConsentStatus.GRANTED, given_at)
                )
            if customer.country == "US" and rng.random() < 0.15:
                # California-style "do not sell my personal information" opt-outs.
                opted_out.append(
                    ConsentChange(customer.pk, Purpose.DATA_SALE, ConsentStatus.WITHDRAWN, given_at)
                )
            elif rng.random() < 0.05:
                granted.append(
                    ConsentChange(customer.pk, Purpose.DATA_SALE, ConsentStatus.GRANTED, given_at)
                )
        written = consent_record_many(
            changes=granted, source=ConsentSource.FORM, evidence="demo: sign-up form"
        )
        written += consent_record_many(
            changes=withdrawn_later,
            source=ConsentSource.UNSUBSCRIBE,
            evidence="demo: unsubscribe link",
        )
        written += consent_record_many(
            changes=opted_out, source=ConsentSource.GPC, evidence="demo: GPC signal"
        )
        self.counts["consent records"] = written

    def figures(self) -> None:
        customer_stats_refresh()
