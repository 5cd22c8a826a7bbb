"""The rule language of segments (version 1): the catalogue of fields and operators, and validation.

A rule is a JSON tree; docs/rules.md describes it for people. `validate(rule)` returns every
problem with its path in the tree (`all[2].any[0].value: expected a number`), so the API and the
builder can point at the exact condition. The compiler trusts only validated rules.
"""

import copy
import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import TextChoices

from crm.text import text_problem
from customers.models import Account, Customer, Purchase
from segments.ml.models import RfmClass

RULE_VERSION = 1
MAX_DEPTH = 12
MAX_NODES = 500
MAX_LIST = 1000

# Value kinds of fields and metrics.
TEXT = "text"
CHOICE = "choice"
INTEGER = "integer"
NUMBER = "number"
DATE = "date"
TAGS = "tags"
ATTR = "attr"
USER = "user"

EQUALITY = ("eq", "ne", "in", "not_in")
ORDER = ("gt", "gte", "lt", "lte", "between")
TEXT_MATCH = ("contains", "starts_with", "ends_with")
EMPTINESS = ("is_empty", "is_not_empty")
DATE_OPS = ("eq", "ne", "before", "after", "gt", "gte", "lt", "lte", "between", "within_last_days")

OPERATORS_BY_KIND: dict[str, tuple[str, ...]] = {
    TEXT: EQUALITY + TEXT_MATCH + EMPTINESS,
    CHOICE: EQUALITY + EMPTINESS,
    INTEGER: EQUALITY + ORDER + EMPTINESS,
    NUMBER: ("eq", "ne") + ORDER,
    DATE: DATE_OPS + EMPTINESS,
    TAGS: EQUALITY + EMPTINESS,
    ATTR: EQUALITY + ORDER + TEXT_MATCH + EMPTINESS,
    USER: EQUALITY + EMPTINESS,
}
ALL_OPERATORS = tuple(dict.fromkeys(op for ops in OPERATORS_BY_KIND.values() for op in ops))
NO_VALUE_OPS = EMPTINESS

# The values a choice field or a purchase's channel may take are the models' choices, with their
# labels: a choice added to a model is offered by the rule builder without a change here.
GENDERS = tuple(Customer.Gender.values)
INCOME_BANDS = tuple(Customer.IncomeBand.values)
ACCOUNT_KINDS = tuple(Account.Kind.values)
ACCOUNT_SIZES = tuple(Account.Size.values)
CHANNELS = tuple(Purchase.Channel.values)
CHANNEL_LABELS = dict(Purchase.Channel.choices)
RFM_CLASSES = tuple(RfmClass.values)
# insights.models.NpsClass (insights is above segments: tests/segments/test_catalogue.py checks
# that these follow it).
NPS_CLASS_LABELS = (
    ("promoter", "Promoter (9-10)"),
    ("passive", "Passive (7-8)"),
    ("detractor", "Detractor (0-6)"),
)
NPS_CLASSES = tuple(value for value, _label in NPS_CLASS_LABELS)


@dataclass(frozen=True)
class FieldSpec:
    """A profile field a condition may test: its label, value kind and database path."""

    name: str
    label: str
    kind: str
    path: str = ""
    choices: tuple[str, ...] = ()
    protected: bool = False
    # (value, label) of each choice, as the model names them.
    choice_labels: tuple[tuple[str, str], ...] = ()
    nullable: bool = False
    # The customer field a condition on it reveals (customers.selectors.CUSTOMER_FIELD_READERS):
    # its own name unless set. The age reveals only the age, never the birth date it is
    # computed from: marketers may target by age but not by birth date.
    reveals: str = ""

    @property
    def revealed(self) -> str:
        return self.reveals or self.name

    @property
    def operators(self) -> tuple[str, ...]:
        ops = OPERATORS_BY_KIND[self.kind]
        if not self.nullable and self.kind in (INTEGER, NUMBER, DATE, USER):
            ops = tuple(op for op in ops if op not in EMPTINESS)
        return ops


