"""Signed links in messages: unsubscribe, open pixel and click redirect.

Each token carries the send id (and for clicks the target URL) signed with SECRET_KEY, so a
recipient cannot forge one for someone else or turn the redirect towards an arbitrary site.
"""

import functools
import re
import string
from html import unescape

from django.conf import settings
from django.core import signing
from django.urls import get_script_prefix, get_urlconf, reverse

_UNSUBSCRIBE_SALT = "campaigns.unsubscribe"
_OPEN_SALT = "campaigns.open"
_CLICK_SALT = "campaigns.click"
# Unsubscribe links keep working for a year (CAN-SPAM asks for at least 30 days).
UNSUBSCRIBE_MAX_AGE = 365 * 24 * 3600

HREF = re.compile(r"""href\s*=\s*(["'])(https?://[^"']+)\1""", re.IGNORECASE)


class BadLink(Exception):
    pass


def _site(path: str) -> str:
    return f"{settings.CAMPAIGNS_SITE_URL.rstrip('/')}{path}"


_SLOT = "0slot0"
# What reverse() leaves unquoted; signed tokens are made of these (base64url, ':' and '.').
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-_.:~")


@functools.lru_cache(maxsize=64)
def _path_around(name: str, urlconf: str, prefix: str) -> tuple[str, str]:
    before, _slot, after = reverse(name, urlconf=urlconf, args=[_SLOT]).partition(_SLOT)
    return before, after


def _token_path(name: str, token: str) -> str:
    """reverse(name, args=[token]); a message has several links, so the URL is resolved once
    per URL name and only the token changes."""
    if not _TOKEN_CHARS.issuperset(token):
        return reverse(name, args=[token])
    before, after = _path_around(name, get_urlconf() or settings.ROOT_URLCONF, get_script_prefix())
    return f"{before}{token}{after}"


def unsubscribe_token(*, send_id: int) -> str:
    return signing.dumps(send_id, salt=_UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(*, send_id: int) -> str:
    return _site(_token_path("campaigns:unsubscribe", unsubscribe_token(send_id=send_id)))


def unsubscribe_send_id(token: str) -> int:
    try:
        value = signing.loads(token, salt=_UNSUBSCRIBE_SALT, max_age=UNSUBSCRIBE_MAX_AGE)
    except signing.BadSignature as exc:
        raise BadLink("This unsubscribe link is not valid or has expired.") from exc
    if not isinstance(value, int):
        raise BadLink("This unsubscribe link is not valid.")
    return value


def open_url(*, send_id: int) -> str:
    token = signing.dumps(send_id, salt=_OPEN_SALT, compress=True)
    return _site(_token_path("campaigns:track_open", token))


def open_send_id(token: str) -> int:
    try:
        value = signing.loads(token, salt=_OPEN_SALT)
    except signing.BadSignature as exc:
        raise BadLink("bad open token") from exc
    if not isinstance(value, int):
        raise BadLink("bad open token")
    return value


def click_url(*, send_id: int, url: str) -> str:
    token = signing.dumps({"s": send_id, "u": url}, salt=_CLICK_SALT, compress=True)
    return _site(_token_path("campaigns:track_click", token))


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
    if not html:
        return html

    def replace(match: re.Match) -> str:
        quote, url = match.group(1), unescape(match.group(2))
        return f"href={quote}{click_url(send_id=send_id, url=url)}{quote}"

    tracked = HREF.sub(replace, html)
    pixel = f'<img src="{open_url(send_id=send_id)}" width="1" height="1" alt="">'
    if "</body>" in tracked:
        return tracked.replace("</body>", f"{pixel}</body>", 1)
    return tracked + pixel
