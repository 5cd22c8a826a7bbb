"""The files an import keeps in media storage: the uploaded CSV and the report of failed rows.

Both hold people's names, emails and phones. They are kept only for a short time (the retention
run deletes them `days` after the import finished) and, while they exist, an erasure blanks the
person's rows in them: every cell of a row that names the person by email, phone or external id
(or by first and last name together) becomes empty, so the line numbers the error report quotes
still point at the right lines of the upload. A bulk erasure scrubs the files once for all its
people; an erasure of a few people first scans each file's text for their addresses and ids and
parses (and rewrites) only the files where one occurs.

A queued import is scrubbed before it runs, so it cannot bring the person back. An import running
during an erasure reads the file it opened and writes its error report when it finishes, so it
may quote the person again: when an import finishes it scrubs its own files against the emails
and phones (hashed in the erasure log) of everyone erased since it was uploaded. On PostgreSQL an
advisory lock keeps an erasure's scrub and an import's finish apart, so each sees the other's
result: an erasure waits for a finishing import's report, and an import finishing during an
erasure waits until the erasure is committed and in the log.
"""

import csv
import datetime as dt
import io
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property

from django.core.files import File
from django.db import connection
from django.db.models import Q
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from crm.spreadsheet import spreadsheet_unescape
from customers.contact_hashes import (
    PHONE_NOISE,
    email_hash,
    email_normalise,
    phone_hash,
    phone_normalise,
)
from customers.models import Customer, ImportJob
from customers.phones import phone_national_digits

# The advisory lock an erasure's scrub holds shared and a finishing import holds alone ("crm_file").
FILES_LOCK = 0x63726D5F66696C65
# An import scrubs itself against erasures logged since it was uploaded, less this margin: the
# erasure stamps its log row before it commits, and the web and worker clocks may differ.
ERASURE_OVERLAP = dt.timedelta(hours=1)
# Up to this many needles a file's text is scanned before any parsing; more are parsed at once.
SCAN_NEEDLES_MAX = 16
_SCAN_CHUNK = 1 << 20


def import_files_lock(*, shared: bool) -> None:
    """Hold the stored-files lock until the transaction ends: an erasure (exclusive) and a
    finishing import (shared) that overlap take turns instead of missing each other's work."""
    function = "pg_advisory_xact_lock_shared" if shared else "pg_advisory_xact_lock"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {function}(%s)", [FILES_LOCK])


