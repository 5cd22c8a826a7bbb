"""Customer features for RFM, clustering and predictions, computed set-based in SQL and loaded
into pandas in bulk (PostgreSQL `COPY ... TO STDOUT`, one statement per feature family).

Every function takes a reference moment and a window: aggregates cover purchases and events in
[reference - window, reference). Times come back as seconds since the epoch, so pandas needs no
date parsing.
"""

import datetime as dt
import io
from collections.abc import Iterable

import numpy as np
import pandas as pd

from crm.db_router import heavy_read_connection
from customers.models import Customer, Event, Purchase

DAY = 86400.0
FEATURE_GROUPS = {
    "rfm": "Recency, frequency and monetary value",
    "tenure": "Tenure (days since the first purchase)",
    "aov": "Average order value",
    "purchase_interval": "Average days between purchases (one-time buyers flagged)",
    "category_share": "Share of spend per category",
    "event_counts": "Event counts by type",
    "age": "Age",
    "attributes": "Numeric custom attributes",
}
MAX_PIVOT_COLUMNS = 12


def _epoch(column: str) -> str:
    return f"extract(epoch from {column})::bigint"


def _literal(value: dt.datetime) -> str:
    """A timestamp literal for statements that cannot take parameters (COPY)."""
    naive = value.astimezone(dt.UTC).replace(tzinfo=None)
    return f"'{naive.isoformat(' ')}+00:00'::timestamptz"


def frame_from_sql(sql: str, columns: list[str]) -> pd.DataFrame:
    """Run a SELECT (parameters already inlined as literals) and load its rows into pandas."""
    with heavy_read_connection().cursor() as cursor:
        buffer = io.BytesIO()
        with cursor.cursor.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for chunk in copy:
                buffer.write(chunk)
    buffer.seek(0)
    if buffer.getbuffer().nbytes == 0:
        return pd.DataFrame(columns=columns)
    return pd.read_csv(buffer, header=None, names=columns, keep_default_na=True)


# The result is packed server-side: one string_agg over each row's values in binary
# form (8 bytes each, big-endian; a timestamptz is microseconds since 2000-01-01 UTC), so a
# million rows cross to Python as one byte string that numpy reads as it is, instead of a
# million rows to step through. A NULL makes its row's bytes NULL, which string_agg skips: the
# row count is sent too, and a shortfall sends the query down the text path. A byte string holds
# at most 1 GB, so past PACK_MAX_CUSTOMERS customers the rows come one by one (binary COPY).
_SQL_TYPES = {"int64": "int8", "float64": "float8", "epoch": "timestamptz"}
_SEND = {"int64": "int8send", "float64": "float8send", "epoch": "timestamptz_send"}
_PG_EPOCH = 946_684_800  # 2000-01-01 in seconds since 1970-01-01
_COPY_SIGNATURE = b"PGCOPY\n\377\r\n\0"
PACK_MAX_CUSTOMERS = 10_000_000


def numeric_frame_from_sql(sql: str, columns: dict[str, str]) -> pd.DataFrame:
    """Like frame_from_sql for a SELECT of numbers and times, a row per customer at most:
    `columns` maps each output column, in the SELECT's order, to "int64", "float64" or "epoch"
    (a timestamp, returned as whole seconds since 1970 in int64).

    The values come packed (see above) and land in numpy arrays without text
    formatting and parsing on either side; a result with NULLs takes the text path.
    """
    names, kinds = list(columns), list(columns.values())
    inner = ", ".join(f"c{i}" for i in range(len(names)))
    values = [f"c{i}::{_SQL_TYPES[kind]}" for i, kind in enumerate(kinds)]
    row_dtype = np.dtype(
        [(f"v{i}", ">f8" if kind == "float64" else ">i8") for i, kind in enumerate(kinds)]
    )
    if _customers_estimate() <= PACK_MAX_CUSTOMERS:
        packed = " || ".join(f"{_SEND[kind]}({v})" for kind, v in zip(kinds, values, strict=True))
        query = f"SELECT count(*), string_agg({packed}, '') FROM ({sql}) AS q({inner})"
        rows = _packed_rows(_copy_binary(query), row_dtype)
    else:
        query = f"SELECT {', '.join(values)} FROM ({sql}) AS q({inner})"
        rows = _binary_rows(_copy_binary(query), row_dtype)
    if rows is None:  # NULLs
        return _typed(frame_from_sql(sql, names), columns)
    data = {}
    for i, (name, kind) in enumerate(columns.items()):
        if kind == "epoch":
            data[name] = rows[f"v{i}"].astype("int64") // 1_000_000 + _PG_EPOCH
        else:
            data[name] = rows[f"v{i}"].astype(kind)
    return pd.DataFrame(data, columns=names)