def _choice_field(
    name: str, label: str, path: str, choices: type[TextChoices], **kwargs: Any
) -> FieldSpec:
    """A field whose values are a model field's choices (and nothing else)."""
    values = tuple(choices.values)
    return FieldSpec(
        name, label, CHOICE, path, values, choice_labels=tuple(choices.choices), **kwargs
    )


FIELDS: dict[str, FieldSpec] = {
    spec.name: spec
    for spec in (
        FieldSpec(
            "age",
            "Age (years)",
            INTEGER,
            "birth_date",
            protected=True,
            nullable=True,
            reveals="age",
        ),
        FieldSpec("birth_date", "Birth date", DATE, "birth_date", protected=True, nullable=True),
        _choice_field("gender", "Gender", "gender", Customer.Gender, protected=True),
        FieldSpec("country", "Country", TEXT, "country"),
        FieldSpec("region", "Region", TEXT, "region"),
        FieldSpec("city", "City", TEXT, "city"),
        FieldSpec("postal_code", "Postal code", TEXT, "postal_code"),
        FieldSpec("language", "Language", TEXT, "language"),
        _choice_field("income_band", "Income band", "income_band", Customer.IncomeBand),
        FieldSpec("source", "Source", TEXT, "source"),
        FieldSpec("email", "Email", TEXT, "email", nullable=True),
        FieldSpec("created_at", "Created", DATE, "created_at"),
        FieldSpec("owner", "Owner", USER, "owner_id", nullable=True),
        FieldSpec("account.name", "Account name", TEXT, "account__name", nullable=True),
        FieldSpec("account.industry", "Account industry", TEXT, "account__industry", nullable=True),
        _choice_field("account.size", "Account size", "account__size", Account.Size, nullable=True),
        _choice_field("account.kind", "Account kind", "account__kind", Account.Kind, nullable=True),
        FieldSpec("account.country", "Account country", TEXT, "account__country", nullable=True),
        FieldSpec("tags", "Tags", TAGS),
        FieldSpec("lifetime_value", "Lifetime value", NUMBER, "lifetime_value"),
        FieldSpec("purchase_count", "Number of purchases", INTEGER, "purchase_count"),
        FieldSpec("average_order_value", "Average order value", NUMBER, "average_order_value"),
        FieldSpec("first_purchase_at", "First purchase", DATE, "first_purchase_at", nullable=True),
        FieldSpec("last_purchase_at", "Last purchase", DATE, "last_purchase_at", nullable=True),
        # RFM and predictive scores (segments.ml): through Customer.score; no score row is empty.
        FieldSpec(
            "rfm_recency", "RFM recency (days)", INTEGER, "score__rfm_recency", nullable=True
        ),
        FieldSpec("rfm_frequency", "RFM frequency", INTEGER, "score__rfm_frequency", nullable=True),
        FieldSpec("rfm_monetary", "RFM monetary", NUMBER, "score__rfm_monetary", nullable=True),
        FieldSpec("rfm_score", "RFM score (e.g. 545)", INTEGER, "score__rfm_score", nullable=True),
        _choice_field("rfm_class", "RFM class", "score__rfm_class", RfmClass),
        FieldSpec("churn_risk", "Churn risk (0 to 1)", NUMBER, "score__churn_risk", nullable=True),
        FieldSpec(
            "predicted_value", "Predicted value", NUMBER, "score__predicted_value", nullable=True
        ),
        # BG/NBD x Gamma-Gamma (segments/ml/clv.py): `lifetime_value` above is what the customer
        # has spent; this is what they are expected to spend over the lifetime horizon.
        FieldSpec(
            "predicted_lifetime_value",
            "Predicted lifetime value (BG/NBD x Gamma-Gamma)",
            NUMBER,
            "score__lifetime_value",
            nullable=True,
        ),
        FieldSpec(
            "p_alive",
            "Probability of still being a customer (0 to 1)",
            NUMBER,
            "score__p_alive",
            nullable=True,
        ),
        # Satisfaction surveys (insights): the customer's latest answers, through
        # Customer.satisfaction (insights.CustomerSatisfaction); no answer is empty.
        FieldSpec(
            "nps_score",
            "Latest NPS score (0 to 10)",
            INTEGER,
            "satisfaction__nps_score",
            nullable=True,
        ),  # fmt: skip
        FieldSpec(
            "nps_class",
            "NPS class",
            CHOICE,
            "satisfaction__nps_class",
            NPS_CLASSES,
            choice_labels=NPS_CLASS_LABELS,
        ),
        FieldSpec(
            "csat_score",
            "Latest CSAT score (1 to 5)",
            INTEGER,
            "satisfaction__csat_score",
            nullable=True,
        ),  # fmt: skip
    )
}
ATTR_PREFIX = "attr."
ATTR_KEY_RE = re.compile(r"^[A-Za-z0-9_]{1,64}$")


