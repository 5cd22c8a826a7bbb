"""The personal-data registry: every model that holds data about a customer, and how to export and
erase it. Data-subject exports, erasures, the records-of-processing page and the completeness check
are all generated from it, so a table that is not registered is a table the law is not applied to.

Apps above privacy (segments, campaigns) register their models from their own
``AppConfig.ready()``; privacy never imports them::

    from privacy.registry import personal_data_register

    class SegmentsConfig(AppConfig):
        name = "segments"

        def ready(self):
            from segments.models import Membership, MembershipChange

            personal_data_register(
                Membership,
                customer_path="customer",          # ORM path from the model to Customer
                erase="delete",                    # "delete", "anonymise", "keep", or a callable
                category="Segment membership",
                purpose="Marketing segmentation",
                retention="While the segment exists",
            )

Arguments of ``personal_data_register(model, *, ...)``:

- ``customer_path``: the ORM lookup from the model to the Customer (``"customer"``,
  ``"send__customer"``); ``""`` for Customer itself.
- ``export_fields``: the fields that go into a data export (default: every concrete field).
- ``erase``: ``"delete"`` deletes the person's rows; ``"anonymise"`` overwrites the fields in
  ``anonymise`` in one UPDATE; ``"keep"`` keeps them (say why in ``retention``); a callable
  ``erase(queryset) -> None`` does anything else (for example delete pending sends but anonymise
  delivered ones). Everything runs inside the erasure's transaction.
- ``anonymise``: ``{field: value}``; a value may be a constant, a query expression (``F``,
  ``Concat``...) or a callable without arguments returning either.
- ``erase_filter``: a ``Q`` limiting which of the person's rows are erased (others are kept).
- ``category``, ``purpose``, ``retention``, ``description``: plain words for the GDPR Art. 30
  records-of-processing page.

Files kept outside the database (media storage) that may hold personal data register how an
erasure scrubs them: ``personal_data_files_register("imports", scrub=fn, where=..., ...)`` where
``scrub(customer)`` is called inside the erasure's transaction, before any row is anonymised,
with the Customer as it still is, and removes every trace of the person from those files.
``scrub_many(customers)``, when given, does the same for many people in one pass over the files:
bulk erasures (the retention run, re-applying erasures) call it once per batch instead of
``scrub`` once per person, which reads every file again for each one.
``covers`` names the model file fields (``"customers.importjob.file"``) the scrub looks after,
so the completeness check can tell that no stored file is forgotten.

Bulk consent changes may target an audience that a higher app provides (for example a segment):
``audience_provider_register("segment", label="Segment", customers=fn, choices=fn)`` where
``customers(audience_id)`` returns a queryset of customer ids and ``choices()`` a list of
``(id, label)``.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import models
from django.db.models import Q, QuerySet

from customers.models import Customer

ERASE_MODES = ("delete", "anonymise", "keep")


@dataclass(frozen=True)
class PersonalData:
    """How one model's personal data is found, exported and erased."""

    model: type[models.Model]
    customer_path: str
    export_fields: tuple[str, ...]
    erase: str | Callable[[QuerySet], None]
    anonymise: dict[str, Any] = field(default_factory=dict)
    erase_filter: Q | None = None
    category: str = ""
    purpose: str = ""
    retention: str = ""
    description: str = ""

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @property
    def table(self) -> str:
        return self.model._meta.db_table

    def rows_for(self, customer_id: int) -> QuerySet:
        """The model's rows about one customer."""
        manager = self.model._base_manager
        if not self.customer_path:
            return manager.filter(pk=customer_id)
        return manager.filter(**{self.customer_path: customer_id}).distinct()

    def erase_mode_display(self) -> str:
        if callable(self.erase):
            return "custom"
        return self.erase


@dataclass(frozen=True)
class PersonalDataFiles:
    """Files in media storage that hold personal data, and how an erasure scrubs them."""

    key: str
    scrub: Callable[[Customer], int]
    where: str
    covers: tuple[str, ...]
    category: str = ""
    purpose: str = ""
    retention: str = ""
    description: str = ""
    scrub_many: Callable[[list[Customer]], int] | None = None

    def scrub_all(self, customers: list[Customer]) -> int:
        """Scrub the files of these people: in one pass when the registration can."""
        if self.scrub_many is not None:
            return self.scrub_many(customers)
        return sum(self.scrub(customer) for customer in customers)


@dataclass(frozen=True)
class AudienceProvider:
    key: str
    label: str
    customers: Callable[[int], QuerySet]
    choices: Callable[[], list[tuple[int, str]]]


_registry: dict[str, PersonalData] = {}
_exempt: dict[str, str] = {}
_audiences: dict[str, AudienceProvider] = {}
_files: dict[str, PersonalDataFiles] = {}


