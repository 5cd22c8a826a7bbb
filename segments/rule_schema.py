"""The rule language (segments/rules.py) as a JSON Schema, generated from the catalogue.

The schema is published in the OpenAPI document (the `rule` fields of the segments API) so a
client generated from it can build and read rule trees. It describes the structure: the
`all` / `any` / `not` groups, and the conditions with the catalogue's field and metric names,
the operators each allows and the type of value each operator takes. `rules.validate` stays the
one validator and also checks what a schema cannot say (ranges between two values, dates that
exist, depth and size, the segments and purposes a rule names, the fields a role may read);
tests/segments/test_rule_schema.py proves the two agree on the structure.

Written in the subset of JSON Schema that OpenAPI 3.0 shares with JSON Schema 2020-12, so the
same document serves both.
"""

from typing import Any

from segments import rules

MAX_INTEGER = 10**12
DECIMAL_TEXT = r"^-?[0-9]+(\.[0-9]+)?$"
NON_NEGATIVE_DECIMAL_TEXT = r"^[0-9]+(\.[0-9]+)?$"
DATE_TEXT = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
NO_VALUE = {"nullable": True, "enum": [None], "description": "No value (or null)."}


def _scalar(kind: str, choices: tuple[str, ...] = (), *, non_negative: bool = False) -> dict:
    """One value of a kind, as `rules._Validator.scalar` accepts it."""
    low = 0 if non_negative else -MAX_INTEGER
    if kind in (rules.TEXT, rules.TAGS):
        return {"type": "string", "maxLength": 255}
    if kind == rules.CHOICE:
        return {"type": "string", "enum": list(choices)}
    if kind == rules.INTEGER:
        return {"type": "integer", "minimum": low, "maximum": MAX_INTEGER}
    if kind == rules.USER:
        return {"type": "integer", "minimum": 0, "maximum": MAX_INTEGER}
    if kind == rules.NUMBER:
        return {
            "anyOf": [
                {"type": "number", "minimum": low} if non_negative else {"type": "number"},
                {
                    "type": "string",
                    "pattern": NON_NEGATIVE_DECIMAL_TEXT if non_negative else DECIMAL_TEXT,
                },
            ],
            "description": "A number with at most 2 decimals below 10^12 (or its text).",
        }
    if kind == rules.DATE:
        return {
            "type": "string",
            "pattern": DATE_TEXT,
            "description": f"A date from {rules.DATE_MIN} to {rules.DATE_MAX}.",
        }
    raise ValueError(kind)


def _list(item: dict, *, min_items: int = 1, max_items: int = rules.MAX_LIST) -> dict:
    return {"type": "array", "items": item, "minItems": min_items, "maxItems": max_items}


def _attr_values(op: str) -> dict:
    """The value of a custom attribute condition for an operator."""
    text = {"type": "string", "maxLength": 255}
    number = {"type": "number"}
    if op in ("in", "not_in"):
        # Values of one type: all texts, all numbers, or all true/false.
        return {"anyOf": [_list(text), _list(number), _list({"type": "boolean"})]}
    if op == "between":
        return _list(_scalar(rules.NUMBER), min_items=2, max_items=2)
    if op in rules.ORDER:
        return _scalar(rules.NUMBER)
    if op in rules.TEXT_MATCH:
        return {**text, "minLength": 1}
    return {"anyOf": [text, number, {"type": "boolean"}]}


def _values(kind: str, op: str, choices: tuple[str, ...], *, age: bool = False, **kw) -> dict:
    """The value an operator takes on a field or metric of a kind."""
    scalar = _scalar(kind, choices, **kw)
    if age:
        scalar = {"type": "integer", "minimum": 0, "maximum": 200}
    if op in ("in", "not_in"):
        return _list(scalar)
    if op == "between":
        return _list(scalar, min_items=2, max_items=2)
    if op == "within_last_days":
        return {"type": "integer", "minimum": 0, "maximum": 36500}
    if op in rules.TEXT_MATCH:
        return {**scalar, "minLength": 1}
    return scalar