@dataclass(frozen=True)
class MetricSpec:
    """A behaviour metric: an aggregate over the customer's purchases or events."""

    name: str
    label: str
    kind: str  # INTEGER or NUMBER
    source: str  # "purchase" or "event"
    operators: tuple[str, ...]
    # None when a customer without matching rows has no value (no average, no last purchase).
    zero: int | None


_COUNT_OPS = EQUALITY + ORDER
_AMOUNT_OPS = ("eq", "ne") + ORDER
_DAYS_OPS = ("eq", "ne") + ORDER + EMPTINESS
METRICS: dict[str, MetricSpec] = {
    spec.name: spec
    for spec in (
        MetricSpec("purchase_count", "Number of purchases", INTEGER, "purchase", _COUNT_OPS, 0),
        MetricSpec("purchase_total", "Total spend", NUMBER, "purchase", _AMOUNT_OPS, 0),
        MetricSpec(
            "purchase_avg", "Average spend", NUMBER, "purchase", _AMOUNT_OPS + EMPTINESS, None
        ),
        MetricSpec(
            "days_since_last_purchase",
            "Days since last purchase",
            INTEGER,
            "purchase",
            _DAYS_OPS,
            None,
        ),
        MetricSpec(
            "days_since_first_purchase",
            "Days since first purchase",
            INTEGER,
            "purchase",
            _DAYS_OPS,
            None,
        ),
        MetricSpec("event_count", "Number of events", INTEGER, "event", _COUNT_OPS, 0),
    )
}
PURCHASE_FILTERS = ("category", "product_sku", "channel", "promotion_code")
EVENT_FILTERS = ("event_type",)
CONSENT_STATES = ("granted", "withdrawn", "unknown")
GROUP_KEYS = ("all", "any", "not")


