"""A rule tree in plain words, for people: "Country is Germany and spent more than €500 in the
last 90 days". One walk over the tree, with the catalogue's field labels and the names of the
segments, users and consent purposes the rule refers to (never raw keys or ids where a name
exists). The words describe; segments/compiler.py decides."""

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django_countries import countries

from crm.labels import code_label
from crm.templatetags.numbers import money
from segments.rules import (
    ATTR_PREFIX,
    CHANNEL_LABELS,
    FIELDS,
    TAGS,
    USER,
    FieldSpec,
)

# Field values that name a country (stored as ISO codes).
_COUNTRY_FIELDS = {"country", "account.country"}
# Fields and metrics whose values are amounts of money.
_MONEY_FIELDS = {"lifetime_value", "average_order_value", "predicted_value", "rfm_monetary"}
_MONEY_METRICS = {"purchase_total", "purchase_avg"}

_FIELD_OPS = {
    "eq": "is",
    "ne": "is not",
    "in": "is",
    "not_in": "is not",
    "gt": "is more than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "before": "is before",
    "after": "is after",
    "contains": "contains",
    "starts_with": "starts with",
    "ends_with": "ends with",
}
_DATE_OPS = {"gt": "is after", "gte": "is on or after", "lt": "is before", "lte": "is on or before",
             "eq": "is on", "ne": "is not on"}  # fmt: skip
_METRIC_OPS = {
    "eq": "exactly",
    "ne": "other than",
    "in": "",
    "not_in": "other than",
    "gt": "more than",
    "gte": "at least",
    "lt": "less than",
    "lte": "at most",
}
_FILTER_WORDS = {
    "category": "in category",
    "product_sku": "of product",
    "channel": "through",
    "promotion_code": "with promotion code",
    "event_type": "of type",
}
_CONSENT_WORDS = {
    "granted": "has given consent to {}",
    "withdrawn": "has withdrawn consent to {}",
    "unknown": "has not answered on consent to {}",
}


@dataclass
class RuleNames:
    """The names of what a rule refers to by id or code."""

    segments: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)
    purposes: dict[str, str] = field(default_factory=dict)


def _walk(node: Any) -> Iterable[dict]:
    if isinstance(node, dict):
        if "not" in node:
            yield from _walk(node["not"])
        for key in ("all", "any"):
            if isinstance(node.get(key), list):
                for child in node[key]:
                    yield from _walk(child)
        if not {"all", "any", "not"} & set(node):
            yield node


def rule_names_load(rule: Any) -> RuleNames:
    """The names the rule's words need: one statement per kind of reference it holds."""
    from privacy.models import Purpose
    from segments.models import Segment

    segment_ids, user_ids, purposes = set(), set(), set()
    for condition in _walk(rule):
        if isinstance(condition.get("segment"), int):
            segment_ids.add(condition["segment"])
        elif condition.get("field") == "owner":
            value = condition.get("value")
            user_ids.update(v for v in (value if isinstance(value, list) else [value])
                            if isinstance(v, int))  # fmt: skip
        elif isinstance(condition.get("consent"), str):
            purposes.add(condition["consent"])
    names = RuleNames()
    if segment_ids:
        names.segments = dict(Segment.objects.filter(pk__in=segment_ids).values_list("pk", "name"))
    if user_ids:
        for user in get_user_model().objects.filter(pk__in=user_ids):
            names.users[user.pk] = user.get_full_name() or user.get_username()
    if purposes:
        names.purposes = dict(Purpose.objects.filter(code__in=purposes).values_list("code", "name"))
    return names


def _label(spec: FieldSpec) -> str:
    """The field's label without the hint in brackets ("Age (years)" -> "Age")."""
    return re.sub(r"\s*\(.*\)$", "", spec.label)


def _or(words: list[str], conjunction: str = "or") -> str:
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} {conjunction} {words[-1]}"


def _money(value: Any) -> str:
    """An amount with its currency, without cents when it is whole: €500, €12.50."""
    text = money(value)
    return text[:-3] if text.endswith(".00") else text


def _number(value: Any) -> str:
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return str(value)
    if number == number.to_integral_value():
        return f"{int(number):,}"
    return f"{number:,.2f}"


