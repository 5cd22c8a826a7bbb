"""Message templates: Django templates in a sandbox.

The sandbox engine has no loaders and no tag libraries beyond the built-ins, refuses the tags
that reach outside the message (include, extends, load, debug, url, ssi, csrf_token), and renders
with a context of plain dicts (never model instances, so no method can be called). Customer data
is always escaped in HTML: `autoescape off` and the `safe` filters are refused. Validation walks
the node tree and reports, with the line number, every syntax error, forbidden tag and variable
the context does not offer, wherever a tag takes one (if, for, with, firstof, cycle, ...): the
marketer learns about it on save, never at send time.

A message is rendered once per recipient, so validation also refuses what would make one
rendering huge or endless: a loop over anything but a list of the context (looping over the
letters of a name), loops nested deeper than MAX_LOOP_DEPTH, and sizes beyond a message's
(padding to a billion characters, a million words of lorem ipsum, a thousand decimals).
"""

import re
from dataclasses import dataclass

from django.template import Context, Engine, TemplateSyntaxError
from django.template.base import FilterExpression, Node, Variable, VariableNode
from django.template.defaulttags import (
    AutoEscapeControlNode,
    CsrfTokenNode,
    DebugNode,
    FilterNode,
    ForNode,
    IfNode,
    LoadNode,
    LoremNode,
    RegroupNode,
    URLNode,
    WithNode,
)
from django.template.loader_tags import BlockNode, ExtendsNode, IncludeNode

ENGINE = Engine(debug=True, loaders=[], libraries={}, autoescape=True)
TEXT_ENGINE = Engine(debug=True, loaders=[], libraries={}, autoescape=False)

FORBIDDEN_NODES = (
    IncludeNode,
    ExtendsNode,
    BlockNode,
    LoadNode,
    DebugNode,
    URLNode,
    CsrfTokenNode,
    AutoEscapeControlNode,
)
TAG_NAMES = {AutoEscapeControlNode: "autoescape", CsrfTokenNode: "csrf_token"}
# Filters that would put customer data into the HTML unescaped.
FORBIDDEN_FILTERS = {"safe", "safeseq"}
# The largest literal argument of filters whose output grows with it, and what it means.
SIZE_LIMITS = {
    "ljust": (1000, "pads to at most 1000 characters"),
    "rjust": (1000, "pads to at most 1000 characters"),
    "center": (1000, "pads to at most 1000 characters"),
    "floatformat": (20, "shows at most 20 decimals"),
    "stringformat": (1000, "takes a width and precision of at most 1000"),
}
MAX_LOREM = 100
MAX_LOOP_DEPTH = 3
# Node attributes that hold the template's own structure, never an expression to check.
_STRUCTURE = {"token", "origin", "nodelist", "child_nodelists", "parent", "must_be_first"}

PRODUCT_FIELDS = {"name": None, "category": None, "price": None, "url": None}
# What a message may use: a name maps to its allowed attributes (None: a plain value).
SCHEMA: dict = {
    "customer": {
        "first_name": None,
        "last_name": None,
        "full_name": None,
        "city": None,
        "country": None,
        "language": None,
    },
    "account": {"name": None},
    "campaign": {"name": None},
    "promotion": {"code": None, "discount": None, "expires_at": None},
    "recommendations": [PRODUCT_FIELDS],
    "links": {"unsubscribe": None, "preferences": None},
}


@dataclass(frozen=True)
class TemplateProblem:
    field: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.field}, line {self.line}: {self.message}"

    def as_dict(self) -> dict:
        return {"field": self.field, "line": self.line, "message": self.message}


def _line(node: Node) -> int:
    token = getattr(node, "token", None)
    return getattr(token, "lineno", 0) or 0


def _check_variable(var: Variable | None, scope: dict, line: int, field: str, out: list) -> None:
    if var is None or var.literal is not None or not var.lookups:
        return
    root, *attrs = var.lookups
    if root not in scope:
        out.append(TemplateProblem(field, line, f"unknown variable '{root}'"))
        return
    shape = scope[root]
    path = root
    for attr in attrs:
        if isinstance(shape, list):
            if attr.isdigit() or attr in ("count",):
                shape = shape[0]
                continue
            out.append(TemplateProblem(field, line, f"'{path}' is a list; '{attr}' is unknown"))
            return
        if not isinstance(shape, dict) or attr not in shape:
            out.append(TemplateProblem(field, line, f"unknown variable '{path}.{attr}'"))
            return
        shape, path = shape[attr], f"{path}.{attr}"


