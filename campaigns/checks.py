"""Deploy checks of the campaign settings (`manage.py check --deploy`)."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Tags, Warning, register

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


@register(Tags.security, deploy=True)
def site_url_check(app_configs, **kwargs) -> list[Warning]:
    """Every campaign email carries links (unsubscribe, preferences, tracking) to
    CAMPAIGNS_SITE_URL: in production it must be the public HTTPS address of the CRM, or
    recipients cannot unsubscribe."""
    url = settings.CAMPAIGNS_SITE_URL
    parts = urlsplit(url)
    if parts.hostname is None or parts.hostname in LOCAL_HOSTS:
        return [
            Warning(
                f"CAMPAIGNS_SITE_URL is {url!r}, a local address: the unsubscribe, preference "
                "and tracking links in campaign email would not reach the CRM.",
                hint="Set CAMPAIGNS_SITE_URL to the public https:// address of this CRM.",
                id="campaigns.W001",
            )
        ]
    if parts.scheme != "https":
        return [
            Warning(
                f"CAMPAIGNS_SITE_URL is {url!r}: links in campaign email would carry signed "
                "unsubscribe and preference tokens over plain HTTP.",
                hint="Use the https:// address of this CRM.",
                id="campaigns.W002",
            )
        ]
    return []