@dataclass(frozen=True)
class PersonKeys:
    """What identifies the people being erased in a row of a CSV file."""

    emails: frozenset[str]
    phones: frozenset[str]
    external_ids: frozenset[str]
    names: frozenset[frozenset[str]]  # each one's lower-cased first and last name; a row holds both

    @classmethod
    def of(cls, customers: Iterable[Customer]) -> "PersonKeys":
        emails, phones, external_ids, names = set(), set(), set(), set()
        for customer in customers:
            email = email_normalise(customer.email or "")
            phone = phone_normalise(customer.phone or "")
            name = {n.strip().lower() for n in (customer.first_name, customer.last_name)}
            emails.update({email} if email else ())
            phones.update({phone} if phone else ())
            external_ids.update({customer.external_id} if customer.external_id else ())
            if len(name) == 2 and "" not in name:
                names.add(frozenset(name))
        return cls(frozenset(emails), frozenset(phones), frozenset(external_ids), frozenset(names))

    def __bool__(self) -> bool:
        return bool(self.emails or self.phones or self.external_ids or self.names)

    @cached_property
    def _email_parts(self) -> tuple[frozenset[str], tuple[int, ...], tuple[int, ...], tuple]:
        """The parts before the first @, their lengths, the lengths after it; emails without @."""
        with_at = [e for e in self.emails if "@" in e]
        locals_ = frozenset(e.split("@", 1)[0] for e in with_at)
        rests = {len(e.split("@", 1)[1]) for e in with_at}
        without = tuple(e for e in self.emails if "@" not in e)
        return locals_, tuple(sorted({len(x) for x in locals_})), tuple(sorted(rests)), without

    @cached_property
    def _names_by_part(self) -> dict[str, list[frozenset[str]]]:
        by_part: dict[str, list[frozenset[str]]] = {}
        for pair in self.names:
            for part in pair:
                by_part.setdefault(part, []).append(pair)
        return by_part

    def _email_in(self, text: str) -> bool:
        """Whether one of the emails occurs in `text`, also inside a longer text.

        An occurrence puts the email's first @ on an @ of the text: only the slices around the
        text's @ signs are looked up, whatever the number of emails.
        """
        locals_, local_lengths, rest_lengths, without = self._email_parts
        at = text.find("@")
        while at != -1:
            for n in local_lengths:
                if n <= at and text[at - n : at] in locals_:
                    for m in rest_lengths:
                        if text[at - n : at + 1 + m] in self.emails:
                            return True
            at = text.find("@", at + 1)
        return any(e in text for e in without)

    def match(self, cells: list[str]) -> bool:
        values = [c.strip() for c in cells if c and c.strip()]
        lowered = [v.lower() for v in values]
        if self.emails and any(self._email_in(v) for v in lowered):
            return True
        if self.external_ids.intersection(values):
            return True
        if self.phones and self.phones.intersection(phone_normalise(v) for v in values):
            return True
        if self.names:
            present = set(lowered)
            by_part = self._names_by_part
            return any(pair <= present for v in present for pair in by_part.get(v, ()))
        return False

    @cached_property
    def _needles(self) -> tuple[frozenset[str], frozenset[str], frozenset[str]] | None:
        """What a file's text must contain for a row to match: (in the text as it is, in the
        lower-cased text, in the lower-cased text without phone punctuation); None when a text
        scan could miss a match (a needle with a quote, which CSV doubles, or beyond ASCII,
        where lower-casing a whole text and a cell may differ), or when there are too many."""
        plain = self.external_ids
        lowered = self.emails | {part for pair in self.names for part in pair}
        # A number's national digits occur in every way of writing it, 030 1234567 and +49 30 ...
        phones = frozenset(phone_national_digits(p) for p in self.phones)
        every = plain | lowered | phones
        if len(every) > SCAN_NEEDLES_MAX or any('"' in n or not n.isascii() for n in every):
            return None
        return plain, lowered, phones

    def maybe_in(self, field: FieldFile) -> bool:
        """Whether a stored file may hold a row that matches; False only when its text holds
        none of the needles (the file is read, but not parsed nor rewritten)."""
        if self._needles is None:
            return True
        if not field or not field.storage.exists(field.name):
            return False
        plain, lowered, phones = self._needles
        longest = max(len(n) for n in (*plain, *lowered, *phones))
        found: set[str] = set()
        tails = ["", "", ""]
        with field.storage.open(field.name, "rb") as stream:
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
            while chunk := text.read(_SCAN_CHUNK):
                # Lower-casing and removing punctuation work character by character, so a chunk
                # transformed alone continues the transformed text before it.
                low = chunk.lower()
                digits = low
                for char in PHONE_NOISE:
                    digits = digits.replace(char, "")
                for i, (part, needles) in enumerate(
                    ((chunk, plain), (low, lowered), (digits, phones))
                ):
                    window = tails[i] + part
                    found.update([n for n in needles if n not in found and n in window])
                    tails[i] = window[-(longest - 1) :] if longest > 1 else ""
        if found & (plain | phones | self.emails):
            return True
        return any(pair <= found for pair in self.names)


# An email inside a longer cell, as a word: "mailto:", quotes and brackets cut off.
_EMAIL_WORD_CUTS = re.compile(r"[<>()\[\],;:\"]")


@dataclass(frozen=True)
class ErasedAddresses:
    """The hashed emails and phones of people already erased (the erasure log keeps no more)."""

    email_hashes: frozenset[str]
    phone_hashes: frozenset[str]

    def __bool__(self) -> bool:
        return bool(self.email_hashes or self.phone_hashes)

    def _email_in(self, value: str) -> bool:
        if email_hash(value) in self.email_hashes:
            return True
        # A hash only matches a whole address: the words of the text that hold an @.
        for word in value.split():
            for piece in _EMAIL_WORD_CUTS.split(word):
                piece = piece.strip(".'")
                if "@" in piece and email_hash(piece) in self.email_hashes:
                    return True
        return False

    def match(self, cells: list[str]) -> bool:
        for cell in cells:
            value = cell.strip()
            if not value:
                continue
            if self.phone_hashes and phone_hash(value) in self.phone_hashes:
                return True
            if self.email_hashes and "@" in value and self._email_in(value):
                return True
        return False