@dataclass(frozen=True)
class RuleError:
    """One problem in a rule, at a path such as `all[2].any[0].value`."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}


class RuleInvalid(ValidationError):
    """Raised by code that needs a valid rule and got one with errors: a ValidationError of the
    `rule` field, each message with its path (the API answers it as any other 400)."""

    def __init__(self, errors: list[RuleError]):
        self.errors = errors
        super().__init__({"rule": [str(e) for e in errors]})


def _join(path: str, key: str) -> str:
    if key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}" if path else key


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, str):
        try:
            Decimal(value)
        except InvalidOperation:
            return False
        return Decimal(value).is_finite()
    return False


def to_decimal(value: Any) -> Decimal:
    """Numbers in rules are compared as decimals (money has two decimal places)."""
    return Decimal(str(value))


# Dates a rule may name: wide enough for any birth date or purchase, narrow enough that a day
# more or less, in any time zone, is still a date.
DATE_MIN, DATE_MAX = dt.date(1000, 1, 1), dt.date(9998, 12, 31)
DATE_EXPECTED = f"expected a date YYYY-MM-DD from {DATE_MIN} to {DATE_MAX}"


def parse_date(value: Any) -> dt.date | None:
    """The date a rule names, or None when it names none a rule may use."""
    if not isinstance(value, str):
        return None
    try:
        day = dt.date.fromisoformat(value) if len(value) == 10 else None
    except ValueError:
        return None
    return day if day is not None and DATE_MIN <= day <= DATE_MAX else None


class _Validator:
    def __init__(
        self,
        segment_lookup: Callable[[int], Any] | None,
        purposes: Iterable[str] | None,
        unreadable: Iterable[str] = (),
    ):
        self.unreadable = frozenset(unreadable)
        self.errors: list[RuleError] = []
        self.nodes = 0
        self.segment_lookup = segment_lookup
        self.purposes = set(purposes) if purposes is not None else None
        self.segment_refs: list[tuple[str, int]] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(RuleError(path, message))

    def node(self, node: Any, path: str, depth: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.error(path, f"the rule has more than {MAX_NODES} nodes")
            return
        if depth > MAX_DEPTH:
            self.error(path, f"groups are nested deeper than {MAX_DEPTH} levels")
            return
        if not isinstance(node, dict):
            self.error(path, "expected an object (a group or a condition)")
            return
        groups = [k for k in GROUP_KEYS if k in node]
        if groups:
            if len(node) != 1:
                self.error(path, f"a group has exactly one key ({groups[0]!r}), got {sorted(node)}")
                return
            key = groups[0]
            child = node[key]
            if key == "not":
                self.node(child, _join(path, "not"), depth + 1)
                return
            if not isinstance(child, list):
                self.error(_join(path, key), "expected a list of conditions")
                return
            for i, item in enumerate(child):
                self.node(item, _join(path, key) + f"[{i}]", depth + 1)
            return
        if "field" in node:
            self.field_condition(node, path)
        elif "metric" in node:
            self.metric_condition(node, path)
        elif "consent" in node:
            self.consent_condition(node, path)
        elif "segment" in node:
            self.segment_condition(node, path)
        else:
            self.error(
                path,
                "expected a group (all, any, not) or a condition (field, metric, consent, segment)",
            )

    def unknown_keys(self, node: dict, path: str, allowed: set[str]) -> None:
        for key in sorted(set(node) - allowed):
            self.error(_join(path, key), "unknown key")

    def field_condition(self, node: dict, path: str) -> None:
        self.unknown_keys(node, path, {"field", "op", "value"})
        name = node["field"]
        if not isinstance(name, str):
            self.error(_join(path, "field"), "expected a field name")
            return
        if name.startswith(ATTR_PREFIX):
            key = name[len(ATTR_PREFIX) :]
            if not ATTR_KEY_RE.match(key):
                self.error(
                    _join(path, "field"),
                    "custom attribute keys are 1 to 64 letters, digits or underscores",
                )
                return
            kind, choices = ATTR, ()
            operators = OPERATORS_BY_KIND[ATTR]
        elif name in FIELDS:
            spec = FIELDS[name]
            if spec.revealed in self.unreadable:
                # Counting who matches a condition on it would reveal it (a birth date takes
                # 16 previews to bisect): refused, like every other use of the field.
                self.error(_join(path, "field"), f"field {name!r} is not visible to your role")
                return
            kind, choices, operators = spec.kind, spec.choices, spec.operators
        else:
            self.error(_join(path, "field"), f"unknown field {name!r}")
            return
        op = self.operator(node, path, operators, f"field {name!r}")
        if op is None:
            return
        self.value(node, path, op, kind, choices)
        if name == "age" and op not in NO_VALUE_OPS:
            values = node.get("value")
            values = values if isinstance(values, list) else [values]
            if any(_is_int(v) and not 0 <= v <= 200 for v in values):
                self.error(_join(path, "value"), "expected an age from 0 to 200")

    def metric_condition(self, node: dict, path: str) -> None:
        self.unknown_keys(node, path, {"metric", "op", "value", "window", "filter"})
        name = node["metric"]
        spec = METRICS.get(name) if isinstance(name, str) else None
        if spec is None:
            self.error(
                _join(path, "metric"),
                f"unknown metric {name!r}; expected one of {', '.join(METRICS)}",
            )
            return
        if "window" in node:
            self.window(node["window"], _join(path, "window"))
        if "filter" in node:
            allowed = PURCHASE_FILTERS if spec.source == "purchase" else EVENT_FILTERS
            self.filters(node["filter"], _join(path, "filter"), allowed)
        op = self.operator(node, path, spec.operators, f"metric {name!r}")
        if op is not None:
            kind = INTEGER if spec.kind == INTEGER else NUMBER
            self.value(node, path, op, kind, (), non_negative=True)

    def window(self, window: Any, path: str) -> None:
        if not isinstance(window, dict):
            self.error(
                path, 'expected {"last_days": N} or {"from": "YYYY-MM-DD", "to": "YYYY-MM-DD"}'
            )
            return
        if "last_days" in window:
            self.unknown_keys(window, path, {"last_days"})
            days = window["last_days"]
            if not _is_int(days) or not 1 <= days <= 36500:
                self.error(
                    _join(path, "last_days"), "expected a whole number of days from 1 to 36500"
                )
            return
        self.unknown_keys(window, path, {"from", "to"})
        if not window:
            self.error(path, 'expected "last_days", "from" or "to"')
        dates = {}
        for key in ("from", "to"):
            if key in window:
                dates[key] = parse_date(window[key])
                if dates[key] is None:
                    self.error(_join(path, key), DATE_EXPECTED)
        if dates.get("from") and dates.get("to") and dates["from"] > dates["to"]:
            self.error(path, '"from" is after "to"')

    def filters(self, filters: Any, path: str, allowed: tuple[str, ...]) -> None:
        if not isinstance(filters, dict):
            self.error(path, "expected an object of filters")
            return
        for key, value in filters.items():
            if key not in allowed:
                self.error(
                    _join(path, key), f"unknown filter; expected one of {', '.join(allowed)}"
                )
                continue
            values = value if isinstance(value, list) else [value]
            if not values or len(values) > MAX_LIST:
                self.error(_join(path, key), f"expected 1 to {MAX_LIST} values")
            elif not all(isinstance(v, str) and v for v in values):
                self.error(_join(path, key), "expected a non-empty text or a list of texts")
            elif problems := [p for v in values if (p := text_problem(v))]:
                self.error(_join(path, key), problems[0])
            elif key == "channel" and not set(values) <= set(CHANNELS):
                self.error(_join(path, key), f"expected one of {', '.join(CHANNELS)}")

    def operator(self, node: dict, path: str, allowed: tuple[str, ...], what: str) -> str | None:
        op = node.get("op")
        if op is None:
            self.error(_join(path, "op"), "required")
            return None
        if op not in allowed:
            self.error(
                _join(path, "op"),
                f"operator {op!r} is not allowed for {what}; expected one of {', '.join(allowed)}",
            )
            return None
        return op

    def value(
        self, node: dict, path: str, op: str, kind: str, choices: tuple, non_negative: bool = False
    ) -> None:
        vpath = _join(path, "value")
        if op in NO_VALUE_OPS:
            if "value" in node and node["value"] is not None:
                self.error(vpath, f"operator {op!r} takes no value")
            return
        if "value" not in node:
            self.error(vpath, "required")
            return
        value = node["value"]
        if op in ("in", "not_in"):
            if not isinstance(value, list) or not value or len(value) > MAX_LIST:
                self.error(vpath, f"expected a list of 1 to {MAX_LIST} values")
                return
            for i, item in enumerate(value):
                self.scalar(item, f"{vpath}[{i}]", kind, choices, non_negative)
            if kind == ATTR and len({type(_attr_type(v)) for v in value}) > 1:
                self.error(vpath, "expected values of one type (all texts or all numbers)")
            return
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                self.error(vpath, "expected a list of two values [low, high]")
                return
            scalar_kind = NUMBER if kind == ATTR else kind
            ok = [
                self.scalar(v, f"{vpath}[{i}]", scalar_kind, choices, non_negative)
                for i, v in enumerate(value)
            ]
            if all(ok):
                low, high = value
                if kind == DATE:
                    low, high = parse_date(low), parse_date(high)
                else:
                    low, high = to_decimal(low), to_decimal(high)
                if low > high:
                    self.error(vpath, "the low end is above the high end")
            return
        if op == "within_last_days":
            if not _is_int(value) or not 0 <= value <= 36500:
                self.error(vpath, "expected a whole number of days from 0 to 36500")
            return
        if kind == ATTR and op in ORDER:
            self.scalar(value, vpath, NUMBER, choices, non_negative)
            return
        if kind == ATTR and op in TEXT_MATCH:
            self.scalar(value, vpath, TEXT, choices, non_negative)
            return
        self.scalar(value, vpath, kind, choices, non_negative)
        if op in TEXT_MATCH and value == "":
            self.error(vpath, "expected a non-empty text")

    def scalar(self, value: Any, path: str, kind: str, choices: tuple, non_negative: bool) -> bool:
        if kind in (TEXT, TAGS):
            if not isinstance(value, str):
                self.error(path, "expected a text")
                return False
            if len(value) > 255:
                self.error(path, "expected at most 255 characters")
                return False
            if problem := text_problem(value):
                self.error(path, problem)
                return False
        elif kind == CHOICE:
            if value not in choices:
                self.error(path, f"expected one of {', '.join(choices)}")
                return False
        elif kind in (INTEGER, USER):
            if not _is_int(value):
                self.error(path, "expected a whole number")
                return False
            if (non_negative or kind == USER) and value < 0:
                self.error(path, "expected a number of at least 0")
                return False
            if abs(value) > 10**12:
                self.error(path, "the number is too large")
                return False
        elif kind == NUMBER:
            if not _is_number(value):
                self.error(path, "expected a number")
                return False
            number = to_decimal(value)
            if number.as_tuple().exponent < -2 or abs(number) >= Decimal(10**12):
                self.error(path, "expected a number with at most 2 decimals below 10^12")
                return False
            if non_negative and number < 0:
                self.error(path, "expected a number of at least 0")
                return False
        elif kind == DATE:
            if parse_date(value) is None:
                self.error(path, DATE_EXPECTED)
                return False
        elif kind == ATTR:
            if isinstance(value, bool) or isinstance(value, str):
                if isinstance(value, str) and len(value) > 255:
                    self.error(path, "expected at most 255 characters")
                    return False
                if isinstance(value, str) and (problem := text_problem(value)):
                    self.error(path, problem)
                    return False
                return True
            if not _is_number(value) or isinstance(value, str):
                self.error(path, "expected a text, a number, true or false")
                return False
            return self.scalar(value, path, NUMBER, choices, non_negative)
        return True

    def consent_condition(self, node: dict, path: str) -> None:
        self.unknown_keys(node, path, {"consent", "state"})
        purpose = node["consent"]
        if not isinstance(purpose, str) or not purpose:
            self.error(_join(path, "consent"), "expected a purpose code")
        elif self.purposes is not None and purpose not in self.purposes:
            self.error(_join(path, "consent"), f"unknown purpose {purpose!r}")
        state = node.get("state")
        if state not in CONSENT_STATES:
            self.error(_join(path, "state"), f"expected one of {', '.join(CONSENT_STATES)}")

    def segment_condition(self, node: dict, path: str) -> None:
        self.unknown_keys(node, path, {"segment"})
        segment_id = node["segment"]
        if not _is_int(segment_id) or segment_id <= 0:
            self.error(_join(path, "segment"), "expected a segment id")
            return
        if self.segment_lookup is not None and self.segment_lookup(segment_id) is None:
            self.error(_join(path, "segment"), f"segment {segment_id} does not exist")
            return
        self.segment_refs.append((_join(path, "segment"), segment_id))


def _attr_type(value: Any) -> Any:
    if isinstance(value, bool):
        return True
    if isinstance(value, str):
        return ""
    return 0


def segment_references(rule: Any) -> set[int]:
    """The ids of the segments a rule refers to (its direct dependencies)."""
    found: set[int] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "segment" in node and _is_int(node["segment"]):
                found.add(node["segment"])
            for key in ("all", "any"):
                if isinstance(node.get(key), list):
                    for child in node[key]:
                        walk(child)
            if "not" in node:
                walk(node["not"])

    walk(rule)
    return found


def rule_changes_with_time(rule: Any) -> bool:
    """Whether the rule's truth for a customer can change with time alone, with no write: an
    age (birthdays), a date within the last N days, a window of the last N days, days since a
    purchase. Such segments get a scheduled full refresh besides the real-time updates."""

    def walk(node: Any) -> bool:
        if not isinstance(node, dict):
            return False
        if node.get("field") == "age" or node.get("op") == "within_last_days":
            return True
        if isinstance(node.get("metric"), str) and node["metric"].startswith("days_since"):
            return True
        if isinstance(node.get("window"), dict) and "last_days" in node["window"]:
            return True
        children = [c for key in ("all", "any") for c in (node.get(key) or [])]
        if "not" in node:
            children.append(node["not"])
        return any(walk(child) for child in children)

    return walk(rule)


def uses_protected_characteristics(rule: Any) -> list[str]:
    """Fields of the rule that are protected characteristics (age, gender), for review."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            spec = FIELDS.get(node.get("field")) if isinstance(node.get("field"), str) else None
            if spec is not None and spec.protected and spec.name not in found:
                found.append(spec.name)
            for key in ("all", "any"):
                if isinstance(node.get(key), list):
                    for child in node[key]:
                        walk(child)
            if "not" in node:
                walk(node["not"])

    walk(rule)
    return found


