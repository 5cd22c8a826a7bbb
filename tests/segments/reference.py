"""A plain-Python evaluator of the rule language, written from docs/rules.md, independent of the
SQL compiler. The property test checks that both select exactly the same customers.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils import timezone

from customers.models import Customer, Event, Purchase
from privacy.models import ConsentState
from segments.ml.models import CustomerScore
from segments.models import Membership

# Score fields (docs/ml.md): read from the customer's score row; no row means no value.
SCORE_FIELDS = (
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "rfm_score",
    "rfm_class",
    "churn_risk",
    "predicted_value",
    "predicted_lifetime_value",
    "p_alive",
)
# A rule field's name where it differs from the score column's.
SCORE_COLUMNS = {"predicted_lifetime_value": "lifetime_value"}

MONEY_SCORES = ("rfm_monetary", "predicted_value", "predicted_lifetime_value")
MISSING = object()


@dataclass
class Person:
    customer: Customer
    tags: set[str] = field(default_factory=set)
    purchases: list[Purchase] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    consents: dict[str, str] = field(default_factory=dict)
    segments: set[int] = field(default_factory=set)
    score: Any = None  # segments.ml CustomerScore, when the customer has one


def load_people() -> list[Person]:
    people = {c.pk: Person(c) for c in Customer.objects.select_related("account")}
    for c in Customer.objects.prefetch_related("tags"):
        people[c.pk].tags = {t.name for t in c.tags.all()}
    for p in Purchase.objects.select_related("product"):
        people[p.customer_id].purchases.append(p)
    for e in Event.objects.all():
        people[e.customer_id].events.append(e)
    for s in ConsentState.objects.all():
        people[s.customer_id].consents[s.purpose_id] = s.state
    for m in Membership.objects.all():
        people[m.customer_id].segments.add(m.segment_id)
    for score in CustomerScore.objects.all():
        people[score.customer_id].score = score
    return list(people.values())


class Reference:
    def __init__(self, now: dt.datetime):
        self.now = now
        self.tz = timezone.get_current_timezone()
        self.today = timezone.localdate(now, self.tz)

    def select(self, rule: dict, people: list[Person]) -> set[int]:
        return {p.customer.pk for p in people if self.holds(rule, p)}

    def holds(self, node: dict, p: Person) -> bool:
        if "all" in node:
            return all(self.holds(n, p) for n in node["all"])
        if "any" in node:
            return any(self.holds(n, p) for n in node["any"])
        if "not" in node:
            return not self.holds(node["not"], p)
        if "consent" in node:
            return p.consents.get(node["consent"], "unknown") == node["state"]
        if "segment" in node:
            return node["segment"] in p.segments
        if "metric" in node:
            return self.metric(node, p)
        return self.field(node, p)

    # Comparisons of one value; None means "no value": every comparison is false.
    def compare(self, value: Any, op: str, target: Any, text: bool = False) -> bool:
        if op in ("ne", "not_in"):
            return not self.compare(value, "eq" if op == "ne" else "in", target, text)
        if op == "is_empty":
            return value is None or value == "" or value == set()
        if op == "is_not_empty":
            return not self.compare(value, "is_empty", target)
        if value is None:
            return False
        if op == "eq":
            return value == target
        if op == "in":
            return value in target
        if op == "between":
            return target[0] <= value <= target[1]
        if op == "contains":
            return target.lower() in value.lower()
        if op == "starts_with":
            return value.lower().startswith(target.lower())
        if op == "ends_with":
            return value.lower().endswith(target.lower())
        return {
            "gt": value > target,
            "gte": value >= target,
            "lt": value < target,
            "lte": value <= target,
        }[op]

    def age(self, born: dt.date | None) -> int | None:
        if born is None:
            return None
        t = self.today
        return t.year - born.year - ((t.month, t.day) < (born.month, born.day))

    def local_day(self, at: dt.datetime | None) -> dt.date | None:
        return None if at is None else timezone.localtime(at, self.tz).date()

    def field(self, node: dict, p: Person) -> bool:
        name, op, target = node["field"], node["op"], node.get("value")
        c = p.customer
        if name.startswith("attr."):
            return self.attr(c.attributes.get(name[5:], MISSING), op, target)
        if name == "tags":
            if op in ("is_empty", "is_not_empty"):
                return (not p.tags) == (op == "is_empty")
            wanted = {target} if op in ("eq", "ne") else set(target)
            has = bool(p.tags & wanted)
            return has if op in ("eq", "in") else not has
        if name == "age":
            return self.compare(self.age(c.birth_date), op, target)
        if name in ("created_at", "first_purchase_at", "last_purchase_at", "birth_date"):
            return self.date(getattr(c, name), op, target, name == "birth_date")
        if name in SCORE_FIELDS:
            column = SCORE_COLUMNS.get(name, name)
            value = getattr(p.score, column) if p.score is not None else None
            if name in ("churn_risk", "p_alive"):  # a float column: compared as floats
                target = [float(v) for v in target] if isinstance(target, list) else target
                target = float(target) if isinstance(target, str | int | float) else target
            elif name in MONEY_SCORES and value is not None:
                value = Decimal(value)
                target = self.decimals(target)
            if op in ("is_empty", "is_not_empty"):
                return self.compare(value, op, None)
            return self.compare(value, op, target)
        if name.startswith("account."):
            value = getattr(c.account, name[8:]) if c.account else None
        elif name == "owner":
            value = c.owner_id
        else:
            value = getattr(c, name)
        if name in ("lifetime_value", "average_order_value"):
            value = Decimal(value)
            target = self.decimals(target)
        if op in ("is_empty", "is_not_empty"):
            return self.compare(value, op, None)
        return self.compare(value, op, target)

    @staticmethod
    def decimals(target: Any) -> Any:
        if isinstance(target, list):
            return [Decimal(str(v)) for v in target]
        return Decimal(str(target))

    def date(self, at: Any, op: str, target: Any, is_date: bool) -> bool:
        if op in ("is_empty", "is_not_empty"):
            return (at is None) == (op == "is_empty")
        if op in ("ne", "not_in"):
            return not self.date(at, "eq" if op == "ne" else "in", target, is_date)
        if at is None:
            return False
        if op == "within_last_days":
            if is_date:
                return self.today - dt.timedelta(days=target) <= at <= self.today
            return self.now - dt.timedelta(days=target) <= at <= self.now
        day = at if is_date else self.local_day(at)
        parse = dt.date.fromisoformat
        if op == "in":
            return day in {parse(v) for v in target}
        if op == "between":
            return parse(target[0]) <= day <= parse(target[1])
        op = {"before": "lt", "after": "gt"}.get(op, op)
        return self.compare(day, op, parse(target))

    def attr(self, value: Any, op: str, target: Any) -> bool:
        if op in ("is_empty", "is_not_empty"):
            empty = value is MISSING or value is None or value == ""
            return empty == (op == "is_empty")
        if op in ("ne", "not_in"):
            return not self.attr(value, "eq" if op == "ne" else "in", target)
        sample = target[0] if isinstance(target, list) else target
        # Only values of the condition's JSON type take part; others have no value.
        if op in ("contains", "starts_with", "ends_with") or isinstance(sample, str):
            typed = value if isinstance(value, str) else None
        elif isinstance(sample, bool):
            typed = value if isinstance(value, bool) else None
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            typed = Decimal(str(value)) if ok else None
            target = self.decimals(target)
        return self.compare(typed, op, target)

    def rows(self, node: dict, p: Person) -> list:
        metric = node["metric"]
        window = node.get("window") or {}
        flt = node.get("filter") or {}
        if metric == "event_count":
            rows = [(e.occurred_at, e) for e in p.events]
        else:
            rows = [(x.purchased_at, x) for x in p.purchases]

        def wanted(values: Any) -> set:
            return set(values) if isinstance(values, list) else {values}

        out = []
        for at, row in rows:
            if "last_days" in window and not (
                self.now - dt.timedelta(days=window["last_days"]) <= at <= self.now
            ):
                continue
            day = self.local_day(at)
            if window.get("from") and day < dt.date.fromisoformat(window["from"]):
                continue
            if window.get("to") and day > dt.date.fromisoformat(window["to"]):
                continue
            if "event_type" in flt and row.type not in wanted(flt["event_type"]):
                continue
            if "category" in flt and row.category not in wanted(flt["category"]):
                continue
            if "channel" in flt and row.channel not in wanted(flt["channel"]):
                continue
            if "promotion_code" in flt and row.promotion_code not in wanted(flt["promotion_code"]):
                continue
            if "product_sku" in flt and (
                row.product is None or row.product.sku not in wanted(flt["product_sku"])
            ):
                continue
            out.append(row)
        return out

    def metric(self, node: dict, p: Person) -> bool:
        metric, op, target = node["metric"], node["op"], node.get("value")
        rows = self.rows(node, p)
        if metric in ("purchase_count", "event_count"):
            return self.compare(len(rows), op, target)
        amounts = [Decimal(r.amount) for r in rows]
        if metric == "purchase_total":
            return self.compare(sum(amounts, Decimal(0)), op, self.decimals(target))
        if metric == "purchase_avg":
            if op in ("is_empty", "is_not_empty"):
                return (not rows) == (op == "is_empty")
            if op in ("ne", "not_in"):
                return not self.metric({**node, "op": "eq"}, p)
            if not rows:
                return False
            # avg op v, compared exactly as sum op v * count
            total, n = sum(amounts, Decimal(0)), len(amounts)
            t = self.decimals(target)
            scaled = [v * n for v in t] if isinstance(t, list) else t * n
            return self.compare(total, op, scaled)
        days = None
        if rows:
            at = (
                max(r.purchased_at for r in rows)
                if metric == "days_since_last_purchase"
                else min(r.purchased_at for r in rows)
            )
            days = (self.now - at) // dt.timedelta(days=1)
        return self.compare(days, op, target)