ErasuresSource = Callable[[dt.datetime], ErasedAddresses]
_erasures_sources: list[ErasuresSource] = []


def erasures_source_register(source: ErasuresSource) -> None:
    """Let the app that logs erasures (privacy, above this one) say who was erased since a time."""
    if source not in _erasures_sources:
        _erasures_sources.append(source)


def _erased_since(since: dt.datetime) -> ErasedAddresses:
    emails: set[str] = set()
    phones: set[str] = set()
    for source in _erasures_sources:
        erased = source(since)
        emails |= erased.email_hashes
        phones |= erased.phone_hashes
    return ErasedAddresses(frozenset(emails), frozenset(phones))


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
            # Lines end at LF alone, as the import counts them (CsvSource).
            text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="\n")
            writer_text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
            row_lines: list[str] = []

            def lines() -> Iterator[str]:
                for text_line in text:
                    row_lines.append(text_line)
                    yield text_line

            reader = csv.reader(lines())
            writer = csv.writer(writer_text, lineterminator="\n")
            line = 1
            while True:
                row_lines.clear()
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error:
                    # A row the csv module cannot read (a cell over its size limit, a stray
                    # CR), as the import reported it: matched on its text, kept as it was or
                    # blanked line for line.
                    raw = "".join(row_lines)
                    if blank(line, [raw, *(c.strip('"') for c in re.split(r"[,\r\n]", raw))]):
                        blanked.add(line)
                        raw = "" if drop else "\n" * len(row_lines)
                    writer_text.write(raw)
                    line = reader.line_num + 1
                    continue
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
        setattr(field.instance, field.field.attname, saved)
    return blanked


def _job_scrub(
    job: ImportJob, match: Callable[[list[str]], bool], *, quoting_blank: bool = False
) -> int:
    """Blank the matching rows of a job's upload and drop from its report the rows about them
    (with `quoting_blank`, also those about rows of the upload that are blank already); returns
    the files changed."""
    blank: set[int] = set()

    def upload_row(line: int, cells: list[str]) -> bool:
        if line == 1:
            return False
        if quoting_blank and not any(c.strip() for c in cells):
            blank.add(line)
            return False
        return match(cells)

    lines = _rewrite(job.file, upload_row)
    quoted_lines = lines | blank

    def in_report(line: int, cells: list[str]) -> bool:
        # A report row quotes the upload's line, the column, the bad value and the reason (as
        # text a spreadsheet does not run: "+49 30 ..." is written "'+49 30 ...").
        if line == 1:
            return False
        quoted = bool(cells) and cells[0].isdigit() and int(cells[0]) in quoted_lines
        return quoted or match([spreadsheet_unescape(cell) for cell in cells])

    # The person's rows leave the report (nobody needs a blank line in a list of failures).
    report_lines = _rewrite(job.error_report, in_report, drop=True)
    return bool(lines) + bool(report_lines)


def import_files_scrub(*, customers: Iterable[Customer]) -> int:
    """Blank these people's rows in every stored upload and error report, reading each file at
    most once whatever their number; returns the files changed. Runs inside the erasure's
    transaction."""
    keys = PersonKeys.of(customers)
    if not keys:
        return 0
    import_files_lock(shared=True)
    changed = 0
    jobs = ImportJob.objects.exclude(file="", error_report="").order_by("pk")
    for job in jobs.iterator():
        upload, report = job.file, job.error_report
        if not keys.maybe_in(upload) and not keys.maybe_in(report):
            continue
        changed += _job_scrub(job, keys.match)
    return changed


def import_files_scrub_erased(*, job: ImportJob) -> int:
    """Scrub a finishing import's own files of everyone erased since it was uploaded.

    An erasure during the import blanked the person's rows in the stored upload, but the import
    read them from the file it had open: report rows that quote a blank line of the upload leave
    too. Runs in the transaction that finishes the job, after import_files_lock(shared=False).
    """
    erased = _erased_since(job.created_at - ERASURE_OVERLAP)
    if not erased:
        return 0
    return _job_scrub(job, erased.match, quoting_blank=True)


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
