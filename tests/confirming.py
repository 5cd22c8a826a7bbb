"""Tests press the confirm button of the confirmation page (crm/_confirm.html) as a browser
would: the form's hidden fields, re-posted to its action."""

from html.parser import HTMLParser


class _ConfirmationForm(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.inside = False
        self.action = ""
        self.fields: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == "confirmation-form":
            self.inside, self.action = True, attrs.get("action", "")
        elif self.inside and tag == "input" and attrs.get("type") == "hidden":
            self.fields.append((attrs["name"], attrs.get("value", "")))

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False


def press_confirm(client, response, **typed):
    """Submit the confirmation shown in `response`, with any typed fields added."""
    parser = _ConfirmationForm()
    parser.feed(response.content.decode())
    assert parser.action, "the response shows no confirmation"
    data: dict[str, list[str]] = {}
    for name, value in parser.fields:
        data.setdefault(name, []).append(value)
    data.update({name: [value] for name, value in typed.items()})
    return client.post(parser.action, data)
