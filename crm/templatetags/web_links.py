"""Links made from stored addresses."""

from urllib.parse import urlsplit

from django import template

register = template.Library()

WEB_SCHEMES = ("http", "https")


@register.filter
def web_address(value: str | None) -> str:
    """The address when it is an http(s) link, else "": a stored text never becomes a
    javascript: or data: link, whatever wrote it (forms and the API refuse them; a row written
    another way may not)."""
    text = (value or "").strip()
    try:
        parts = urlsplit(text)
    except ValueError:
        return ""
    return text if parts.scheme.lower() in WEB_SCHEMES and parts.netloc else ""
