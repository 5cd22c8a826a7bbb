"""Seeded, deterministic CSV files of customers and purchases for the import benchmark.

The same seed gives the same bytes. Purchases per customer follow a long tail (a few customers
buy a lot, most buy little), amounts are log-normal, dates span the two years before 2025-01-01.
About 70% of purchases carry an order number; the rest are keyed by the row itself.
"""

import csv
import datetime as dt
from pathlib import Path

import numpy as np

COUNTRIES = ["DE", "FR", "GB", "US", "ES", "IT", "NL", "PL", "SE", "AT"]
CITIES = {
    "DE": "Berlin",
    "FR": "Paris",
    "GB": "London",
    "US": "Boston",
    "ES": "Madrid",
    "IT": "Milano",
    "NL": "Utrecht",
    "PL": "Kraków",
    "SE": "Malmö",
    "AT": "Wien",
}
FIRST = [
    "Anna",
    "Ben",
    "Chloé",
    "David",
    "Eva",
    "Farid",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Kai",
    "Lena",
]
LAST = [
    "Müller",
    "Schmidt",
    "Dubois",
    "Smith",
    "García",
    "Rossi",
    "de Vries",
    "Nowak",
    "Berg",
    "Huber",
]
GENDERS = ["female", "male", "non_binary", "undisclosed", ""]
INCOME = ["low", "lower_middle", "middle", "upper_middle", "high", ""]
TAGS = ["newsletter", "vip", "outdoor", "running", "fashion", "b2b", ""]
CHANNELS = ["online", "store", "phone", "marketplace"]
CATEGORIES = ["shoes", "apparel", "outdoor", "electronics", "books", "home", "beauty", "toys"]
CUSTOMER_HEADER = [
    "external_id",
    "email",
    "first_name",
    "last_name",
    "gender",
    "birth_date",
    "country",
    "city",
    "language",
    "income_band",
    "tags",
    "attr.segment",
]
PURCHASE_HEADER = [
    "customer_external_id",
    "external_id",
    "purchased_at",
    "amount",
    "currency",
    "quantity",
    "channel",
    "product_sku",
    "category",
    "promotion_code",
]
END = dt.datetime(2025, 1, 1)
SPAN_SECONDS = 2 * 365 * 24 * 3600


def customer_external_id(i: int) -> str:
    return f"C{i:07d}"


def customers_csv_write(path: Path, *, count: int, seed: int = 1) -> int:
    """Write `count` customers; returns the number of data rows."""
    rng = np.random.default_rng(seed)
    country = rng.integers(0, len(COUNTRIES), count)
    first = rng.integers(0, len(FIRST), count)
    last = rng.integers(0, len(LAST), count)
    gender = rng.integers(0, len(GENDERS), count)
    income = rng.integers(0, len(INCOME), count)
    tag_a = rng.integers(0, len(TAGS), count)
    tag_b = rng.integers(0, len(TAGS), count)
    age_days = rng.integers(18 * 365, 80 * 365, count)
    segment = rng.integers(0, 5, count)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CUSTOMER_HEADER)
        for i in range(count):
            c = COUNTRIES[country[i]]
            tags = ";".join(sorted({TAGS[tag_a[i]], TAGS[tag_b[i]]} - {""}))
            w.writerow(
                (
                    customer_external_id(i),
                    f"customer{i}@example.com",
                    FIRST[first[i]],
                    LAST[last[i]],
                    GENDERS[gender[i]],
                    (dt.date(2024, 12, 31) - dt.timedelta(days=int(age_days[i]))).isoformat(),
                    c,
                    CITIES[c],
                    c.lower() if c not in ("US", "GB") else "en",
                    INCOME[income[i]],
                    tags,
                    f"s{segment[i]}",
                )
            )
    return count


def purchases_csv_write(
    path: Path, *, count: int, customers: int, seed: int = 2, broken_every: int = 0
) -> list[int]:
    """Write `count` purchases of `customers` customers; returns the line numbers made broken.

    With broken_every=N, every N-th row (counting from a seeded offset) gets one defect: a bad
    date, a bad amount, an unknown customer, a bad channel or a missing amount.
    """
    rng = np.random.default_rng(seed)
    # Long tail: a customer's weight is Pareto-distributed, so a few buy very often.
    weights = rng.pareto(1.2, customers) + 0.05
    weights /= weights.sum()
    who = rng.choice(customers, size=count, p=weights)
    seconds = rng.integers(0, SPAN_SECONDS, count)
    amount = np.round(rng.lognormal(mean=3.6, sigma=0.9, size=count), 2)
    quantity = rng.choice([1, 1, 1, 1, 2, 2, 3, 5], size=count)
    channel = rng.integers(0, len(CHANNELS), count)
    product = rng.integers(0, 400, count)
    has_order = rng.random(count) < 0.7
    promo = rng.random(count) < 0.05
    broken: list[int] = []
    path.parent.mkdir(parents=True, exist_ok=True)
    start = END - dt.timedelta(seconds=SPAN_SECONDS)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(PURCHASE_HEADER)
        for i in range(count):
            p = int(product[i])
            row = [
                customer_external_id(int(who[i])),
                f"O{i:09d}" if has_order[i] else "",
                (start + dt.timedelta(seconds=int(seconds[i]))).isoformat(),
                f"{amount[i]:.2f}",
                "EUR",
                str(quantity[i]),
                CHANNELS[channel[i]],
                f"SKU-{p:04d}",
                CATEGORIES[p % len(CATEGORIES)],
                "SPRING10" if promo[i] else "",
            ]
            if broken_every and i % broken_every == broken_every // 2:
                defect = (i // broken_every) % 5
                if defect == 0:
                    row[2] = "2024-13-45"
                elif defect == 1:
                    row[3] = "12,50"
                elif defect == 2:
                    row[0] = "NOBODY"
                elif defect == 3:
                    row[6] = "carrier-pigeon"
                else:
                    row[3] = ""
                broken.append(i + 2)  # header is line 1
            w.writerow(row)
    return broken