def _customers_estimate() -> int:
    with heavy_read_connection().cursor() as cursor:
        cursor.execute(
            "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [Customer._meta.db_table]
        )
        found = cursor.fetchone()
    return int(found[0]) if found else 0


def _copy_binary(query: str) -> bytearray:
    buffer = bytearray()
    with heavy_read_connection().cursor() as cursor:
        with cursor.cursor.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT binary)") as copy:
            for chunk in copy:
                buffer += chunk
    if not buffer.startswith(_COPY_SIGNATURE) or buffer[-2:] != b"\xff\xff":
        raise ValueError("binary COPY: unexpected header or trailer")
    return buffer


def _copy_body(raw: bytearray) -> memoryview:
    """The rows of a binary COPY: after the header and its extension, before the trailer."""
    return memoryview(raw)[19 + int.from_bytes(raw[15:19], "big") : len(raw) - 2]


def _packed_rows(raw: bytearray, row_dtype: np.dtype) -> np.ndarray | None:
    """The one row of the packed query (count, bytes) as an array of rows, or None (NULLs)."""
    body = _copy_body(raw)
    count = int.from_bytes(body[6:14], "big")  # field count (2), length (4), count (8)
    length = int.from_bytes(body[14:18], "big", signed=True)
    if length < 0:  # no rows, or only rows with a NULL
        return np.empty(0, row_dtype) if count == 0 else None
    if length != count * row_dtype.itemsize:
        return None
    return np.frombuffer(body[18 : 18 + length], dtype=row_dtype)


def _binary_rows(raw: bytearray, row_dtype: np.dtype) -> np.ndarray | None:
    """The rows of a binary COPY of 8-byte columns as one array, or None when a row does not
    have that shape (a NULL)."""
    fields = len(row_dtype.names)
    framed = np.dtype(
        [("n", ">i2")]
        + [item for i in range(fields) for item in ((f"l{i}", ">i4"), (f"v{i}", row_dtype[i]))]
    )
    body = _copy_body(raw)
    if len(body) % framed.itemsize:
        return None
    rows = np.frombuffer(body, dtype=framed)
    if (rows["n"] != fields).any() or any((rows[f"l{i}"] != 8).any() for i in range(fields)):
        return None
    return rows


