"""Reading an import file: streaming CSV rows with their line numbers, column maps, error logs.

Nothing here touches the database; the importers build on it.
"""

import csv
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO


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
            self._writer.writerow([error.line, error.column, error.value[:200], error.reason])
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
            raise ImportFileError(
                f"the header needs a column {wanted} (or a --map for it); found: "
                + ", ".join(self.header)
            )


class CsvSource:
    """A UTF-8 CSV file (with or without BOM) read as a stream, counting bytes and lines.

    Memory stays constant: one physical line at a time is decoded and handed to the csv module.
    """

    def __init__(self, stream: BinaryIO):
        self._stream = stream
        self.bytes_read = 0
        self._physical_line = 0
        self._bad_lines: set[int] = set()
        self._reader = csv.reader(self._lines())
        try:
            header = next(self._reader)
        except StopIteration:
            raise ImportFileError("the file is empty: expected a header row") from None
        except csv.Error as exc:
            raise ImportFileError(f"line 1: the header is not valid CSV ({exc})") from None
        if self._bad_lines:
            raise ImportFileError("line 1: the header is not valid UTF-8")
        self.header = [name.strip() for name in header]
        if not any(self.header):
            raise ImportFileError("line 1: the header row is empty")
        seen: set[str] = set()
        for name in self.header:
            if name and name in seen:
                raise ImportFileError(f"line 1: the column '{name}' appears twice in the header")
            seen.add(name)

    def _lines(self) -> Iterator[str]:
        first = True
        for raw in self._stream:
            self.bytes_read += len(raw)
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

    def rows(self) -> Iterator[tuple[int, list[str] | None]]:
        """(line where the row starts, its fields); fields are None when the line is not UTF-8."""
        reader = self._reader
        previous_end = reader.line_num
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise ImportFileError(f"line {reader.line_num}: not valid CSV ({exc})") from None
            start, previous_end = previous_end + 1, reader.line_num
            if not fields or fields == [""]:
                continue
            if self._bad_lines:
                bad = {n for n in self._bad_lines if start <= n <= previous_end}
                self._bad_lines -= {n for n in self._bad_lines if n <= previous_end}
                if bad:
                    yield start, None
                    continue
            yield start, fields