def validate(
    rule: Any,
    *,
    segment_id: int | None = None,
    segment_lookup: Callable[[int], Any] | None = None,
    dependencies: Callable[[int], Iterable[int]] | None = None,
    segment_name: Callable[[int], str] | None = None,
    purposes: Iterable[str] | None = None,
    unreadable: Iterable[str] = (),
) -> list[RuleError]:
    """Every problem of a rule, each with its path in the tree; an empty list when it is valid.

    The callables connect validation to stored segments without tying this module to the
    database: `segment_lookup(id)` is None for a missing segment, `dependencies(id)` lists the
    segments a stored segment's rule refers to, `segment_name(id)` names it in a cycle message.
    `segment_id` is the segment being saved, so a rule that reaches it again is refused.
    `unreadable` names the customer fields the author may not read: a condition on one is an
    error at its path.
    """
    validator = _Validator(segment_lookup, purposes, unreadable)
    validator.node(rule, "", 0)
    if dependencies is not None:
        for path, ref in validator.segment_refs:
            cycle = _find_cycle(ref, segment_id, dependencies)
            if cycle:
                name = segment_name or (lambda i: f"#{i}")
                chain = " → ".join(name(i) for i in cycle)
                validator.error(path, f"cycle through segment membership: {chain}")
    return validator.errors


