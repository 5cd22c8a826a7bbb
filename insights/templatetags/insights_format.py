"""How a KPI figure is written: rates as percentages, money with two decimals, counts whole."""

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma

register = template.Library()


@register.filter
def kpi(value, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "rate":
        return f"{value * 100:.1f}%"
    if unit == "money":
        return intcomma(f"{value:.2f}")
    if unit in ("ratio", "score"):
        return f"{value:.2f}" if unit == "ratio" else f"{value:.1f}"
    return intcomma(int(value))


@register.filter
def kpi_change(value, unit: str) -> str:
    """A change, signed; a rate's change in percentage points."""
    if value is None:
        return "—"
    if unit == "rate":
        return f"{value * 100:+.1f} pts"
    if unit == "money":
        return f"{value:+,.2f}"
    if unit in ("ratio", "score"):
        return f"{value:+.2f}" if unit == "ratio" else f"{value:+.1f}"
    return f"{int(value):+,}"


@register.filter
def change_class(value) -> str:
    if value is None or value == 0:
        return "change-none"
    return "change-up" if value > 0 else "change-down"


@register.filter
def percent(value) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


@register.filter
def get_population(metric: dict, population: str):
    """One population's cell of a KPI row (templates cannot index by a variable)."""
    return metric.get(population)
