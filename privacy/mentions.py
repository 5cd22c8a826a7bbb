"""Free text that may mention a person anywhere in the database, and how an erasure removes them.

The rows about a person are found through foreign keys (privacy.registry). Free text is not: a
mail server's refusal quotes the address on the send, a note on the household names the
person, a segment rule lists their email, an import keeps the file name it was uploaded under.
Each app registers such fields with ``personal_data_mentions_register``; an erasure, inside its
transaction and before the person's own rows are anonymised, finds the rows whose fields
mention one of the people being erased (one regular expression over each column, evaluated by
the database) and replaces every mention with ``[erased]`` (or empties the field, or renames
the stored file, or lets the registering app rewrite a structured value such as a rule).

A person is recognised by their email, their first and last name together (either order),
their phone number and their external id, each as it may be written: any case, with up to
three characters of punctuation or spaces between the letters and digits ("+49 (30) 555-0199",
"Zebulon_Quixotaris.csv", "ZEBULON.QUIXOTARIS@EXAMPLE.ORG"). A first or a last name alone is
not looked for: it names too many other people.
"""

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import PurePosixPath
from typing import Any

from django.core.files import File
from django.db import models
from django.db.models import F, Func, Q, QuerySet, TextField, Value
from django.db.models.functions import Cast, Left

from customers.models import Customer
from customers.phones import phone_parts

REPLACEMENT = "[erased]"
# Between two letters or digits of an identifier as written: punctuation and spaces, a few.
_GAP = "[^0-9a-z]{0,3}"
_MIN_NAME = 4
_MIN_PHONE_DIGITS = 6
_MIN_EXTERNAL_ID = 6


def _alnum(text: str) -> str:
    """The letters and digits of a text, lower-cased (how an identifier is compared)."""
    return "".join(ch for ch in unicodedata.normalize("NFC", text).lower() if ch.isalnum())


def _loose(needle: str, *, alone: bool = False, phone: bool = False) -> str:
    """A pattern for the needle's letters and digits with punctuation allowed between them;
    `alone`: not part of a longer run of letters or digits (ids); `phone`: alone, with the
    international prefix as written ("+49", "0049") taken along; a phone needle written
    "49:301234567" (country code, national number) also matches the national form
    ("030 1234567")."""
    if phone and ":" in needle:
        country, national = needle.split(":", 1)
        code = _GAP.join(re.escape(ch) for ch in country)
        body = _GAP.join(re.escape(ch) for ch in national)
        return f"(?<![0-9a-z+])(?:(?:\\+|00){_GAP}{code}{_GAP}|0{_GAP})?{body}(?![0-9a-z])"
    body = _GAP.join(re.escape(ch) for ch in needle)
    if phone:
        return f"(?<![0-9a-z+])(?:\\+|00)?{body}(?![0-9a-z])"
    if alone:
        return f"(?<![0-9a-z]){body}(?![0-9a-z])"
    return body


