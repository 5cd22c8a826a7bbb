"""How htmx runs on every page: nothing in a page may send a request but the elements the
product's own templates wrote.

Stored text is always escaped, so it never becomes an element. Should a page ever print it
unescaped, an element it made (`<i hx-post="/campaigns/2/cancel/" hx-trigger="load">`) would
send that request with the staff member's session and CSRF header. So htmx acts only on request
elements that carry `data-hx-key="{{ htmx_key }}"`, a key derived from the session that no text
stored before the page was rendered can know: htmx's `disableSelector` switches off every other
one, and all it holds. The rest of the configuration takes away what the product does not use:
no eval (hx-on, js: values, trigger filters), no scripts in swapped content, no request to
another origin, no copies of pages with personal data in the browser's session storage.
"""

import json

from django.http import HttpRequest
from django.utils.crypto import salted_hmac

# What makes an element send a request: the verbs and boosting.
REQUEST_ATTRIBUTES = [
    f"{prefix}hx-{name}"
    for prefix in ("", "data-")
    for name in ("get", "post", "put", "patch", "delete", "boost")
]


def htmx_key(request: HttpRequest) -> str:
    """The key of this session's request elements (a letter first: CSS reads it as a name)."""
    session = getattr(request, "session", None)
    session_key = (session.session_key if session is not None else None) or "no-session"
    return "k" + salted_hmac("crm.htmx.key", session_key, algorithm="sha256").hexdigest()[:24]


def htmx_config(request: HttpRequest) -> str:
    """htmx's configuration for the page (the meta tag htmx-config), as JSON."""
    key = htmx_key(request)
    unkeyed = [f"[{name}]:not([data-hx-key='{key}'])" for name in REQUEST_ATTRIBUTES]
    return json.dumps(
        {
            "includeIndicatorStyles": False,
            "allowEval": False,
            "allowScriptTags": False,
            "selfRequestsOnly": True,
            "historyCacheSize": 0,
            "refreshOnHistoryMiss": True,
            "disableSelector": ", ".join(["[hx-disable]", "[data-hx-disable]", *unkeyed]),
        }
    )