def _typed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The text path's frame in the binary path's types; an integer column with NULLs stays
    float (NaN), as pandas has it."""
    data = {}
    for name, kind in columns.items():
        values = frame[name]
        if kind == "epoch":
            moments = pd.to_datetime(values, utc=True, format="ISO8601")
            values = (moments - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
        values = pd.to_numeric(values)
        exact = "float64" if kind == "float64" or values.isna().any() else "int64"
        data[name] = values.astype(exact)
    return pd.DataFrame(data, columns=list(columns))


def _window(reference: dt.datetime, window_days: int, column: str) -> str:
    start = reference - dt.timedelta(days=window_days)
    return f"{column} >= {_literal(start)} AND {column} < {_literal(reference)}"


def purchase_aggregates_sql(*, reference: dt.datetime, window_days: int, first: bool = True) -> str:
    """One GROUP BY customer over purchases in the window: count, total, first (unless `first`
    is False) and last time."""
    table = Purchase._meta.db_table
    first_at = "min(purchased_at), " if first else ""
    return (
        f"SELECT customer_id, count(*), sum(amount), {first_at}max(purchased_at) "
        f"FROM {table} WHERE {_window(reference, window_days, 'purchased_at')} GROUP BY customer_id"
    )


AGGREGATE_COLUMNS = {
    "customer_id": "int64",
    "frequency": "int64",
    "monetary": "float64",
    "first_at": "epoch",
    "last_at": "epoch",
}


def purchase_aggregates(
    *, reference: dt.datetime, window_days: int, first: bool = True
) -> pd.DataFrame:
    """purchase_aggregates_sql's rows in pandas: AGGREGATE_COLUMNS (without first_at when
    `first` is False), a row per customer, times in seconds since the epoch."""
    columns = {k: v for k, v in AGGREGATE_COLUMNS.items() if first or k != "first_at"}
    return numeric_frame_from_sql(
        purchase_aggregates_sql(reference=reference, window_days=window_days, first=first),
        columns,
    )


def rfm_frame(*, reference: dt.datetime, window_days: int) -> pd.DataFrame:
    """Recency (days), frequency and monetary value of every customer who bought in the window."""
    frame = purchase_aggregates(reference=reference, window_days=window_days, first=False)
    ref = reference.timestamp()
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].astype("int64"),
            "recency": np.floor((ref - frame["last_at"].astype("float64")) / DAY).astype("int64"),
            "frequency": frame["frequency"].astype("int64"),
            "monetary": frame["monetary"].astype("float64").round(2),
        }
    )
    return out.sort_values("customer_id", ignore_index=True)


def _pivot(sql: str, prefix: str, limit: int) -> pd.DataFrame:
    rows = frame_from_sql(sql, ["customer_id", "key", "value"])
    if rows.empty:
        return pd.DataFrame(index=pd.Index([], name="customer_id", dtype="int64"))
    rows["key"] = rows["key"].fillna("").astype(str).replace("", "(none)")
    rows["value"] = rows["value"].astype("float64")
    top = rows.groupby("key")["value"].sum().nlargest(limit).index
    rows = rows[rows["key"].isin(top)]
    table = rows.pivot_table(
        index="customer_id", columns="key", values="value", aggfunc="sum", fill_value=0.0
    )
    table.columns = [f"{prefix}{c}" for c in table.columns]
    table.index = table.index.astype("int64")
    return table


def _attributes_sql(keys: Iterable[str]) -> str:
    parts = []
    for key in keys:  # keys are validated: letters, digits and underscores only
        parts.append(
            f"CASE WHEN jsonb_typeof(attributes -> '{key}') = 'number' "
            f"THEN (attributes ->> '{key}')::float8 END"
        )
    return "".join(f", {p}" for p in parts)


def customer_features(
    *,
    groups: Iterable[str],
    reference: dt.datetime,
    window_days: int,
    attribute_keys: Iterable[str] = (),
) -> pd.DataFrame:
    """The chosen feature groups for every customer, indexed by customer id, without gaps.

    Customers who did not buy in the window have frequency and spend 0 and a recency of the whole
    window; customers with fewer than two purchases have no gap: they are flagged
    (`one_time_buyer` for one purchase) and take the repeat buyers' median gap. Tenure counts
    from the first purchase. Missing ages and attributes take the median.
    """
    groups = set(groups)
    keys = (
        [k for k in attribute_keys if k.replace("_", "").isalnum()]
        if "attributes" in groups
        else []
    )
    base = frame_from_sql(
        f"SELECT id, {_epoch('created_at')}, birth_date{_attributes_sql(keys)} "
        f"FROM {Customer._meta.db_table}",
        ["customer_id", "created_at", "birth_date", *[f"attr:{k}" for k in keys]],
    )
    base["customer_id"] = base["customer_id"].astype("int64")
    base = base.set_index("customer_id").sort_index()
    ref = reference.timestamp()
    out = pd.DataFrame(index=base.index)
    needs_purchases = groups & {"rfm", "aov", "purchase_interval", "category_share"}
    if needs_purchases:
        agg = purchase_aggregates(reference=reference, window_days=window_days)
        agg["customer_id"] = agg["customer_id"].astype("int64")
        agg = agg.set_index("customer_id").reindex(base.index)
        frequency = agg["frequency"].fillna(0).astype("float64")
        monetary = agg["monetary"].astype("float64").fillna(0.0)
        last_at = agg["last_at"].astype("float64")
        first_at = agg["first_at"].astype("float64")
        if "rfm" in groups:
            out["recency"] = ((ref - last_at) / DAY).fillna(float(window_days)).clip(lower=0)
            out["frequency"] = frequency
            out["monetary"] = monetary
        if "aov" in groups:
            out["aov"] = (monetary / frequency.replace(0, np.nan)).fillna(0.0)
        if "purchase_interval" in groups:
            # Only repeat buyers have a gap. The others are flagged, and take the repeat
            # buyers' median gap so the gap itself says nothing about them (a gap of the whole
            # window would name a cluster of one-time buyers "long gaps between purchases").
            span = (last_at - first_at) / DAY
            interval = span / (frequency - 1).where(frequency > 1)
            typical = float(interval.median()) if interval.notna().any() else 0.0
            out["purchase_interval"] = interval.fillna(typical)
            out["one_time_buyer"] = (frequency == 1).astype("float64")
        if "category_share" in groups:
            table = Purchase._meta.db_table
            shares = _pivot(
                f"SELECT customer_id, category, sum(amount) FROM {table} "
                f"WHERE {_window(reference, window_days, 'purchased_at')} "
                "GROUP BY customer_id, category",
                "category_share:",
                MAX_PIVOT_COLUMNS,
            ).reindex(base.index, fill_value=0.0)
            totals = shares.sum(axis=1).replace(0, np.nan)
            out = out.join(shares.div(totals, axis=0).fillna(0.0))
    if "event_counts" in groups:
        events = _pivot(
            f"SELECT customer_id, type, count(*) FROM {Event._meta.db_table} "
            f"WHERE {_window(reference, window_days, 'occurred_at')} GROUP BY customer_id, type",
            "events:",
            MAX_PIVOT_COLUMNS,
        ).reindex(base.index, fill_value=0.0)
        out = out.join(events)
    if "tenure" in groups:
        # From the first purchase ever made before the reference (not from when the record was
        # created, which an import sets to the same day for everyone); 0 for non-buyers.
        first = numeric_frame_from_sql(
            f"SELECT customer_id, min(purchased_at) FROM {Purchase._meta.db_table} "
            f"WHERE purchased_at < {_literal(reference)} GROUP BY customer_id",
            {"customer_id": "int64", "first_at": "epoch"},
        )
        first_at = first.set_index("customer_id")["first_at"].reindex(base.index)
        out["tenure"] = ((ref - first_at.astype("float64")) / DAY).clip(lower=0).fillna(0.0)
    if "age" in groups:
        born = pd.to_datetime(base["birth_date"], errors="coerce")
        # Whole years, the age marketers may read: a fraction would put the birth date, within
        # days, into a cluster profile of few customers (customers.selectors).
        age = np.floor((pd.Timestamp(reference.date()) - born).dt.days / 365.25)
        out["age"] = age.fillna(age.median() if age.notna().any() else 0.0)
    for key in keys:
        values = pd.to_numeric(base[f"attr:{key}"], errors="coerce").astype("float64")
        out[f"attr:{key}"] = values.fillna(values.median() if values.notna().any() else 0.0)
    return out.astype("float64")


def predictive_features(*, reference: dt.datetime, history_days: int = 1095) -> pd.DataFrame:
    """Features of every customer who bought before `reference`, as of `reference`.

    The same columns feed the churn classifier and the value regressor, at a past cut-off for
    training and at today for scoring.
    """
    # The last 90 days' figures come from the same pass over the purchases (FILTER), not a
    # second GROUP BY: at 10M purchases each pass costs seconds.
    recent = f"purchased_at >= {_literal(reference - dt.timedelta(days=90))}"
    allp = numeric_frame_from_sql(
        f"SELECT customer_id, count(*), sum(amount), min(purchased_at), max(purchased_at), "
        f"count(*) FILTER (WHERE {recent}), coalesce(sum(amount) FILTER (WHERE {recent}), 0) "
        f"FROM {Purchase._meta.db_table} WHERE {_window(reference, history_days, 'purchased_at')} "
        "GROUP BY customer_id",
        AGGREGATE_COLUMNS | {"frequency_90": "int64", "monetary_90": "float64"},
    )
    if allp.empty:
        return pd.DataFrame(columns=PREDICTIVE_COLUMNS, index=pd.Index([], name="customer_id"))
    allp["customer_id"] = allp["customer_id"].astype("int64")
    allp = allp.set_index("customer_id").sort_index()
    events = numeric_frame_from_sql(
        f"SELECT customer_id, count(*) FROM {Event._meta.db_table} "
        f"WHERE {_window(reference, 90, 'occurred_at')} GROUP BY customer_id",
        {"customer_id": "int64", "events": "int64"},
    )
    events["customer_id"] = events["customer_id"].astype("int64")
    events = events.set_index("customer_id").reindex(allp.index)
    ref = reference.timestamp()
    frequency = allp["frequency"].astype("float64")
    monetary = allp["monetary"].astype("float64")
    first_at = allp["first_at"].astype("float64")
    last_at = allp["last_at"].astype("float64")
    tenure = ((ref - first_at) / DAY).clip(lower=0)
    out = pd.DataFrame(index=allp.index)
    out["recency"] = ((ref - last_at) / DAY).clip(lower=0)
    out["frequency"] = frequency
    out["monetary"] = monetary
    out["aov"] = monetary / frequency
    out["tenure"] = tenure
    interval = ((last_at - first_at) / DAY) / (frequency - 1).where(frequency > 1)
    out["purchase_interval"] = interval.fillna(tenure.clip(lower=1))
    out["frequency_90"] = allp["frequency_90"].astype("float64")
    out["monetary_90"] = allp["monetary_90"].astype("float64")
    out["events_90"] = pd.to_numeric(events["events"]).fillna(0).astype("float64")
    return out.astype("float64")


PREDICTIVE_COLUMNS = [
    "recency",
    "frequency",
    "monetary",
    "aov",
    "tenure",
    "purchase_interval",
    "frequency_90",
    "monetary_90",
    "events_90",
]


def future_purchases(*, start: dt.datetime, days: int) -> pd.DataFrame:
    """Purchases and spend per customer in [start, start + days): the labels of a cut-off."""
    frame = purchase_aggregates(reference=start + dt.timedelta(days=days), window_days=days)
    frame["customer_id"] = frame["customer_id"].astype("int64")
    return frame.set_index("customer_id")[["frequency", "monetary"]].astype("float64")


def purchase_span() -> tuple[dt.datetime | None, dt.datetime | None]:
    """The first and last purchase time in the database."""
    from django.db.models import Max, Min

    found = Purchase.objects.aggregate(first=Min("purchased_at"), last=Max("purchased_at"))
    return found["first"], found["last"]


ALL_HISTORY_DAYS = 36500


def lifetime_summary(*, reference: dt.datetime) -> pd.DataFrame:
    """The customer-base models' summary of every customer who bought before `reference`, from
    one GROUP BY customer: x = repeat purchases, t_x = days from the first to the last purchase,
    T = days from the first purchase to `reference`, n = purchases, m = their mean amount."""
    agg = purchase_aggregates(reference=reference, window_days=ALL_HISTORY_DAYS)
    index = pd.Index(agg["customer_id"].astype("int64"), name="customer_id")
    n = agg["frequency"].to_numpy(dtype="float64")
    first = agg["first_at"].to_numpy(dtype="float64")
    last = agg["last_at"].to_numpy(dtype="float64")
    out = pd.DataFrame(
        {
            "x": n - 1,
            "t_x": (last - first) / DAY,
            "T": (reference.timestamp() - first) / DAY,
            "n": n,
            "m": agg["monetary"].to_numpy(dtype="float64") / np.maximum(n, 1),
        },
        index=index,
    )
    return out.sort_index()