def _find_cycle(
    start: int, target: int | None, dependencies: Callable[[int], Iterable[int]]
) -> list[int] | None:
    """The chain from the segment being saved back to itself (or any loop reached from start)."""
    origin = [target] if target is not None else []
    stack: list[tuple[int, list[int]]] = [(start, [*origin, start])]
    seen: set[int] = set()
    while stack:
        current, chain = stack.pop()
        if target is not None and current == target:
            return chain
        if current in chain[:-1]:
            return chain[chain.index(current) :]
        if current in seen:
            continue
        seen.add(current)
        for nxt in dependencies(current):
            stack.append((nxt, [*chain, nxt]))
    return None


def catalogue(*, unreadable: Iterable[str] = ()) -> dict[str, Any]:
    """The fields, metrics and operators, as the rule builder needs them; without the fields
    that reveal what the user may not read (`unreadable`)."""
    unreadable = frozenset(unreadable)
    return {
        "version": RULE_VERSION,
        "fields": [
            {
                "name": s.name,
                "label": s.label,
                "kind": s.kind,
                "operators": list(s.operators),
                "choices": list(s.choices),
                "choice_labels": dict(s.choice_labels),
                "protected": s.protected,
            }
            for s in FIELDS.values()
            if s.revealed not in unreadable
        ],
        "attr_operators": list(OPERATORS_BY_KIND[ATTR]),
        "metrics": [
            {
                "name": m.name,
                "label": m.label,
                "kind": m.kind,
                "source": m.source,
                "operators": list(m.operators),
                "filters": list(PURCHASE_FILTERS if m.source == "purchase" else EVENT_FILTERS),
            }
            for m in METRICS.values()
        ],
        "consent_states": list(CONSENT_STATES),
        "channels": list(CHANNELS),
        "channel_labels": CHANNEL_LABELS,
    }


