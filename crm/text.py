"""Text the database can hold: PostgreSQL refuses a NUL character, and no encoding has a lone
surrogate, so no stored text holds either. Input carrying one (a search term, a rule value, a
forged cursor, a line of an upload) can match nothing stored and must not reach a query."""


def text_problem(value: str) -> str | None:
    """Why no stored text can be `value`, in words for whoever typed it; None when it can."""
    if "\x00" in value:
        return "the text contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "the text contains a lone surrogate"
    return None
