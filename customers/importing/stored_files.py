"""The files an import keeps in media storage: the uploaded CSV and the report of failed rows.

Both hold people's names, emails and phones. They are kept only for a short time (the retention
run deletes them `days` after the import finished) and, while they exist, an erasure blanks the
person's rows in them: every cell of a row that names the person by email, phone or external id
(or by first and last name together) becomes empty, so the line numbers the error report quotes
still point at the right lines of the upload. A queued import is scrubbed before it runs, so it
cannot bring the person back; an import running during the erasure reads the file it opened and
writes its error report afterwards, so such a report may name the person until it expires.
"""

import csv
import datetime as dt
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

from django.core.files import File
from django.db.models import Q
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from customers.contact_hashes import email_normalise, phone_normalise
from customers.models import Customer, ImportJob


@dataclass(frozen=True)
class PersonKeys:
    """What identifies one person in a row of a CSV file."""

    emails: frozenset[str]
    phones: frozenset[str]
    external_ids: frozenset[str]
    names: frozenset[str]  # the lower-cased first and last name; a row must hold both

    @classmethod
    def of(cls, customer: Customer) -> "PersonKeys":
        email = email_normalise(customer.email or "")
        phone = phone_normalise(customer.phone or "")
        names = {n.strip().lower() for n in (customer.first_name, customer.last_name)}
        return cls(
            emails=frozenset({email} if email else ()),
            phones=frozenset({phone} if phone else ()),
            external_ids=frozenset({customer.external_id} if customer.external_id else ()),
            names=frozenset(names) if len(names) == 2 and "" not in names else frozenset(),
        )

    def __bool__(self) -> bool:
        return bool(self.emails or self.phones or self.external_ids or self.names)

    def match(self, cells: list[str]) -> bool:
        values = [c.strip() for c in cells if c and c.strip()]
        lowered = [v.lower() for v in values]
        if any(e in v for v in lowered for e in self.emails):  # also inside a longer text
            return True
        if self.external_ids.intersection(values):
            return True
        if self.phones and self.phones.intersection(phone_normalise(v) for v in values):
            return True
        return bool(self.names) and self.names <= set(lowered)


def _rewrite(
    field: FieldFile, blank: Callable[[int, list[str]], bool], *, drop: bool = False
) -> set[int]:
    """Rewrite a stored CSV with the rows `blank(line, cells)` picks emptied (or, with `drop`,
    left out); returns their lines."""
    if not field or not field.storage.exists(field.name):
        return set()
    blanked: set[int] = set()
    with tempfile.TemporaryFile() as out:
        with field.storage.open(field.name, "rb") as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
            writer_text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
            reader = csv.reader(text)
            writer = csv.writer(writer_text, lineterminator="\n")
            line = 1
            for cells in reader:
                if blank(line, cells):
                    blanked.add(line)
                    cells = None if drop else [""] * len(cells)
                if cells is not None:
                    writer.writerow(cells)
                line = reader.line_num + 1
            writer_text.detach()
        if not blanked:
            return blanked
        out.seek(0)
        name = field.name
        field.storage.delete(name)
        saved = field.storage.save(name, File(out, name=name))
    if saved != name:
        ImportJob.objects.filter(**{field.field.name: name}).update(**{field.field.name: saved})
    return blanked


def import_files_scrub(*, customer: Customer) -> int:
    """Blank the person's rows in every stored upload and error report; returns files changed."""
    keys = PersonKeys.of(customer)
    if not keys:
        return 0
    changed = 0
    jobs = ImportJob.objects.exclude(file="", error_report="").order_by("pk")
    for job in jobs.iterator():
        lines = _rewrite(job.file, lambda line, cells: line > 1 and keys.match(cells))

        def in_report(line: int, cells: list[str], upload_lines: set[int] = lines) -> bool:
            # A report row quotes the upload's line, the column, the bad value and the reason.
            if line == 1:
                return False
            quoted = bool(cells) and cells[0].isdigit() and int(cells[0]) in upload_lines
            return quoted or keys.match(cells)

        # The person's rows leave the report (nobody needs a blank line in a list of failures).
        report_lines = _rewrite(job.error_report, in_report, drop=True)
        changed += bool(lines) + bool(report_lines)
    return changed


def import_files_expire(*, days: int, now: dt.datetime | None = None, dry_run: bool = False) -> int:
    """Delete the uploads and error reports of imports finished more than `days` days ago.

    The job stays, with its counts and message; returns the number of files deleted (or, in a
    dry run, that would be).
    """
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    jobs = (
        ImportJob.objects.filter(
            status__in=(ImportJob.Status.DONE, ImportJob.Status.FAILED), finished_at__lt=cutoff
        )
        .exclude(Q(file="") & Q(error_report=""))
        .order_by("pk")
    )
    deleted = 0
    for job in jobs.iterator():
        for field in (job.file, job.error_report):
            if field:
                deleted += 1
                if not dry_run:
                    field.delete(save=False)
        if not dry_run:
            ImportJob.objects.filter(pk=job.pk).update(file="", error_report="")
    return deleted
