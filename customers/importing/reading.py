"""Reading an import file: streaming CSV rows with their line numbers, column maps, error logs.

Nothing here touches the database; the importers build on it.
"""

import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from crm.spreadsheet import spreadsheet_safe
from customers.importing.values import shown


class ImportFileError(ValueError):
    """The file as a whole cannot be imported (no header, a mapped column is missing, ...)."""


@dataclass(frozen=True)
class RowError:
    """One bad row: where it is and why it was not imported."""

    line: int
    column: str
    reason: str
    value: str = ""

    def __str__(self) -> str:
        where = f"line {self.line}" + (f", column {self.column}" if self.column else "")
        return f"{where}: {self.reason}"


@dataclass
class ImportResult:
    """The counts an import reports; read = created + updated + unchanged + failed."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    customers_created: int = 0
    errors: list[RowError] = field(default_factory=list)  # the first ones, for display
    # Purchases without an order number that repeat an earlier line of the file exactly: each is
    # a purchase of its own (docs/import.md), which the import points out.
    identical_lines: int = 0
    identical_examples: list[int] = field(default_factory=list)  # their first line numbers

    def notices(self) -> list[str]:
        """What the import points out without refusing anything."""
        if not self.identical_lines:
            return []
        lines = ", ".join(str(n) for n in self.identical_examples)
        more = " and more" if self.identical_lines > len(self.identical_examples) else ""
        return [
            f"{self.identical_lines} purchase lines without an order number repeat an earlier "
            f"line of the same customer exactly (line {lines}{more}): each was imported as a "
            "purchase of its own. Import with strict duplicates to refuse them instead."
        ]

    def counts(self) -> dict[str, int]:
        return {
            "read": self.read,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
        }


@dataclass(frozen=True)
class ImportProgress:
    bytes_done: int
    bytes_total: int
    result: ImportResult


ProgressCallback = Callable[[ImportProgress], None]
ErrorCallback = Callable[[RowError], None]

REPORT_HEADER = ["line", "column", "value", "reason"]


class ErrorLog:
    """Collects row errors: every one goes to the report file, the first few stay in memory."""

    def __init__(
        self,
        *,
        report: TextIO | None = None,
        keep: int = 200,
        on_error: ErrorCallback | None = None,
    ):
        self.count = 0
        self.first: list[RowError] = []
        self._keep = keep
        self._on_error = on_error
        self._writer = csv.writer(report) if report is not None else None
        if self._writer is not None:
            self._writer.writerow(REPORT_HEADER)

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.first) < self._keep:
            self.first.append(error)
        if self._writer is not None:
            cells = [error.line, error.column, error.value[:200], error.reason]
            self._writer.writerow([spreadsheet_safe(cell) for cell in cells])
        if self._on_error is not None:
            self._on_error(error)


def column_map_parse(pairs: list[str] | str | None) -> dict[str, str]:
    """Turn `FIELD=COLUMN` pairs (a list, or text with one pair per line) into {field: column}."""
    if not pairs:
        return {}
    if isinstance(pairs, str):
        pairs = [p for p in pairs.replace(",", "\n").splitlines() if p.strip()]
    mapping: dict[str, str] = {}
    for pair in pairs:
        field_name, sep, column = pair.partition("=")
        field_name, column = field_name.strip(), column.strip()
        if not sep or not field_name or not column:
            raise ImportFileError(f"column map '{pair}' must look like FIELD=COLUMN")
        if field_name in mapping:
            raise ImportFileError(f"column map names the field '{field_name}' twice")
        mapping[field_name] = column
    return mapping


class Columns:
    """Where each field sits in a row, from the header and the column map."""

    def __init__(
        self,
        *,
        header: list[str],
        fields: tuple[str, ...],
        column_map: Mapping[str, str],
        allow_attributes: bool = False,
    ):
        self.header = header
        position = {name: i for i, name in enumerate(header)}
        for field_name in column_map:
            if field_name not in fields and not (
                allow_attributes and field_name.startswith("attr.") and len(field_name) > 5
            ):
                raise ImportFileError(
                    f"column map names an unknown field '{field_name}'; known fields: "
                    + ", ".join(fields)
                    + (", attr.<key>" if allow_attributes else "")
                )
        self.index: dict[str, int] = {}
        self.column: dict[str, str] = {}
        for field_name in fields:
            column = column_map.get(field_name, field_name)
            if column in position:
                self.index[field_name] = position[column]
                self.column[field_name] = column
            elif field_name in column_map:
                raise ImportFileError(
                    f"column '{column}' (mapped to the field '{field_name}') is not in the header"
                )
        # Custom attributes: every attr.<key> column, plus the mapped ones.
        self.attributes: dict[str, int] = {}
        if allow_attributes:
            mapped_columns = {c for f, c in column_map.items() if not f.startswith("attr.")}
            for name, i in position.items():
                if name.startswith("attr.") and len(name) > 5 and name not in mapped_columns:
                    self.attributes[name[5:]] = i
                    self.column[name] = name
            for field_name, column in column_map.items():
                if field_name.startswith("attr."):
                    if column not in position:
                        raise ImportFileError(
                            f"column '{column}' (mapped to the field '{field_name}') is not in the header"
                        )
                    self.attributes[field_name[5:]] = position[column]
                    self.column[field_name] = column

    def has(self, field_name: str) -> bool:
        return field_name in self.index

    def require_one_of(self, *field_names: str) -> None:
        if not any(self.has(f) for f in field_names):
            wanted = " or ".join(f"'{f}'" for f in field_names)
            found = ", ".join(shown(name, 40) for name in self.header[:20])
            more = len(self.header) - 20
            raise ImportFileError(
                f"the header needs a column {wanted} (or a --map for it); found: {found}"
                + (f" and {more} more" if more > 0 else "")
            )


# What a file that is not CSV text starts with, and what to tell whoever uploaded it.
_NOT_TEXT = (
    (b"\xff\xfe", "the file is UTF-16 text, not UTF-8"),
    (b"\xfe\xff", "the file is UTF-16 text, not UTF-8"),
    (b"PK\x03\x04", "the file is an Excel workbook (.xlsx) or another ZIP archive, not CSV text"),
    (b"\xd0\xcf\x11\xe0", "the file is an Excel 97-2003 workbook (.xls), not CSV text"),
    (b"%PDF", "the file is a PDF document, not CSV text"),
    (b"\x89PNG", "the file is a PNG image, not CSV text"),
    (b"\xff\xd8\xff", "the file is a JPEG image, not CSV text"),
    (b"\x1f\x8b", "the file is gzip-compressed, not CSV text"),
)
SAVE_AS_CSV = 'save it as "CSV UTF-8" and upload that'


def file_not_text(start: bytes) -> str | None:
    """Why a file whose first bytes are `start` is not CSV text, or None when it may be."""
    for magic, reason in _NOT_TEXT:
        if start.startswith(magic):
            return f"{reason}: {SAVE_AS_CSV}"
    if b"\x00" in start:
        return f"the file holds NUL bytes, as binary files do, not CSV text: {SAVE_AS_CSV}"
    return None


def row_nul_error(line: int, fields: list[str], columns: "Columns") -> RowError | None:
    """The first cell the import would keep that holds a NUL character (PostgreSQL stores none)."""
    attributes = ((f"attr.{key}", i) for key, i in columns.attributes.items())
    for name, i in (*columns.index.items(), *attributes):
        if "\x00" in fields[i]:
            return RowError(
                line,
                columns.column.get(name, name),
                "the cell holds a NUL character (\\x00), which cannot be stored: "
                "remove it, or check that the file is CSV text",
                fields[i].replace("\x00", "\\x00"),
            )
    return None


_LONE_CR = (
    "line 1: a carriage return (CR) outside quotes; lines that end in CR alone (old Mac files) "
    "cannot be read: save the file with Windows (CRLF) or Unix (LF) line endings"
)
_QUOTE_OPEN = (
    'a quoted cell is not closed: its opening quote (") takes in the rest of the file; '
    "close it or remove it"
)


# Longer lines are not read whole (see CsvSource._physical_lines); far beyond any cell.
MAX_LINE_BYTES = 4 * 1024 * 1024


def csv_problem(exc: csv.Error) -> str:
    """What a csv.Error means, in words for whoever made the file."""
    text = str(exc)
    if "field larger than field limit" in text:
        return f"a cell is longer than {csv.field_size_limit():,} characters"
    if "new-line character seen in unquoted field" in text:
        return "a carriage return (CR) inside a cell that is not quoted"
    return text


class CsvSource:
    """A UTF-8 CSV file (with or without BOM) read as a stream, counting bytes and lines.

    Memory stays constant: one physical line at a time is decoded and handed to the csv module.
    A row the csv module cannot read (a cell over its size limit, a stray carriage return) is
    reported as a bad row and reading goes on with the next line.
    """

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.bytes_read = 0
        self._physical_line = 0
        self._bad_lines: set[int] = set()
        self._start = b""
        self._ended = False
        self._reader = csv.reader(self._lines())
        try:
            header = next(self._reader)
        except StopIteration:
            raise ImportFileError("the file is empty: expected a header row") from None
        except csv.Error as exc:
            lone_cr = "new-line character" in str(exc) and self._physical_line == 1
            raise ImportFileError(
                self._not_text()
                or (_LONE_CR if lone_cr else None)
                or f"line 1: the header is not valid CSV ({csv_problem(exc)})"
            ) from None
        not_text = self._not_text(header)
        if not_text:
            raise ImportFileError(not_text)
        if self._bad_lines:
            raise ImportFileError(
                "line 1: the header is not valid UTF-8 (Latin-1 or Windows-1252 text?): "
                + SAVE_AS_CSV
            )
        if self._ended:
            raise ImportFileError(f"line 1: {_QUOTE_OPEN}")
        self.header = [name.strip() for name in header]
        if not any(self.header):
            raise ImportFileError("line 1: the header row is empty")
        seen: set[str] = set()
        for name in self.header:
            if name and name in seen:
                raise ImportFileError(
                    f"line 1: the column '{shown(name)}' appears twice in the header"
                )
            seen.add(name)

    def _not_text(self, header: list[str] | None = None) -> str | None:
        problem = file_not_text(self._start)
        if problem is None and header is not None and any("\x00" in name for name in header):
            problem = f"the header holds NUL bytes, as binary files do: {SAVE_AS_CSV}"
        return f"line 1: {problem}" if problem else None

    def _physical_lines(self) -> Iterator[bytes]:
        """The file's lines, counting their bytes, each cut at MAX_LINE_BYTES: the rest of a
        longer line is read and dropped, and what is kept then holds a cell longer than the csv
        module reads, so the line is reported as a bad row (a file without line breaks never
        fills the memory)."""
        while raw := self._stream.readline(MAX_LINE_BYTES):
            self.bytes_read += len(raw)
            if not self._start:
                self._start = raw[:16]
            if len(raw) == MAX_LINE_BYTES and not raw.endswith(b"\n"):
                while rest := self._stream.readline(MAX_LINE_BYTES):
                    self.bytes_read += len(rest)
                    if rest.endswith(b"\n"):
                        break
                raw = b"x" * (csv.field_size_limit() + 1) + b"\n"
            yield raw

    def _lines(self) -> Iterator[str]:
        first = True
        for raw in self._physical_lines():
            self._physical_line += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", errors="replace")
                self._bad_lines.add(self._physical_line)
            if first:
                text = text.removeprefix("\ufeff")
                first = False
            yield text
        self._ended = True

    def rows(self) -> Iterator[tuple[int, list[str] | RowError | None]]:
        """(line where the row starts, its fields); fields are None when the line is not UTF-8,
        and the row's error when the csv module cannot read it."""
        reader = self._reader
        previous_end = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                # The reader starts afresh on the next line.
                start, previous_end = previous_end + 1, reader.line_num
                self._bad_lines -= {n for n in self._bad_lines if n <= previous_end}
                yield start, RowError(start, "", f"not valid CSV: {csv_problem(exc)}")
                continue
            start, previous_end = previous_end + 1, reader.line_num
            if not fields or fields == [""]:
                continue
            if self._bad_lines:
                bad = {n for n in self._bad_lines if start <= n <= previous_end}
                self._bad_lines -= {n for n in self._bad_lines if n <= previous_end}
                if bad:
                    yield start, None
                    continue
            if self._ended:
                # The csv module waits for the end of the file to finish a row only when a
                # quoted cell is still open: the lines after its opening quote went into it.
                column = self.header[len(fields) - 1] if len(fields) <= len(self.header) else ""
                yield start, RowError(start, column, _QUOTE_OPEN)
                continue
            yield start, fields
