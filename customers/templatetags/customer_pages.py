"""Template tags of the customer pages."""

from django import template
from django.utils.safestring import SafeString

register = template.Library()


@register.simple_tag(takes_context=True)
def render_panel(context: template.Context, item: dict) -> SafeString:
    """Render a panel a higher app registered, with the page's context (request, user, CSRF token)
    plus the keys its context function returned."""
    panel_template = context.template.engine.get_template(item["panel"].template)
    # Both spellings work in a panel template: {{ key }} and {{ context.key }}.
    with context.push({**item["context"], "context": item["context"]}):
        return panel_template.render(context)