class _Words:
    def __init__(self, names: RuleNames):
        self.names = names

    def node(self, node: Any, nested: bool = False) -> str:
        if not isinstance(node, dict):
            return "an unreadable condition"
        if "not" in node:
            child = node["not"]
            if isinstance(child, dict) and "segment" in child:
                return self.node(child).replace("is in segment", "is not in segment", 1)
            return f"not ({self.node(child)})"
        for key, conjunction, empty in (("all", "and", "every customer"), ("any", "or", "no one")):
            if key in node:
                children = node[key] if isinstance(node[key], list) else []
                if not children:
                    return empty
                parts = [self.node(child, nested=True) for child in children]
                text = f" {conjunction} ".join(parts)
                return f"({text})" if nested and len(parts) > 1 else text
        if "field" in node:
            return self.field(node)
        if "metric" in node:
            return self.metric(node)
        if "consent" in node:
            purpose = node["consent"]
            name = self.names.purposes.get(purpose) or code_label(purpose)
            return _CONSENT_WORDS.get(node.get("state"), "consent to {}").format(name.lower())
        if "segment" in node:
            segment_id = node["segment"]
            name = self.names.segments.get(segment_id)
            return f"is in segment “{name}”" if name else f"is in segment #{segment_id}"
        return "an unreadable condition"

    def value(self, name: str, spec: FieldSpec | None, value: Any) -> str:
        if value is None:
            return "nothing"
        if isinstance(value, bool):
            return "yes" if value else "no"
        if name in _COUNTRY_FIELDS and isinstance(value, str):
            return countries.name(value.upper()) or value
        if spec is not None and spec.choice_labels:
            return dict(spec.choice_labels).get(value, code_label(value))
        if spec is not None and spec.kind == USER and isinstance(value, int):
            return self.names.users.get(value, f"user #{value}")
        if name in _MONEY_FIELDS:
            return _money(value)
        if isinstance(value, int | float | Decimal):
            return _number(value)
        return str(value)

    def values(self, name: str, spec: FieldSpec | None, values: Any, conjunction: str = "or"):
        items = values if isinstance(values, list) else [values]
        return _or([self.value(name, spec, v) for v in items], conjunction)

    def field(self, node: dict) -> str:
        name, op, value = str(node.get("field")), node.get("op"), node.get("value")
        spec = FIELDS.get(name)
        if name.startswith(ATTR_PREFIX):
            label = f"Custom attribute “{name[len(ATTR_PREFIX) :]}”"
        else:
            label = _label(spec) if spec else code_label(name)
        if spec is not None and spec.kind == TAGS:
            return {
                "eq": f"has the tag {self.values(name, spec, value)}",
                "ne": f"does not have the tag {self.values(name, spec, value)}",
                "in": f"has any of the tags {self.values(name, spec, value)}",
                "not_in": f"has none of the tags {self.values(name, spec, value)}",
                "is_empty": "has no tags",
                "is_not_empty": "has tags",
            }.get(op, f"{label} {op}")
        if op == "is_empty":
            return f"{label} is empty"
        if op == "is_not_empty":
            return f"{label} is not empty"
        if op == "between" and isinstance(value, list) and len(value) == 2:
            low, high = (self.value(name, spec, v) for v in value)
            return f"{label} is between {low} and {high}"
        if op == "within_last_days":
            return f"{label} is within the last {_number(value)} days"
        if op in ("in", "not_in") and isinstance(value, list) and len(value) > 1:
            listed = ", ".join(self.value(name, spec, v) for v in value)
            return f"{label} is {'one' if op == 'in' else 'none'} of {listed}"
        words = _DATE_OPS.get(op) if spec is not None and spec.kind == "date" else None
        return f"{label} {words or _FIELD_OPS.get(op, op)} {self.values(name, spec, value)}"

    def metric(self, node: dict) -> str:
        name, op, value = node.get("metric"), node.get("op"), node.get("value")
        amount = _money if name in _MONEY_METRICS else _number
        if op == "between" and isinstance(value, list) and len(value) == 2:
            compared = f"between {amount(value[0])} and {amount(value[1])}"
        elif op in ("in", "not_in") and isinstance(value, list):
            compared = f"{_METRIC_OPS[op]} {_or([amount(v) for v in value])}".strip()
        elif op in _METRIC_OPS:
            compared = f"{_METRIC_OPS[op]} {amount(value)}".strip()
        else:
            compared = ""
        unit = lambda one, many: one if op != "between" and value == 1 else many  # noqa: E731
        if name == "purchase_count":
            text = f"made {compared} {unit('purchase', 'purchases')}"
        elif name == "purchase_total":
            text = f"spent {compared}"
        elif name == "purchase_avg":
            text = {"is_empty": "made no purchase", "is_not_empty": "made a purchase"}.get(
                op, f"spent {compared} on average per purchase"
            )
        elif name in ("days_since_last_purchase", "days_since_first_purchase"):
            which = "last" if name == "days_since_last_purchase" else "first"
            text = {"is_empty": "never purchased", "is_not_empty": "has purchased"}.get(
                op, f"{which} purchased {compared} {unit('day', 'days')} ago"
            )
        elif name == "event_count":
            text = f"had {compared} {unit('event', 'events')}"
        else:
            text = f"{code_label(name)} {compared}"
        return " ".join([text, *self.filters(node.get("filter")), *self.window(node.get("window"))])

    def filters(self, filters: Any) -> list[str]:
        if not isinstance(filters, dict):
            return []
        parts = []
        for key, value in filters.items():
            values = value if isinstance(value, list) else [value]
            if key == "channel":
                shown = [CHANNEL_LABELS.get(v, code_label(v)).lower() for v in values]
            elif key == "event_type":
                shown = [code_label(v).lower() for v in values]
            else:
                shown = [str(v) for v in values]
            parts.append(f"{_FILTER_WORDS.get(key, code_label(key).lower())} {_or(shown)}")
        return parts

    def window(self, window: Any) -> list[str]:
        if not isinstance(window, dict):
            return []
        if "last_days" in window:
            days = window["last_days"]
            return ["in the last day" if days == 1 else f"in the last {_number(days)} days"]
        if "from" in window and "to" in window:
            return [f"from {window['from']} to {window['to']}"]
        if "from" in window:
            return [f"since {window['from']}"]
        if "to" in window:
            return [f"until {window['to']}"]
        return []


def rule_in_words(rule: Any, *, names: RuleNames | None = None) -> str:
    """The rule as a sentence, its first letter capitalised."""
    if rule in (None, {}, []):
        return "No rule"
    text = _Words(names if names is not None else rule_names_load(rule)).node(rule)
    return text[:1].upper() + text[1:]
