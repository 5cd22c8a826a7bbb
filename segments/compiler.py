"""compile_rule(rule) -> one Customer QuerySet: the rule tree as SQL, never evaluated in Python.

Every condition compiles to a two-valued SQL predicate (never NULL), so `not`, `ne` and `not_in`
are plain negations:

- a missing value (no birth date, no account, a missing custom attribute, no matching purchase
  for an average or a last purchase) fails every comparison, so `ne` / `not_in` / `not` match it;
- counts and totals of nothing are 0, so `purchase_count lt 2` matches customers who never bought;
- text matching (`contains`, `starts_with`, `ends_with`) ignores case; `eq` / `in` are exact;
- dates are whole days in the project's time zone; ages and "days since" are computed in Python
  from one reference `now` into date thresholds, so no SQL date arithmetic is involved.
"""

import datetime as dt
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextField,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Round
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IEndsWith,
    In,
    IsNull,
    IStartsWith,
    LessThan,
    LessThanOrEqual,
    Range,
)
from django.utils import timezone

from customers.models import Customer, Event, Purchase
from privacy.models import ConsentState
from segments import rules
from segments.rules import RuleInvalid, to_decimal

MONEY = DecimalField(max_digits=16, decimal_places=2)
TRUE = ~Q(pk__in=[])
FALSE = Q(pk__in=[])


def compile_rule(
    rule: Any, *, now: dt.datetime | None = None, joins: bool = True
) -> QuerySet[Customer]:
    """The customers a rule selects, as one lazy QuerySet (validate the rule first).

    With `joins=False` no condition is compiled as a join (see `_Compiler.joined`), only as
    per-customer subqueries: the same customers, the other plan (`bench_segments --forms`)."""
    errors = rules.validate(rule)
    if errors:
        raise RuleInvalid(errors)
    compiler = _Compiler(now or timezone.now())
    # Erased customers stay as anonymised rows for revenue figures; no segment selects them.
    live = Customer.objects.filter(erased_at__isnull=True)
    conditions = _conjuncts(rule)
    for i, condition in enumerate(conditions):
        # Over all of a customer's rows (no window, no filter) PostgreSQL tends to hash-join and
        # aggregate every purchase at once, which measured slower than one index probe per
        # customer, even when another condition leaves few customers.
        narrowed = condition.get("window") or condition.get("filter")
        if joins and "metric" in condition and narrowed and compiler.joinable(condition):
            others = compiler.node({"all": conditions[:i] + conditions[i + 1 :]})
            return compiler.joined(live.filter(others), condition).order_by()
    return live.filter(compiler.node(rule)).order_by()


def compile_rule_sql(rule: Any, *, now: dt.datetime | None = None) -> tuple[str, list]:
    """The same customers as `compile_rule`, as `SELECT id FROM customers ...` and its
    parameters, for statements that use the rule as a subquery (refresh, preview)."""
    queryset = compile_rule(rule, now=now).values("id")
    try:
        sql, params = queryset.query.get_compiler(connection=connection).as_sql()
    except EmptyResultSet:
        table = connection.ops.quote_name(Customer._meta.db_table)
        return f"SELECT id FROM {table} WHERE 1 = 0", []
    return sql, list(params)


def _conjuncts(rule: dict) -> list[dict]:
    """The conditions a rule requires all of: the children of its top-level `all` groups."""
    if "all" not in rule:
        return [rule]
    return [condition for child in rule["all"] for condition in _conjuncts(child)]


class _Constant(Cast):
    """A cast constant: nothing to group by when it is compared with an aggregate (HAVING)."""

    def get_group_by_cols(self):
        return []


def number(value: Any) -> Cast:
    """A rule number as an SQL decimal."""
    return _Constant(Value(str(to_decimal(value))), MONEY)


class AttrValue(Func):
    """attributes[key] when it holds a JSON value of the given type, else NULL.

    Typed on purpose: JSON values of mixed types do not compare as the rule means, so a number
    condition only ever sees numbers and a text condition only texts.
    """

    _TYPES = {
        "text": ("'string'", "({col} ->> %s)"),
        "number": ("'number'", "({col} ->> %s)::numeric"),
        "bool": ("'boolean'", "({col} ->> %s)::boolean"),
    }

    def __init__(self, key: str, json_type: str):
        output = {"text": TextField(), "number": MONEY, "bool": BooleanField()}[json_type]
        super().__init__(F("attributes"), output_field=output)
        self.key = key
        self.json_type = json_type

    def as_sql(self, compiler, connection, **extra):
        col, params = compiler.compile(self.source_expressions[0])
        type_sql, value_sql = self._TYPES[self.json_type]
        sql = (
            f"CASE WHEN jsonb_typeof({col} -> %s) = {type_sql} THEN {value_sql.format(col=col)} END"
        )
        return sql, (*params, self.key, *params, self.key)