def personal_data_register(
    model: type[models.Model],
    *,
    customer_path: str = "customer",
    export_fields: Iterable[str] | None = None,
    erase: str | Callable[[QuerySet], None] = "delete",
    anonymise: dict[str, Any] | None = None,
    erase_filter: Q | None = None,
    category: str = "",
    purpose: str = "",
    retention: str = "",
    description: str = "",
) -> PersonalData:
    """Register a model that holds personal data; registering the same model again replaces it."""
    if not callable(erase) and erase not in ERASE_MODES:
        raise ValueError(
            f"erase: expected one of {', '.join(ERASE_MODES)} or a callable, got {erase!r}"
        )
    if erase == "anonymise" and not anonymise:
        raise ValueError("anonymise: required when erase='anonymise'")
    concrete = model._meta.concrete_fields
    known = {f.attname for f in concrete} | {f.name for f in concrete}
    fields = (
        tuple(export_fields) if export_fields is not None else tuple(f.attname for f in concrete)
    )
    unknown = [name for name in [*fields, *(anonymise or {})] if name not in known]
    if unknown:
        raise ValueError(f"{model._meta.label}: unknown fields {', '.join(unknown)}")
    entry = PersonalData(
        model=model,
        customer_path=customer_path,
        export_fields=fields,
        erase=erase,
        anonymise=dict(anonymise or {}),
        erase_filter=erase_filter,
        category=category or model._meta.verbose_name.capitalize(),
        purpose=purpose,
        retention=retention,
        description=description,
    )
    _registry[entry.label] = entry
    return entry


def personal_data_unregister(model: type[models.Model]) -> None:
    _registry.pop(model._meta.label_lower, None)


def personal_data_exempt(model: type[models.Model], *, reason: str) -> None:
    """Declare that a model linked to customers holds no personal data (and why)."""
    _exempt[model._meta.label_lower] = reason


def personal_data_models() -> list[PersonalData]:
    """Every registration, Customer last (erasure anonymises it after everything that points at it)."""
    return sorted(_registry.values(), key=lambda e: (e.model is Customer, e.label))


def personal_data_for(model: type[models.Model]) -> PersonalData | None:
    return _registry.get(model._meta.label_lower)


def models_linked_to_customer(candidates: Iterable[type[models.Model]] | None = None) -> set[str]:
    """Labels of the models with a foreign key path (direct or through other models) to Customer."""
    all_models = (
        list(candidates) if candidates is not None else apps.get_models(include_auto_created=True)
    )
    linked = {Customer._meta.label_lower}
    changed = True
    while changed:
        changed = False
        for model in all_models:
            label = model._meta.label_lower
            if label in linked:
                continue
            for f in model._meta.concrete_fields:
                related = getattr(f, "related_model", None)
                if f.is_relation and related is not None and related._meta.label_lower in linked:
                    linked.add(label)
                    changed = True
                    break
    return linked


def personal_data_unregistered(candidates: Iterable[type[models.Model]] | None = None) -> list[str]:
    """Models linked to Customer that are neither registered nor declared exempt."""
    linked = models_linked_to_customer(candidates)
    return sorted(label for label in linked if label not in _registry and label not in _exempt)


def personal_data_files_register(
    key: str,
    *,
    scrub: Callable[[Customer], int],
    where: str,
    covers: Iterable[str] = (),
    category: str = "",
    purpose: str = "",
    retention: str = "",
    description: str = "",
    scrub_many: Callable[[list[Customer]], int] | None = None,
) -> PersonalDataFiles:
    """Register stored files holding personal data; registering the same key again replaces it."""
    entry = PersonalDataFiles(
        key=key,
        scrub=scrub,
        where=where,
        covers=tuple(covers),
        category=category,
        purpose=purpose,
        retention=retention,
        description=description,
        scrub_many=scrub_many,
    )
    _files[key] = entry
    return entry


def personal_data_files() -> list[PersonalDataFiles]:
    return sorted(_files.values(), key=lambda e: e.key)


def personal_data_file_fields_uncovered(
    candidates: Iterable[type[models.Model]] | None = None,
) -> list[str]:
    """File fields ("app.model.field") that no erasure looks after: neither covered by a files
    registration nor on a model whose registered eraser is a callable (which deletes the files
    with the rows: a plain "delete" leaves the files in storage). Exempt models are skipped.
    """
    all_models = (
        list(candidates) if candidates is not None else apps.get_models(include_auto_created=True)
    )
    covered = {name for entry in _files.values() for name in entry.covers}
    uncovered = []
    for model in all_models:
        label = model._meta.label_lower
        entry = _registry.get(label)
        if label in _exempt or (entry is not None and callable(entry.erase)):
            continue
        for f in model._meta.concrete_fields:
            if isinstance(f, models.FileField) and f"{label}.{f.name}" not in covered:
                uncovered.append(f"{label}.{f.name}")
    return sorted(uncovered)


def audience_provider_register(
    key: str,
    *,
    label: str,
    customers: Callable[[int], QuerySet],
    choices: Callable[[], list[tuple[int, str]]],
) -> None:
    """Let a higher app offer a set of customers (e.g. a segment) to bulk consent changes."""
    _audiences[key] = AudienceProvider(key=key, label=label, customers=customers, choices=choices)


def audience_providers() -> dict[str, AudienceProvider]:
    return dict(_audiences)


# Names of the records the audit log refers to by kind and id ("segment" 16 -> "VIP customers"),
# registered by the app that holds them: the log shows names, not numbers, where a record exists.
_record_names: dict[str, Callable[[set[int]], dict[int, str]]] = {}


def record_names_register(kind: str, names: Callable[[set[int]], dict[int, str]]) -> None:
    """Let an app name its records of `kind` for the audit log (one statement per call)."""
    _record_names[kind] = names


def record_names(refs: dict[str, set[int]]) -> dict[str, dict[int, str]]:
    """The names of the referenced records, by kind; kinds nobody names are left out."""
    return {
        kind: _record_names[kind](ids)
        for kind, ids in refs.items()
        if ids and kind in _record_names
    }
