"""Reading one purchase row of a file: the cell checks and their errors, in one place.

Both ways of importing purchases (set-based on PostgreSQL, batched with the ORM elsewhere) parse
every row here, so a bad row gets the same error, with the same column and reason, whichever
runs. Cells are checked in the order of the fields, and the first bad one is reported.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.utils import timezone

from customers.importing.reading import Columns, RowError, row_nul_error, shown
from customers.importing.values import (
    CellError,
    choice_lookup,
    parse_amount,
    parse_currency,
    parse_datetime,
    parse_email,
    parse_quantity,
)
from customers.models import Purchase

# The purchase fields a file may carry, in the order the parser reads and the stage holds them.
PURCHASE_FIELDS = (
    "customer_external_id",
    "customer_email",
    "external_id",
    "purchased_at",
    "amount",
    "currency",
    "quantity",
    "channel",
    "product_sku",
    "category",
    "promotion_code",
)


_CHANNELS = choice_lookup(Purchase.Channel.choices)
_CHANNEL_LIST = ", ".join(Purchase.Channel.values)

# (customer_external_id, customer_email, external_id, purchased_at, amount, currency, quantity,
#  channel, product_sku, category, promotion_code)
PurchaseValues = tuple[str, str, str | None, datetime, Decimal, str, int, str, str, str, str]


class RowRejected(Exception):
    def __init__(self, error: RowError):
        self.error = error


def _too_long(text: str, max_length: int) -> CellError:
    return CellError(f"too long: {len(text)} characters, at most {max_length}")


class PurchaseParser:
    """Turns the fields of a row into typed values, or raises RowRejected with the first error."""

    def __init__(self, columns: Columns, date_format: str | None):
        self.columns = columns
        self.date_format = date_format
        self.tz = timezone.get_current_timezone()
        self.width = len(columns.header)
        index = columns.index
        # Where each field sits; -1 when the file has no such column (the cell is empty).
        (
            self._customer_external_id,
            self._customer_email,
            self._external_id,
            self._purchased_at,
            self._amount,
            self._currency,
            self._quantity,
            self._channel,
            self._product_sku,
            self._category,
            self._promotion_code,
        ) = (index.get(name, -1) for name in PURCHASE_FIELDS)
        self._who = (
            "customer_external_id" if columns.has("customer_external_id") else "customer_email"
        )

    def values(self, line: int, fields: list[str] | RowError | None) -> PurchaseValues:
        if fields is None:
            raise RowRejected(RowError(line, "", "the line is not valid UTF-8"))
        if isinstance(fields, RowError):
            raise RowRejected(fields)
        if len(fields) != self.width:
            raise RowRejected(
                RowError(
                    line, "", f"expected {self.width} fields as in the header, found {len(fields)}"
                )
            )
        nul = row_nul_error(line, fields, self.columns)
        if nul is not None:
            raise RowRejected(nul)
        name = ""
        try:
            name = "customer_external_id"
            i = self._customer_external_id
            customer_external_id = fields[i].strip() if i >= 0 else ""
            if len(customer_external_id) > 100:
                raise _too_long(customer_external_id, 100)
            name = "customer_email"
            i = self._customer_email
            customer_email = fields[i].strip() if i >= 0 else ""
            if customer_email:
                customer_email = parse_email(customer_email)
            elif not customer_external_id:
                name = self._who
                raise CellError("required: which customer made the purchase")
            name = "external_id"
            i = self._external_id
            external_id = fields[i].strip() if i >= 0 else ""
            if len(external_id) > 100:
                raise _too_long(external_id, 100)
            name = "purchased_at"
            text = fields[self._purchased_at].strip()
            if not text:
                raise CellError("required")
            purchased_at = parse_datetime(text, date_format=self.date_format, tz=self.tz)
            if purchased_at.year in (1, 9999):
                try:
                    purchased_at.astimezone(UTC)  # the upsert key and the database hold UTC
                except OverflowError:
                    raise CellError(f"'{shown(text)}' is out of the range of dates") from None
            name = "amount"
            text = fields[self._amount].strip()
            if not text:
                raise CellError("required")
            amount = parse_amount(text)
            name = "currency"
            i = self._currency
            text = fields[i].strip() if i >= 0 else ""
            currency = parse_currency(text) if text else "EUR"
            name = "quantity"
            i = self._quantity
            text = fields[i].strip() if i >= 0 else ""
            quantity = parse_quantity(text) if text else 1
            name = "channel"
            i = self._channel
            text = fields[i].strip() if i >= 0 else ""
            if text:
                channel = _CHANNELS.get(text.lower())
                if channel is None:
                    raise CellError(f"'{shown(text)}' is not a channel: use one of {_CHANNEL_LIST}")
            else:
                channel = Purchase.Channel.ONLINE
            name = "product_sku"
            i = self._product_sku
            product_sku = fields[i].strip() if i >= 0 else ""
            if len(product_sku) > 64:
                raise _too_long(product_sku, 64)
            name = "category"
            i = self._category
            category = fields[i].strip() if i >= 0 else ""
            if len(category) > 100:
                raise _too_long(category, 100)
            name = "promotion_code"
            i = self._promotion_code
            promotion_code = fields[i].strip() if i >= 0 else ""
            if len(promotion_code) > 64:
                raise _too_long(promotion_code, 64)
        except CellError as exc:
            column = self.columns.column.get(name, name)
            i = self.columns.index.get(name)
            value = fields[i] if i is not None else ""
            raise RowRejected(RowError(line, column, str(exc), value)) from None
        return (
            customer_external_id,
            customer_email,
            external_id or None,
            purchased_at,
            amount,
            currency,
            quantity,
            channel,
            product_sku,
            category,
            promotion_code,
        )
