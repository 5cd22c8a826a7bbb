"""Message templates: Django templates in a sandbox.

The sandbox engine has no loaders and no tag libraries beyond the built-ins, refuses the tags
that reach outside the message (include, extends, load, debug, url, ssi, csrf_token), and renders
with a context of plain dicts (never model instances, so no method can be called). Customer data
is always escaped in HTML: `autoescape off` and the `safe` filters are refused. Validation walks
the node tree and reports, with the line number, every syntax error, forbidden tag and variable
the context does not offer, wherever a tag takes one (if, for, with, firstof, cycle, ...): the
marketer learns about it on save, never at send time.
"""

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
            for _lookup, arg in args:
                if isinstance(arg, Variable):
                    _check_variable(arg, scope, line, field, out)


def _shape_of(expr, scope: dict):
    """What a valid expression refers to in the schema (a dict, a list of dicts, or None)."""
    var = expr.var if isinstance(expr, FilterExpression) else expr
    if not isinstance(var, Variable) or var.literal is not None or not var.lookups:
        return None
    if isinstance(expr, FilterExpression) and expr.filters:
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


def _walk(nodelist, scope: dict, field: str, out: list) -> None:
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
            sequence = _shape_of(node.sequence, scope)
            item_shape = sequence[0] if isinstance(sequence, list) else None
            inner = {**scope, "forloop": {"counter": None, "counter0": None, "first": None,
                                          "last": None}}  # fmt: skip
            for name in node.loopvars:
                inner[name] = item_shape
            _walk(node.nodelist_loop, inner, field, out)
            _walk(node.nodelist_empty, scope, field, out)
            continue
        elif isinstance(node, IfNode):
            for condition, body in node.conditions_nodelists:
                for expr in _condition_expressions(condition):
                    _check_expression(expr, scope, line, field, out)
                _walk(body, scope, field, out)
            continue
        elif isinstance(node, WithNode):
            inner = dict(scope)
            for name, expr in node.extra_context.items():
                _check_expression(expr, scope, line, field, out)
                inner[name] = _shape_of(expr, scope)
            _walk(node.nodelist, inner, field, out)
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
                _walk(child, scope, field, out)


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
    return out


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
        ctx = Context(context, autoescape=False)
        subject = " ".join(self.subject.render(ctx).split())
        text = self.text.render(Context(context, autoescape=False))
        html = self.html.render(Context(context)) if self.html is not None else ""
        return subject, html, text