@dataclass(frozen=True)
class Mentions:
    """What mentions a group of people in free text, as one case-insensitive pattern."""

    pattern: str

    @classmethod
    def of(cls, customers: Iterable[Customer]) -> "Mentions":
        needles: dict[str, str] = {}  # needle -> "", "alone" or "phone"
        for customer in customers:
            email = _alnum(customer.email or "")
            if email:
                needles[email] = ""
            first, last = _alnum(customer.first_name or ""), _alnum(customer.last_name or "")
            if first and last and len(first + last) >= _MIN_NAME:
                needles[first + last] = ""
                needles[last + first] = ""
            phone = "".join(ch for ch in (customer.phone or "") if ch.isascii() and ch.isdigit())
            if len(phone) >= _MIN_PHONE_DIGITS:
                needles[phone] = "phone"
                national = phone_parts(customer.phone)
                if national is not None and len(national[1]) >= _MIN_PHONE_DIGITS:
                    needles[f"{national[0]}:{national[1]}"] = "phone"
            external_id = _alnum(customer.external_id or "")
            if len(external_id) >= _MIN_EXTERNAL_ID:
                needles.setdefault(external_id, "alone")
        # Longest first: where one identifier holds another, the whole of it is replaced.
        ordered = sorted(needles, key=lambda n: (-len(n.replace(":", "")), n))
        return cls(
            "|".join(
                _loose(n, alone=needles[n] == "alone", phone=needles[n] == "phone") for n in ordered
            )
        )

    def __bool__(self) -> bool:
        return bool(self.pattern)

    @cached_property
    def _compiled(self) -> re.Pattern:
        return re.compile(self.pattern, re.IGNORECASE)

    def q(self, path: str) -> Q:
        """Rows whose text at `path` mentions one of the people (the database decides)."""
        return Q(**{f"{path}__iregex": self.pattern})

    def in_text(self, text: str) -> bool:
        return bool(self.pattern) and self._compiled.search(text) is not None

    def scrub_text(self, text: str) -> str:
        return self._compiled.sub(REPLACEMENT, text) if self.pattern else text

    def scrub_json(self, value):
        """The JSON value with every mention in its texts (keys too) replaced; a number that is
        a phone number or id becomes the replacement text."""
        if isinstance(value, str):
            return self.scrub_text(value)
        if isinstance(value, dict):
            return {self.scrub_text(str(k)): self.scrub_json(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub_json(v) for v in value]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return REPLACEMENT if self.in_text(str(value)) else value
        return value


class RegexpReplace(Func):
    """Every case-insensitive match of `pattern` in the text replaced, by the database."""

    function = "REGEXP_REPLACE"

    def __init__(self, expression, pattern: str, replacement: str, **extra):
        super().__init__(expression, Value(pattern), Value(replacement), Value("gi"), **extra)


Edit = Callable[[QuerySet, Mentions], int]


@dataclass(frozen=True)
class PersonalDataMentions:
    """Fields of a model whose free text may mention a person, and how mentions are removed."""

    model: type[models.Model]
    fields: tuple[str, ...]
    blank: dict[str, Any] = field(default_factory=dict)
    customer_path: str | None = None
    edit: Edit | None = None
    description: str = ""

    @property
    def key(self) -> str:
        return f"{self.model._meta.label_lower}:{','.join(self.fields)}"

    def rows(self, customer_ids: list[int]) -> QuerySet:
        rows = self.model._base_manager.all()
        if self.customer_path is not None:
            rows = rows.filter(**{f"{self.customer_path}__in": customer_ids})
        return rows

    def model_field(self, name: str) -> models.Field:
        return self.model._meta.get_field(name)


def _json_text(name: str) -> Cast:
    return Cast(F(name), output_field=TextField())


def _mentioning(rows: QuerySet, model_field: models.Field, mentions: Mentions) -> QuerySet:
    name = model_field.name
    if isinstance(model_field, models.JSONField):
        return rows.alias(**{f"_{name}_text": _json_text(name)}).filter(mentions.q(f"_{name}_text"))
    return rows.exclude(**{name: ""}).filter(mentions.q(name))


def _file_rename(row: models.Model, field: models.FileField) -> None:
    """Store the file under a name that says nothing about anyone (model, id and suffix)."""
    stored = getattr(row, field.attname)
    old = stored.name
    path = PurePosixPath(old)
    suffix = path.suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", path.suffix or "") else ""
    wanted = str(path.parent / f"{row._meta.model_name}-{row.pk}-{field.name}{suffix}")
    storage = stored.storage
    if storage.exists(old):
        with storage.open(old, "rb") as stream:
            saved = storage.save(wanted, File(stream, name=wanted))
        storage.delete(old)
    else:
        saved = ""
    models.QuerySet.update(type(row)._base_manager.filter(pk=row.pk), **{field.attname: saved})


_NO_BLANK = object()


def _field_scrub(rows: QuerySet, model_field: models.Field, mentions: Mentions, blank: Any) -> int:
    matching = _mentioning(rows, model_field, mentions)
    name = model_field.name
    # models.QuerySet.update, not the model's own: the consent ledger and the audit log refuse
    # updates from the application, and an erasure is the exception the law makes.
    if blank is not _NO_BLANK:
        return models.QuerySet.update(matching, **{name: blank})
    if isinstance(model_field, models.FileField):
        changed = 0
        for row in matching.only("pk", model_field.attname):
            _file_rename(row, model_field)
            changed += 1
        return changed
    if isinstance(model_field, models.JSONField):
        changed = 0
        # Only the rows that mention the people (the database picked them): a handful.
        for pk, value in matching.values_list("pk", name):
            scrubbed = mentions.scrub_json(value)
            if scrubbed != value:
                one = rows.model._base_manager.filter(pk=pk)
                changed += models.QuerySet.update(one, **{name: scrubbed})
        return changed
    replaced = RegexpReplace(F(name), mentions.pattern, REPLACEMENT, output_field=TextField())
    if getattr(model_field, "max_length", None):
        replaced = Left(replaced, model_field.max_length, output_field=TextField())
    return models.QuerySet.update(matching, **{name: replaced})


_mentions: dict[str, PersonalDataMentions] = {}


def personal_data_mentions_register(
    model: type[models.Model],
    *,
    fields: Iterable[str],
    blank: Iterable[str] | dict[str, Any] = (),
    customer_path: str | None = None,
    edit: Edit | None = None,
    description: str = "",
) -> PersonalDataMentions:
    """Register fields whose free text may mention a person (text, JSON or stored file names).

    - ``fields``: each mention in them becomes ``[erased]``; a JSON value is rewritten in its
      texts; a stored file that mentions them in its name is stored under a neutral one.
    - ``blank``: of the fields, those emptied whole when they mention the person (an address
      field, where what is left would mean nothing); a mapping gives the value to put instead
      (a constant or an expression such as ``Concat(Value("segment-"), "pk")`` for a slug).
    - ``customer_path``: look only in the rows of the people erased (their sends, say) instead
      of every row: for large tables where only their own rows can quote them.
    - ``edit(rows, mentions) -> int``: a structured value (a segment rule) is rewritten by the
      app that understands it; ``rows`` are those whose ``fields`` mention the people.

    Registering the same model and fields again replaces the registration.
    """
    fields = tuple(fields)
    blank = dict(blank) if isinstance(blank, dict) else dict.fromkeys(blank, "")
    names = {f.name for f in model._meta.concrete_fields}
    unknown = [name for name in (*fields, *blank) if name not in names]
    if unknown:
        raise ValueError(f"{model._meta.label}: unknown fields {', '.join(unknown)}")
    if not fields:
        raise ValueError("fields: name at least one field")
    if set(blank) - set(fields):
        raise ValueError("blank: only fields that are also in fields")
    wrong = [n for n in fields if not isinstance(model._meta.get_field(n), _TEXT_KINDS)]
    if wrong and edit is None:
        raise ValueError(f"{model._meta.label}: not text, JSON or file: {', '.join(wrong)}")
    entry = PersonalDataMentions(
        model=model,
        fields=fields,
        blank=blank,
        customer_path=customer_path,
        edit=edit,
        description=description,
    )
    _mentions[entry.key] = entry
    return entry


def personal_data_mentions() -> list[PersonalDataMentions]:
    return sorted(_mentions.values(), key=lambda e: e.key)


def mentions_erase(*, customers: list[Customer]) -> int:
    """Remove every mention of these people from the registered free text; returns the rows
    changed. Runs inside the erasure's transaction, before their own rows are anonymised."""
    mentions = Mentions.of(customers)
    if not mentions:
        return 0
    ids = [customer.pk for customer in customers]
    changed = 0
    for entry in personal_data_mentions():
        rows = entry.rows(ids)
        if entry.edit is not None:
            pks: set = set()
            for name in entry.fields:
                matching = _mentioning(rows, entry.model_field(name), mentions)
                pks.update(matching.values_list("pk", flat=True))
            if pks:
                changed += entry.edit(entry.model._base_manager.filter(pk__in=pks), mentions)
            continue
        for name in entry.fields:
            blank = entry.blank.get(name, _NO_BLANK)
            changed += _field_scrub(rows, entry.model_field(name), mentions, blank)
    return changed


_exempt: dict[str, str] = {}
_TEXT_KINDS = (models.CharField, models.TextField, models.JSONField, models.FileField)


def personal_data_mentions_exempt(
    model: type[models.Model], *, fields: Iterable[str] | None = None, reason: str
) -> None:
    """Declare that these text fields (all of the model's, without ``fields``) cannot mention
    a person beyond what the personal-data registry already erases, and why."""
    label = model._meta.label_lower
    names = fields if fields is not None else [f.name for f in model._meta.concrete_fields]
    for name in names:
        _exempt[f"{label}.{name}"] = reason


def personal_data_text_fields_undecided(
    candidates: Iterable[type[models.Model]] | None = None,
) -> list[str]:
    """Text, JSON and file fields ("app.model.field") of which nobody said whether they may
    mention a person: neither registered, nor exempt, nor limited to choices."""
    from django.apps import apps

    all_models = (
        list(candidates) if candidates is not None else apps.get_models(include_auto_created=True)
    )
    registered = {
        f"{entry.model._meta.label_lower}.{name}"
        for entry in _mentions.values()
        for name in entry.fields
    }
    undecided = []
    for model in all_models:
        for model_field in model._meta.concrete_fields:
            name = f"{model._meta.label_lower}.{model_field.name}"
            if not isinstance(model_field, _TEXT_KINDS) or model_field.choices:
                continue
            if name not in registered and name not in _exempt:
                undecided.append(name)
    return sorted(undecided)