def _check_expression(expr, scope: dict, line: int, field: str, out: list) -> None:
    if isinstance(expr, Variable):
        _check_variable(expr, scope, line, field, out)
    elif isinstance(expr, FilterExpression):
        if isinstance(expr.var, Variable):
            _check_variable(expr.var, scope, line, field, out)
        for func, args in expr.filters:
            name = getattr(func, "_filter_name", getattr(func, "__name__", ""))
            if name in FORBIDDEN_FILTERS:
                out.append(TemplateProblem(field, line, f"the '{name}' filter is not allowed"))
            if name in SIZE_LIMITS and _literal_beyond(args, SIZE_LIMITS[name][0]):
                message = f"the '{name}' filter {SIZE_LIMITS[name][1]}"
                out.append(TemplateProblem(field, line, message))
            for _lookup, arg in args:
                if isinstance(arg, Variable):
                    _check_variable(arg, scope, line, field, out)


def _literal_beyond(args: list, limit: int) -> bool:
    """Whether a literal argument holds a number above `limit` ("1000000", "-30", "%09999d")."""
    for _lookup, arg in args:
        # A constant is stored resolved; a Variable may still hold a literal.
        literal = arg.literal if isinstance(arg, Variable) else arg
        if literal is None:
            continue
        if any(int(n) > limit for n in re.findall(r"\d+", str(literal))):
            return True
    return False


def _shape_of(expr, scope: dict, *, filtered: bool = False):
    """What a valid expression refers to in the schema (a dict, a list of dicts, or None);
    with `filtered`, a filtered list counts as that list (`recommendations|slice:":2"`)."""
    var = expr.var if isinstance(expr, FilterExpression) else expr
    if not isinstance(var, Variable) or var.literal is not None or not var.lookups:
        return None
    if isinstance(expr, FilterExpression) and expr.filters and not filtered:
        return None
    shape = scope.get(var.lookups[0])
    for attr in var.lookups[1:]:
        if isinstance(shape, list):
            shape = shape[0] if attr.isdigit() else None
        elif isinstance(shape, dict):
            shape = shape.get(attr)
        else:
            return None
    return shape


def _expressions_in(node: Node) -> list:
    """Every expression a tag holds in its attributes (firstof's, cycle's, widthratio's, ...)."""
    found = []
    for name, value in vars(node).items():
        if name in _STRUCTURE or name.startswith("nodelist"):
            continue
        items = value.values() if isinstance(value, dict) else value
        if not isinstance(items, list | tuple):
            items = [items]
        found.extend(v for v in items if isinstance(v, FilterExpression | Variable))
    return found


def _condition_expressions(condition) -> list:
    """The FilterExpressions inside an {% if %} condition tree."""
    found = []
    stack = [condition]
    while stack:
        item = stack.pop()
        if item is None:
            continue
        value = getattr(item, "value", None)
        if isinstance(value, FilterExpression):
            found.append(value)
        stack.extend([getattr(item, "first", None), getattr(item, "second", None)])
    return found


def _walk(nodelist, scope: dict, field: str, out: list, depth: int = 0) -> None:
    scope = dict(scope)  # names a tag defines with "as" hold until the end of this block
    for node in nodelist:
        line = _line(node)
        if isinstance(node, FORBIDDEN_NODES):
            name = TAG_NAMES.get(type(node), type(node).__name__.removesuffix("Node").lower())
            out.append(TemplateProblem(field, line, f"the '{name}' tag is not allowed in messages"))
            continue
        if isinstance(node, VariableNode):
            _check_expression(node.filter_expression, scope, line, field, out)
        elif isinstance(node, ForNode):
            _check_expression(node.sequence, scope, line, field, out)
            sequence = _shape_of(node.sequence, scope, filtered=True)
            if not isinstance(sequence, list):
                out.append(TemplateProblem(
                    field, line, "the 'for' tag loops over a list, such as recommendations"
                ))  # fmt: skip
            elif depth >= MAX_LOOP_DEPTH:
                out.append(TemplateProblem(
                    field, line, f"loops may be nested at most {MAX_LOOP_DEPTH} deep"
                ))  # fmt: skip
            item_shape = sequence[0] if isinstance(sequence, list) else None
            inner = {**scope, "forloop": {"counter": None, "counter0": None, "first": None,
                                          "last": None}}  # fmt: skip
            for name in node.loopvars:
                inner[name] = item_shape
            _walk(node.nodelist_loop, inner, field, out, depth + 1)
            _walk(node.nodelist_empty, scope, field, out, depth)
            continue
        elif isinstance(node, LoremNode) and _literal_beyond([(None, node.count.var)], MAX_LOREM):
            out.append(TemplateProblem(
                field, line, f"the 'lorem' tag writes at most {MAX_LOREM} words or paragraphs"
            ))  # fmt: skip
            continue
        elif isinstance(node, IfNode):
            for condition, body in node.conditions_nodelists:
                for expr in _condition_expressions(condition):
                    _check_expression(expr, scope, line, field, out)
                _walk(body, scope, field, out, depth)
            continue
        elif isinstance(node, WithNode):
            inner = dict(scope)
            for name, expr in node.extra_context.items():
                _check_expression(expr, scope, line, field, out)
                inner[name] = _shape_of(expr, scope)
            _walk(node.nodelist, inner, field, out, depth)
            continue
        elif isinstance(node, FilterNode):
            # {% filter f %} compiles to "var|f": "var" is the block's own output.
            _check_expression(node.filter_expr, {**scope, "var": None}, line, field, out)
        elif isinstance(node, RegroupNode):
            _check_expression(node.target, scope, line, field, out)
            items = _shape_of(node.target, scope)
            scope[node.var_name] = [{"grouper": None, "list": items}]
            continue
        else:
            for expr in _expressions_in(node):
                _check_expression(expr, scope, line, field, out)
            name = getattr(node, "asvar", None) or getattr(node, "variable_name", None)
            if isinstance(name, str):
                scope[name] = None
        for attr in getattr(node, "child_nodelists", ()):
            child = getattr(node, attr, None)
            if child:
                _walk(child, scope, field, out, depth)