def _condition(title: str, key: str, names: dict, ops: list[str], value: dict | None, **extra):
    properties = {key: names, "op": {"type": "string", "enum": ops}, **extra}
    required = [key, "op"]
    if value is None:
        properties["value"] = NO_VALUE
    else:
        properties["value"] = value
        required.append("value")
    return {
        "title": title,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _operator_classes(ops: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """Operators grouped by the value they take, each group named for titles."""
    classes = [
        ("Empty", [op for op in ops if op in rules.NO_VALUE_OPS]),
        ("List", [op for op in ops if op in ("in", "not_in")]),
        ("Range", [op for op in ops if op == "between"]),
        ("Days", [op for op in ops if op == "within_last_days"]),
        ("Match", [op for op in ops if op in rules.TEXT_MATCH]),
    ]
    grouped = {op for _name, group in classes for op in group}
    classes.append(("Value", [op for op in ops if op not in grouped]))
    return [(name, group) for name, group in classes if group]


def _camel(text: str) -> str:
    return "".join(part.capitalize() for part in text.replace(".", "_").split("_"))


def _field_conditions() -> list[dict]:
    by_signature: dict[tuple, list[str]] = {}
    for spec in rules.FIELDS.values():
        signature = (spec.kind, spec.operators, spec.choices, spec.name == "age")
        by_signature.setdefault(signature, []).append(spec.name)
    found = []
    for (kind, ops, choices, age), names in by_signature.items():
        if len(names) == 1:
            label = _camel(names[0])
        else:  # fields of one kind: those that may be empty have their own operators
            label = _camel(kind) + ("OrEmpty" if set(ops) & set(rules.NO_VALUE_OPS) else "")
        for name, group in _operator_classes(ops):
            value = None if name == "Empty" else _values(kind, group[0], choices, age=age)
            found.append(
                _condition(
                    f"SegmentRuleField{label}{name}",
                    "field",
                    {"type": "string", "enum": names},
                    group,
                    value,
                )
            )
    attr_name = {
        "type": "string",
        "pattern": r"^attr\.[A-Za-z0-9_]{1,64}$",
        "description": "A custom attribute: attr.<key>.",
    }
    for name, group in _operator_classes(rules.OPERATORS_BY_KIND[rules.ATTR]):
        if name == "Value":  # eq, ne: a text, a number or true/false; the order ops: a number
            order = [op for op in group if op not in ("eq", "ne")]
            for sub, ops in (("Value", ["eq", "ne"]), ("Order", order)):
                found.append(
                    _condition(
                        f"SegmentRuleFieldAttr{sub}", "field", attr_name, ops, _attr_values(ops[0])
                    )
                )
            continue
        value = None if name == "Empty" else _attr_values(group[0])
        found.append(_condition(f"SegmentRuleFieldAttr{name}", "field", attr_name, group, value))
    return found


def _filters(allowed: tuple[str, ...]) -> dict:
    properties = {}
    for key in allowed:
        text = (
            {"type": "string", "enum": list(rules.CHANNELS)}
            if key == "channel"
            else {"type": "string", "minLength": 1, "maxLength": 255}
        )
        properties[key] = {"anyOf": [text, _list(text)]}
    return {"type": "object", "properties": properties, "additionalProperties": False}


WINDOW = {
    "anyOf": [
        {
            "title": "SegmentRuleWindowDays",
            "type": "object",
            "properties": {"last_days": {"type": "integer", "minimum": 1, "maximum": 36500}},
            "required": ["last_days"],
            "additionalProperties": False,
        },
        {
            "title": "SegmentRuleWindowDates",
            "type": "object",
            "properties": {"from": _scalar(rules.DATE), "to": _scalar(rules.DATE)},
            "minProperties": 1,
            "additionalProperties": False,
        },
    ],
    "description": "The last N days, or a date range (from, to or both).",
}


def _metric_conditions() -> list[dict]:
    found = []
    for spec in rules.METRICS.values():
        allowed = rules.PURCHASE_FILTERS if spec.source == "purchase" else rules.EVENT_FILTERS
        for name, group in _operator_classes(spec.operators):
            value = None if name == "Empty" else _values(spec.kind, group[0], (), non_negative=True)
            found.append(
                _condition(
                    f"SegmentRuleMetric{_camel(spec.name)}{name}",
                    "metric",
                    {"type": "string", "enum": [spec.name]},
                    group,
                    value,
                    window=WINDOW,
                    filter=_filters(allowed),
                )
            )
    return found


def rule_schema_components(*, prefix: str) -> dict[str, dict]:
    """The schema of a rule tree as named schemas: `SegmentRule` (any group or condition) and
    one per group and kind of condition, referring to each other as `prefix` + name
    ("#/components/schemas/" in OpenAPI, "#/$defs/" standalone)."""
    child = {"$ref": f"{prefix}SegmentRule"}

    def group(key: str, body: dict) -> dict:
        return {
            "title": f"SegmentRule{key.capitalize()}",
            "type": "object",
            "properties": {key: body},
            "required": [key],
            "additionalProperties": False,
        }

    consent = {
        "title": "SegmentRuleConsent",
        "type": "object",
        "properties": {
            "consent": {"type": "string", "minLength": 1, "description": "A purpose code."},
            "state": {"type": "string", "enum": list(rules.CONSENT_STATES)},
        },
        "required": ["consent", "state"],
        "additionalProperties": False,
    }
    segment = {
        "title": "SegmentRuleSegment",
        "type": "object",
        "properties": {
            "segment": {"type": "integer", "minimum": 1, "description": "A segment's id."}
        },
        "required": ["segment"],
        "additionalProperties": False,
    }
    branches = [
        group("all", {"type": "array", "items": child}),
        group("any", {"type": "array", "items": child}),
        group("not", child),
        *_field_conditions(),
        *_metric_conditions(),
        consent,
        segment,
    ]
    components = {branch["title"]: branch for branch in branches}
    assert len(components) == len(branches), "every branch has a title of its own"
    components["SegmentRule"] = {
        "description": (
            f"A segment rule (version {rules.RULE_VERSION}, docs/rules.md): a group "
            "(all, any, not) of rules, or one condition on a profile field, a behaviour metric, "
            "consent, or membership of another segment."
        ),
        "anyOf": [{"$ref": f"{prefix}{name}"} for name in components],
    }
    return components


def rule_json_schema() -> dict[str, Any]:
    """The rule language as one standalone JSON Schema (2020-12)."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": "#/$defs/SegmentRule",
        "$defs": rule_schema_components(prefix="#/$defs/"),
    }
