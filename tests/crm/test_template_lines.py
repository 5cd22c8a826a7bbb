"""Templates stay readable in a review: no line over 200 characters (a whole table on one line
hides what changed in it)."""

from pathlib import Path

from django.conf import settings

MAX_LINE = 200


def _template_files() -> list[Path]:
    roots = [Path(d) for engine in settings.TEMPLATES for d in engine.get("DIRS", [])]
    roots += [p for p in Path(settings.BASE_DIR).glob("*/templates") if ".venv" not in p.parts]
    return sorted({f for root in roots for f in root.rglob("*") if f.suffix in (".html", ".txt")})


def test_there_are_templates_to_check():
    assert len(_template_files()) > 50


def test_no_template_line_is_longer_than_200_characters():
    long_lines = [
        f"{path.relative_to(settings.BASE_DIR)}:{number} ({len(line)} characters)"
        for path in _template_files()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if len(line) > MAX_LINE
    ]

    assert not long_lines, "Template lines to split:\n" + "\n".join(long_lines)