def template_problems(source: str, *, field: str, html: bool = True) -> list[TemplateProblem]:
    """Every problem in one template field, with its line; empty when it is fine to send."""
    engine = ENGINE if html else TEXT_ENGINE
    try:
        template = engine.from_string(source)
    except TemplateSyntaxError as exc:
        info = getattr(exc, "template_debug", None) or {}
        message = str(exc)
        if "is not a registered tag library" in message:
            message = "the 'load' tag is not allowed in messages"
        return [TemplateProblem(field, int(info.get("line", 1)), message)]
    out: list[TemplateProblem] = []
    _walk(template.nodelist, SCHEMA, field, out)
    if not out:
        # What the tree cannot tell: a filter given a text where it needs a number
        # (`center:customer.city`), a division by zero. Written once for a sample customer.
        try:
            template.render(Context(SAMPLE_CONTEXT, autoescape=html))
        except Exception as exc:  # noqa: BLE001 - any failure of a filter or tag is reported
            line = int((getattr(exc, "template_debug", None) or {}).get("line", 1))
            out.append(TemplateProblem(field, line, f"cannot be written for a customer: {exc}"))
    return out


class RenderFailed(ValueError):
    """A message could not be written for one customer (a filter failed on their data)."""


def _sample(shape):
    if isinstance(shape, list):
        return [_sample(shape[0]) for _ in range(3)]
    if isinstance(shape, dict):
        return {key: _sample(value) for key, value in shape.items()}
    return "Sample"


SAMPLE_CONTEXT = _sample(SCHEMA)


def variant_problems(*, subject: str, html: str, text: str) -> list[TemplateProblem]:
    return [
        *template_problems(subject, field="subject", html=False),
        *template_problems(html, field="html"),
        *template_problems(text, field="text", html=False),
    ]


def uses_recommendations(*sources: str) -> bool:
    return any("recommendations" in source for source in sources)


class CompiledVariant:
    """A variant's templates, parsed once per batch."""

    def __init__(self, *, subject: str, html: str, text: str):
        self.subject = TEXT_ENGINE.from_string(subject)
        self.html = ENGINE.from_string(html) if html else None
        self.text = TEXT_ENGINE.from_string(text)
        self.needs_recommendations = uses_recommendations(subject, html, text)

    def render(self, context: dict) -> tuple[str, str, str]:
        """Subject, HTML and text for one customer; RenderFailed names the field that failed
        (validation renders a sample customer, but a customer's own data may still fail)."""
        rendered = []
        for field, template, autoescape in (
            ("subject", self.subject, False),
            ("html", self.html, True),
            ("text", self.text, False),
        ):
            try:
                text = template.render(Context(context, autoescape=autoescape)) if template else ""
            except Exception as exc:  # noqa: BLE001 - any failure of a filter or tag
                raise RenderFailed(f"{field}: cannot be written for this customer: {exc}") from exc
            # Template.render marks its output safe for the page it was meant for. A message is
            # never that page: whoever shows it (the preview, a report) must escape it or frame
            # it, so it leaves here as plain text.
            rendered.append(str.__str__(text))
        subject, html, text = rendered
        return " ".join(subject.split()), html, text
