"""Signed links in messages: unsubscribe, open pixel and click redirect.

Each token carries the send id (and for clicks the target URL) signed with SECRET_KEY, so a
recipient cannot forge one for someone else or turn the redirect towards an arbitrary site.

A batch signs several links for every message: `MessageLinks` resolves the URLs once; each token
is `django.core.signing.dumps` of the id (as privacy.links makes its tokens), loaded by the views
with `signing.loads`, so links signed with a key now in SECRET_KEY_FALLBACKS keep working, and so
do those made by earlier versions (the same format; click tokens once compressed).
"""

import functools
import re
import string
from html import unescape

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse

from privacy.links import preference_token

_UNSUBSCRIBE_SALT = "campaigns.unsubscribe"
_OPEN_SALT = "campaigns.open"
_CLICK_SALT = "campaigns.click"
# Unsubscribe links keep working for a year (CAN-SPAM asks for at least 30 days).
UNSUBSCRIBE_MAX_AGE = 365 * 24 * 3600

HREF = re.compile(r"""href\s*=\s*(["'])(https?://[^"']+)\1""", re.IGNORECASE)


class BadLink(Exception):
    pass


# Per-recipient links that higher apps add to messages (`{{ links.<name> }}` in a template):
# name -> (URL name taking the token, signing salt). The token is the send id signed with the
# app's own salt, as the unsubscribe link's; the app's view loads it with signing.loads.
_REGISTERED: dict[str, tuple[str, str]] = {}


def message_link_register(*, name: str, url_name: str, salt: str) -> None:
    """Offer `{{ links.<name> }}` to message templates (call from AppConfig.ready())."""
    from campaigns.rendering import SAMPLE_CONTEXT, SCHEMA

    _REGISTERED[name] = (url_name, salt)
    SCHEMA["links"][name] = None
    SAMPLE_CONTEXT["links"][name] = "Sample"


def message_link_names() -> tuple[str, ...]:
    return tuple(_REGISTERED)


def _site(path: str) -> str:
    return f"{settings.CAMPAIGNS_SITE_URL.rstrip('/')}{path}"


_SLOT = "0slot0"
# What reverse() leaves unquoted; signed tokens are made of these (base64url, ':' and '.').
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-_.:~")


_LINKS = (
    "campaigns:unsubscribe",
    "campaigns:track_open",
    "campaigns:track_click",
    "privacy:preference_centre",
)


@functools.lru_cache(maxsize=64)
def _path_around(name: str, urlconf: str, prefix: str) -> tuple[str, str]:
    before, _slot, after = reverse(name, urlconf=urlconf, args=[_SLOT]).partition(_SLOT)
    return before, after


class MessageLinks:
    """The links of a batch's messages, with their URLs resolved once.

    Build it where the URL configuration of the work is active (the thread-local urlconf and
    script prefix are read here); its methods then read no thread-local state, so the messages
    can be written in another thread.
    """

    def __init__(self):
        self.site = settings.CAMPAIGNS_SITE_URL.rstrip("/")
        self.urlconf = get_urlconf() or settings.ROOT_URLCONF
        self.paths = {
            name: _path_around(name, self.urlconf, get_script_prefix())
            for name in (*_LINKS, *(url_name for url_name, _salt in _REGISTERED.values()))
        }
        self._registered = dict(_REGISTERED)

    def _url(self, name: str, token: str) -> str:
        if not _TOKEN_CHARS.issuperset(token):
            return _site(reverse(name, urlconf=self.urlconf, args=[token]))
        before, after = self.paths[name]
        return f"{self.site}{before}{token}{after}"

    def unsubscribe_token(self, send_id: int) -> str:
        return signing.dumps(send_id, salt=_UNSUBSCRIBE_SALT)

    def unsubscribe(self, send_id: int) -> str:
        return self._url("campaigns:unsubscribe", self.unsubscribe_token(send_id))

    def open(self, send_id: int) -> str:
        return self._url("campaigns:track_open", signing.dumps(send_id, salt=_OPEN_SALT))

    def click(self, send_id: int, url: str) -> str:
        token = signing.dumps({"s": send_id, "u": url}, salt=_CLICK_SALT)
        return self._url("campaigns:track_click", token)

    def preferences(self, customer_id: int) -> str:
        """The customer's preference centre (privacy.links.preference_url, with the site)."""
        return self._url("privacy:preference_centre", preference_token(customer_id=customer_id))

    def registered(self, send_id: int | None) -> dict[str, str]:
        """The links higher apps registered (message_link_register), for one send."""
        return {
            name: self._url(url_name, signing.dumps(send_id, salt=salt)) if send_id else ""
            for name, (url_name, salt) in self._registered.items()
        }

    def track(self, html: str, *, send_id: int) -> str:
        """Rewrite every http(s) link through the click redirect and add the open pixel."""
        if not html:
            return html

        def replace(match: re.Match) -> str:
            quote, url = match.group(1), unescape(match.group(2))
            return f"href={quote}{self.click(send_id, url)}{quote}"

        tracked = HREF.sub(replace, html)
        pixel = f'<img src="{self.open(send_id)}" width="1" height="1" alt="">'
        if "</body>" in tracked:
            return tracked.replace("</body>", f"{pixel}</body>", 1)
        return tracked + pixel


def unsubscribe_token(*, send_id: int) -> str:
    return MessageLinks().unsubscribe_token(send_id)


def unsubscribe_url(*, send_id: int) -> str:
    return MessageLinks().unsubscribe(send_id)


def unsubscribe_send_id(token: str) -> int:
    try:
        value = signing.loads(token, salt=_UNSUBSCRIBE_SALT, max_age=UNSUBSCRIBE_MAX_AGE)
    except signing.BadSignature as exc:
        raise BadLink("This unsubscribe link is not valid or has expired.") from exc
    if not isinstance(value, int):
        raise BadLink("This unsubscribe link is not valid.")
    return value


def open_url(*, send_id: int) -> str:
    return MessageLinks().open(send_id)


def open_send_id(token: str) -> int:
    try:
        value = signing.loads(token, salt=_OPEN_SALT)
    except signing.BadSignature as exc:
        raise BadLink("bad open token") from exc
    if not isinstance(value, int):
        raise BadLink("bad open token")
    return value


def click_url(*, send_id: int, url: str) -> str:
    return MessageLinks().click(send_id, url)


def click_target(token: str) -> tuple[int, str]:
    try:
        value = signing.loads(token, salt=_CLICK_SALT)
    except signing.BadSignature as exc:
        raise BadLink("bad click token") from exc
    if not isinstance(value, dict) or not isinstance(value.get("s"), int):
        raise BadLink("bad click token")
    url = value.get("u")
    if not isinstance(url, str) or not url.lower().startswith(("http://", "https://")):
        raise BadLink("bad click token")
    return value["s"], url


def links_in(html: str) -> set[str]:
    """The http(s) URLs a message's HTML links to."""
    return {unescape(m.group(2)) for m in HREF.finditer(html or "")}


def html_track(html: str, *, send_id: int) -> str:
    """Rewrite every http(s) link through the click redirect and add the open pixel."""
    return MessageLinks().track(html, send_id=send_id)
