"""Cells of the CSV files people download and open in a spreadsheet program.

A cell starting with = + - @ (or a tab or carriage return before one) is run as a formula by
Excel, LibreOffice and Google Sheets, so text from customers or import files could make a
staff member's spreadsheet fetch a URL or run a command. Every downloaded CSV writes its cells
through `spreadsheet_safe`, which keeps such text as text with a leading apostrophe.
"""

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> str:
    """A cell a spreadsheet shows as text."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def spreadsheet_unescape(text: str) -> str:
    """The text `spreadsheet_safe` was given (for reading back a file we wrote)."""
    return text[1:] if text.startswith("'") and text[1:].startswith(FORMULA_PREFIXES) else text