class AttrText(Func):
    """attributes[key] as text whatever its type (NULL when missing or JSON null)."""

    output_field = TextField()

    def __init__(self, key: str):
        super().__init__(F("attributes"))
        self.key = key

    def as_sql(self, compiler, connection, **extra):
        col, params = compiler.compile(self.source_expressions[0])
        return f"({col} ->> %s)", (*params, self.key)


def _two_valued(lookup) -> Q:
    """A comparison on an expression that may be NULL, made false (not unknown) for NULL."""
    return Q(lookup) & Q(IsNull(lookup.lhs, False))


class _Compiler:
    def __init__(self, now: dt.datetime):
        self.now = now
        self.tz = timezone.get_current_timezone()
        self.today = timezone.localdate(now, self.tz)

    # Tree -----------------------------------------------------------------------------------
    def node(self, node: dict) -> Q:
        if "all" in node:
            q = TRUE
            for child in node["all"]:
                q &= self.node(child)
            return q
        if "any" in node:
            children = [self.node(child) for child in node["any"]]
            if not children:
                return FALSE
            q = children[0]
            for child in children[1:]:
                q |= child
            return q
        if "not" in node:
            return ~self.node(node["not"])
        if "field" in node:
            return self.field(node)
        if "metric" in node:
            return self.metric(node)
        if "consent" in node:
            return self.consent(node)
        return self.segment(node)

    # Helpers --------------------------------------------------------------------------------
    def day_start(self, day: dt.date) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(day, dt.time.min), self.tz)

    @staticmethod
    def ordered(path: str, op: str, value: Any, cast=lambda v: v) -> Q:
        """eq/ne/in/not_in/gt/gte/lt/lte/between on a concrete column."""
        if op == "eq":
            return Q(**{path: cast(value)})
        if op == "ne":
            return ~Q(**{path: cast(value)})
        if op == "in":
            return Q(**{f"{path}__in": [cast(v) for v in value]})
        if op == "not_in":
            return ~Q(**{f"{path}__in": [cast(v) for v in value]})
        if op == "between":
            return Q(**{f"{path}__gte": cast(value[0]), f"{path}__lte": cast(value[1])})
        return Q(**{f"{path}__{op}": cast(value)})

    # Profile fields -------------------------------------------------------------------------
    def field(self, node: dict) -> Q:
        name, op, value = node["field"], node["op"], node.get("value")
        if name.startswith(rules.ATTR_PREFIX):
            return self.attr(name[len(rules.ATTR_PREFIX) :], op, value)
        spec = rules.FIELDS[name]
        if op in ("is_empty", "is_not_empty"):
            empty = Q(**{f"{spec.path}__isnull": True})
            if spec.kind in (rules.TEXT, rules.CHOICE):
                empty |= Q(**{spec.path: ""})
            if spec.kind == rules.TAGS:
                empty = ~self.tags_exist(Q())
            return empty if op == "is_empty" else ~empty
        if op in ("ne", "not_in"):
            return ~self.field({**node, "op": "eq" if op == "ne" else "in"})
        q = self.compare_field(spec, op, value)
        if "__" in spec.path and spec.kind != rules.TAGS:
            # Through a join (account, scores) the column is NULL for a customer without the
            # related row. Inside an OR, the ORM's negation does not add the "or IS NULL" it adds
            # elsewhere, so the comparison is made two-valued here and `ne` / `not` negate it.
            q &= Q(**{f"{spec.path}__isnull": False})
        return q

    def compare_field(self, spec: rules.FieldSpec, op: str, value: Any) -> Q:
        """A positive comparison on a profile field (not a negation, not emptiness)."""
        if spec.name == "age":
            return self.age(op, value)
        if spec.kind == rules.TAGS:
            names = value if isinstance(value, list) else [value]
            return self.tags_exist(Q(tag__name__in=names))
        if spec.kind in (rules.TEXT, rules.CHOICE):
            if op == "contains":
                return Q(**{f"{spec.path}__icontains": value})
            if op == "starts_with":
                return Q(**{f"{spec.path}__istartswith": value})
            if op == "ends_with":
                return Q(**{f"{spec.path}__iendswith": value})
            return self.ordered(spec.path, op, value)
        if spec.kind == rules.NUMBER:
            return self.ordered(spec.path, op, value, to_decimal)
        if spec.kind in (rules.INTEGER, rules.USER):
            return self.ordered(spec.path, op, value)
        return self.date(spec, op, value)

    def tags_exist(self, condition: Q) -> Exists:
        through = Customer.tags.through
        return Exists(through.objects.filter(condition, customer_id=OuterRef("pk")))

    def date(self, spec: rules.FieldSpec, op: str, value: Any) -> Q:
        path = spec.path
        if spec.name == "birth_date":
            # A date column: compare days directly.
            if op == "within_last_days":
                since = self.today - dt.timedelta(days=value)
                return Q(**{f"{path}__gte": since, f"{path}__lte": self.today})
            op = {"before": "lt", "after": "gt"}.get(op, op)
            return self.ordered(path, op, value, rules.parse_date)
        # A timestamp: a day D covers [start of D, start of D+1) in the project's time zone.
        if op == "within_last_days":
            since = self.now - dt.timedelta(days=value)
            return Q(**{f"{path}__gte": since, f"{path}__lte": self.now})
        if op == "between":
            low, high = (rules.parse_date(v) for v in value)
            return self.span(path, low, high)
        if op == "in":
            q = FALSE
            for v in value:
                day = rules.parse_date(v)
                q |= self.span(path, day, day)
            return q
        day = rules.parse_date(value)
        start, end = self.day_start(day), self.day_start(day + dt.timedelta(days=1))
        if op == "eq":
            return self.span(path, day, day)
        if op in ("before", "lt"):
            return Q(**{f"{path}__lt": start})
        if op == "lte":
            return Q(**{f"{path}__lt": end})
        if op in ("after", "gt"):
            return Q(**{f"{path}__gte": end})
        return Q(**{f"{path}__gte": start})  # gte

    def span(self, path: str, low: dt.date, high: dt.date) -> Q:
        return Q(
            **{
                f"{path}__gte": self.day_start(low),
                f"{path}__lt": self.day_start(high + dt.timedelta(days=1)),
            }
        )

    def years_ago(self, years: int) -> dt.date | None:
        """The date `years` years before today (29 February falls back to the 28th)."""
        year = self.today.year - years
        if not 1 <= year <= 9999:
            return None
        try:
            return self.today.replace(year=year)
        except ValueError:
            return self.today.replace(year=year, day=28)

    def age_between(self, low: int | None, high: int | None) -> Q:
        """low <= age <= high, as a birth date range: age >= n  <=>  born on or before n years ago."""
        q = Q(birth_date__isnull=False)
        if low is not None:
            latest = self.years_ago(low)
            if latest is None:
                return FALSE
            q &= Q(birth_date__lte=latest)
        if high is not None:
            earliest_exclusive = self.years_ago(high + 1)
            if earliest_exclusive is not None:
                q &= Q(birth_date__gt=earliest_exclusive)
        return q

    def age(self, op: str, value: Any) -> Q:
        if op == "eq":
            return self.age_between(value, value)
        if op == "in":
            q = FALSE
            for v in value:
                q |= self.age_between(v, v)
            return q
        if op == "between":
            return self.age_between(value[0], value[1])
        if op == "gt":
            return self.age_between(value + 1, None)
        if op == "gte":
            return self.age_between(value, None)
        if op == "lt":
            return self.age_between(None, value - 1) if value > 0 else FALSE
        return self.age_between(None, value)  # lte

    def attr(self, key: str, op: str, value: Any) -> Q:
        if op in ("is_empty", "is_not_empty"):
            empty = Q(Exact(Coalesce(AttrText(key), Value(""), output_field=TextField()), ""))
            return empty if op == "is_empty" else ~empty
        if op in ("ne", "not_in"):
            return ~self.attr(key, "eq" if op == "ne" else "in", value)
        if op in ("contains", "starts_with", "ends_with"):
            lookup = {"contains": IContains, "starts_with": IStartsWith, "ends_with": IEndsWith}[op]
            return _two_valued(lookup(AttrValue(key, "text"), value))
        sample = value[0] if op in ("in", "between") else value
        if isinstance(sample, bool):
            json_type, cast = "bool", lambda v: Value(v)
        elif isinstance(sample, str):
            json_type, cast = "text", lambda v: Value(v)
        else:
            json_type, cast = "number", number
        expr = AttrValue(key, json_type)
        if op == "eq":
            return _two_valued(Exact(expr, cast(value)))
        if op == "in":
            if json_type == "number":
                q = FALSE
                for v in value:
                    q |= _two_valued(Exact(expr, cast(v)))
                return q
            return _two_valued(In(expr, list(value)))
        if op == "between":
            return _two_valued(Range(expr, (cast(value[0]), cast(value[1]))))
        lookup = {
            "gt": GreaterThan,
            "gte": GreaterThanOrEqual,
            "lt": LessThan,
            "lte": LessThanOrEqual,
        }[op]
        return _two_valued(lookup(expr, cast(value)))

    # Behaviour ------------------------------------------------------------------------------
    def row_conditions(self, node: dict, spec: rules.MetricSpec, prefix: str = "") -> Q:
        """The condition's window and filter on purchase or event columns (`prefix` leads to
        them from elsewhere, such as `purchases__` from the customer)."""
        if spec.source == "purchase":
            at = "purchased_at"
            paths = {
                "category": "category",
                "product_sku": "product__sku",
                "channel": "channel",
                "promotion_code": "promotion_code",
            }
        else:
            at, paths = "occurred_at", {"event_type": "type"}
        q = Q()
        for key, value in (node.get("filter") or {}).items():
            values = value if isinstance(value, list) else [value]
            q &= Q(**{f"{prefix}{paths[key]}__in": values})
        window = node.get("window") or {}
        if "last_days" in window:
            since = self.now - dt.timedelta(days=window["last_days"])
            q &= Q(**{f"{prefix}{at}__gte": since, f"{prefix}{at}__lte": self.now})
        if window.get("from"):
            q &= Q(**{f"{prefix}{at}__gte": self.day_start(rules.parse_date(window["from"]))})
        if window.get("to"):
            end = self.day_start(rules.parse_date(window["to"]) + dt.timedelta(days=1))
            q &= Q(**{f"{prefix}{at}__lt": end})
        return q

    def rows(self, node: dict, spec: rules.MetricSpec) -> QuerySet:
        """The customer's purchases or events that the condition's window and filter select."""
        model = Purchase if spec.source == "purchase" else Event
        rows = model.objects.filter(customer_id=OuterRef("pk"))
        return rows.filter(self.row_conditions(node, spec)).order_by()

    def metric(self, node: dict) -> Q:
        spec = rules.METRICS[node["metric"]]
        op, value = node["op"], node.get("value")
        rows = self.rows(node, spec)
        if op in ("is_empty", "is_not_empty"):
            return ~Exists(rows) if op == "is_empty" else Q(Exists(rows))
        if op in ("ne", "not_in"):
            return ~self.metric({**node, "op": "eq" if op == "ne" else "in"})
        if spec.name.startswith("days_since"):
            return self.days_since(rows, spec, op, value)
        if spec.name == "purchase_avg":
            return self.average(rows, op, value)
        if spec.zero == 0 and spec.kind == rules.INTEGER:
            # Counts: "at least one" and "none" are plain (anti-)semi-joins.
            if (op, value) in (("gte", 1), ("gt", 0)):
                return Q(Exists(rows))
            if (op, value) in (("eq", 0), ("lt", 1), ("lte", 0)):
                return ~Exists(rows)
        if spec.kind == rules.INTEGER:
            aggregate, cast, zero = Count("*"), (lambda v: Value(v)), Value(0)
            output = IntegerField()
        else:
            aggregate, cast, zero = Round(Sum("amount"), 2), number, number(0)
            output = MONEY
        per_customer = rows.values(rows.model._meta.get_field("customer").attname)
        value_sql = Coalesce(
            Subquery(per_customer.annotate(v=aggregate).values("v")[:1], output_field=output),
            zero,
            output_field=output,
        )
        return self.compare(value_sql, op, value, cast)

    def joinable(self, node: dict) -> bool:
        """Whether a count or total condition can be evaluated as a join (see `joined`): only
        where a customer without matching rows (a count or total of 0) cannot match, and not
        for "at least one" / "none", which are cheaper as (anti-)semi-joins."""
        spec = rules.METRICS[node["metric"]]
        op, value = node["op"], node.get("value")
        if spec.zero is None or op not in ("eq", "in", "between", "gt", "gte", "lt", "lte"):
            return False
        if spec.kind == rules.INTEGER and (op, value) in (("gte", 1), ("gt", 0)):
            return False
        zero = spec.zero if spec.kind == rules.INTEGER else to_decimal(spec.zero)
        cast = (lambda v: v) if spec.kind == rules.INTEGER else to_decimal
        if op == "in":
            return zero not in [cast(v) for v in value]
        if op == "between":
            return not cast(value[0]) <= zero <= cast(value[1])
        holds = {
            "eq": zero == cast(value),
            "gt": zero > cast(value),
            "gte": zero >= cast(value),
            "lt": zero < cast(value),
            "lte": zero <= cast(value),
        }
        return not holds[op]

    def joined(self, customers: QuerySet, node: dict) -> QuerySet:
        """The customers who also meet a count or total condition, as one join of their matching
        purchases (or events) grouped by customer, the condition tested on each group (HAVING).

        A condition that every match of the rule needs (a child of its top-level `all`) is
        compiled this way when a customer without matching rows cannot meet it: such customers
        drop out of the join just as their 0 fails the comparison. It gives PostgreSQL a plan it
        can run in parallel and that tests the other conditions (a consent, a country) before it
        reads any purchase, where a correlated subquery per customer can do neither.
        """
        spec = rules.METRICS[node["metric"]]
        relation = "purchases" if spec.source == "purchase" else "events"
        rows = self.row_conditions(node, spec, prefix=f"{relation}__")
        # One filter() call: the window and the filter apply to the same joined row, and the
        # aggregate below reuses that join. Without either, the join is still an inner one.
        joined = customers.filter(rows or Q(**{f"{relation}__isnull": False}))
        if spec.kind == rules.INTEGER:
            aggregate, cast = Count("*"), (lambda v: Value(v))
        else:
            aggregate, cast = Round(Sum(f"{relation}__amount"), 2, output_field=MONEY), number
        return joined.annotate(rule_metric=aggregate).filter(
            self.compare(F("rule_metric"), node["op"], node.get("value"), cast)
        )

    @staticmethod
    def compare(expr, op: str, value: Any, cast) -> Q:
        if op == "eq":
            return Q(Exact(expr, cast(value)))
        if op == "in":
            return Q(In(expr, [cast(v) for v in value]))
        if op == "between":
            return Q(Range(expr, (cast(value[0]), cast(value[1]))))
        lookup = {
            "gt": GreaterThan,
            "gte": GreaterThanOrEqual,
            "lt": LessThan,
            "lte": LessThanOrEqual,
        }[op]
        return Q(lookup(expr, cast(value)))

    def average(self, rows: QuerySet, op: str, value: Any) -> Q:
        """avg op v  <=>  sum op v * count (exact in decimals; no average for no purchases)."""
        grouped = rows.values("customer_id").annotate(total=Round(Sum("amount"), 2), n=Count("*"))

        def scaled(v: Any):
            return Round(Cast(F("n"), MONEY) * number(v), 2)

        if op == "eq":
            having = Q(total=scaled(value))
        elif op == "in":
            having = FALSE
            for v in value:
                having |= Q(total=scaled(v))
        elif op == "between":
            having = Q(total__gte=scaled(value[0]), total__lte=scaled(value[1]))
        else:
            having = Q(**{f"total__{op}": scaled(value)})
        return Q(Exists(grouped.filter(having)))

    def days_since(self, rows: QuerySet, spec: rules.MetricSpec, op: str, value: Any) -> Q:
        """Days since the last (first) matching purchase, as whole days before `now`.

        days >= n  <=>  the purchase is at or before now - n days; a range of days is a range of
        timestamps, tested with (NOT) EXISTS so the (customer, purchased_at) index answers it.
        """
        low, high = {
            "eq": (value, value),
            "gt": (value + 1 if isinstance(value, int) else None, None),
            "gte": (value, None),
            "lt": (None, value - 1 if isinstance(value, int) else None),
            "lte": (None, value),
        }.get(op, (None, None))
        if op == "between":
            low, high = value
        if op == "in":
            q = FALSE
            for v in value:
                q |= self.days_since(rows, spec, "eq", v)
            return q
        # days in [low, high]  <=>  at in (now - (high+1) days, now - low days]
        upper = self.now - dt.timedelta(days=low) if low is not None else None
        lower = self.now - dt.timedelta(days=high + 1) if high is not None else None
        inside = rows
        if upper is not None:
            inside = inside.filter(purchased_at__lte=upper)
        if lower is not None:
            inside = inside.filter(purchased_at__gt=lower)
        q = Q(Exists(inside))
        if spec.name == "days_since_last_purchase" and upper is not None:
            q &= ~Exists(rows.filter(purchased_at__gt=upper))
        if spec.name == "days_since_first_purchase" and lower is not None:
            q &= ~Exists(rows.filter(purchased_at__lte=lower))
        return q

    # Consent and segments -------------------------------------------------------------------
    def consent(self, node: dict) -> Q:
        states = ConsentState.objects.filter(customer_id=OuterRef("pk"), purpose_id=node["consent"])
        if node["state"] == "unknown":
            return ~Exists(states)
        return Q(Exists(states.filter(state=node["state"])))

    def segment(self, node: dict) -> Q:
        from segments.models import Membership

        members = Membership.objects.filter(segment_id=node["segment"], customer_id=OuterRef("pk"))
        return Q(Exists(members))