# What a condition becomes when every value it tested is gone: the groups that match everyone
# and no one (see docs/rules.md), so the tree stays valid and means what it meant.
MATCHES_EVERYONE: dict = {"all": []}
MATCHES_NO_ONE: dict = {"any": []}
_NEGATIVE_OPS = ("ne", "not_in")


def rule_without_values(rule: Any, *, names: Callable[[str], bool]) -> tuple[Any, int]:
    """The rule with every text value for which `names(value)` holds taken out, and how many.

    Used when a person is erased: a value naming them (their email in an `in` list) leaves the
    list. A condition left without values tested something that no longer exists: `eq`, `in`,
    `contains`... become "matches no one" and `ne`, `not_in` "matches everyone", which an
    `any` (for the first) or an `all` (for the second) then drops; elsewhere the constant
    group stays, so the segment never grows to people the rule did not select.
    """
    removed = 0

    def texts_named(values: list) -> list:
        return [v for v in values if isinstance(v, str) and names(v)]

    def condition(node: dict) -> tuple[Any, bool]:
        nonlocal removed
        op = node.get("op")
        negative = op in _NEGATIVE_OPS
        gone = MATCHES_EVERYONE if negative else MATCHES_NO_ONE
        if isinstance(node.get("filter"), dict):
            filters = {}
            for key, value in node["filter"].items():
                values = value if isinstance(value, list) else [value]
                named = texts_named(values)
                if not named:
                    filters[key] = value
                    continue
                removed += len(named)
                kept = [v for v in values if v not in named]
                if not kept:
                    # Behaviour with a filter only the person matched: nobody does any more.
                    return MATCHES_NO_ONE, True
                filters[key] = kept if isinstance(value, list) else kept[0]
            if filters != node["filter"]:
                node = {**node, "filter": filters}
        value = node.get("value")
        if isinstance(value, list) and op in ("in", "not_in"):
            named = texts_named(value)
            if named:
                removed += len(named)
                kept = [v for v in value if v not in named]
                return ({**node, "value": kept}, False) if kept else (gone, True)
        elif isinstance(value, str) and names(value):
            removed += 1
            return gone, True
        return node, False

    def walk(node: Any) -> tuple[Any, bool]:
        """The node rewritten, and whether it is a constant this rewrite made."""
        if not isinstance(node, dict):
            return node, False
        if "not" in node and len(node) == 1:
            child, made = walk(node["not"])
            if made:
                return (MATCHES_NO_ONE if child == MATCHES_EVERYONE else MATCHES_EVERYONE), True
            return {"not": child}, False
        for key, identity in (("all", MATCHES_EVERYONE), ("any", MATCHES_NO_ONE)):
            if key in node and len(node) == 1 and isinstance(node[key], list):
                children, changed = [], False
                for child in node[key]:
                    new, made = walk(child)
                    changed = changed or made or new is not child
                    if made and new == identity:
                        continue
                    children.append(new)
                emptied = changed and not children
                return ({key: children} if changed else node), emptied
        if any(k in node for k in ("field", "metric")):
            return condition(node)
        return node, False

    new_rule, _made = walk(rule)
    return copy.deepcopy(new_rule), removed
