"""RFM: each customer's recency, frequency and monetary scores and class, and the class segments."""

import datetime as dt

import pandas as pd
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from segments.ml import bulk, features
from segments.ml.models import CustomerScore, RfmRun
from segments.ml.scoring import RFM_CLASSES, rfm_scores, rfm_thresholds
from segments.ml.services.lifetime import as_of_check
from segments.ml.services.runs import _reference
from segments.models import Segment
from segments.services import segment_create, segment_refresh

RFM_COLUMNS = [
    "rfm_recency",
    "rfm_frequency",
    "rfm_monetary",
    "r_score",
    "f_score",
    "m_score",
    "rfm_score",
    "rfm_class",
    "previous_rfm_class",
    "rfm_computed_at",
]


def rfm_class_segments_ensure() -> list[Segment]:
    """The ready rule segment of each RFM class (created once, found by slug afterwards)."""
    out = []
    for name in RFM_CLASSES:
        slug = "rfm-" + name.lower().replace(" ", "-")
        segment = Segment.objects.filter(slug=slug).first()
        if segment is None:
            segment = segment_create(
                name=f"RFM: {name}",
                slug=slug,
                owner=None,
                rule={"field": "rfm_class", "op": "eq", "value": name},
                description=f"Customers in the RFM class {name} (see docs/ml.md).",
                min_size_warning=0,
            )
        out.append(segment)
    return out


def rfm_refresh(
    *,
    reference_date: dt.date | None = None,
    window_days: int = 730,
    trigger: str = "manual",
    run: RfmRun | None = None,
) -> RfmRun:
    """Score every customer who bought in the window, keep the previous class, count the moves,
    and refresh the ready class segments. As of a past day the run is a back-test: its class
    counts and thresholds stay in the run, and the current scores and segments are untouched."""
    if not 1 <= window_days <= 36500:
        raise ValidationError({"window_days": "expected a whole number of days from 1 to 36500"})
    reference_date = as_of_check(reference_date, "reference_date")
    backtest = reference_date < timezone.localdate()
    started = timezone.now()
    reference = _reference(reference_date)
    if run is None:
        run = RfmRun.objects.create(
            reference_date=reference_date, window_days=window_days, trigger=trigger
        )
    RfmRun.objects.filter(pk=run.pk).update(
        status=RfmRun.Status.RUNNING, started_at=started, backtest=backtest
    )
    try:
        frame = features.rfm_frame(reference=reference, window_days=window_days)
        scored = rfm_scores(frame) if not frame.empty else frame
        previous = pd.DataFrame(
            CustomerScore.objects.exclude(rfm_class="").values_list("customer_id", "rfm_class"),
            columns=["customer_id", "previous_rfm_class"],
        )
        out = pd.DataFrame(
            {
                "customer_id": scored.get("customer_id", pd.Series(dtype="int64")),
                "rfm_recency": scored.get("recency"),
                "rfm_frequency": scored.get("frequency"),
                "rfm_monetary": scored.get("monetary"),
                "r_score": scored.get("r_score"),
                "f_score": scored.get("f_score"),
                "m_score": scored.get("m_score"),
                "rfm_score": scored.get("rfm_score"),
                "rfm_class": scored.get("rfm_class"),
            }
        )
        out = out.merge(previous, on="customer_id", how="left")
        out["previous_rfm_class"] = out["previous_rfm_class"].fillna("")
        out["rfm_computed_at"] = started
        moved = out[
            (out["previous_rfm_class"] != "") & (out["previous_rfm_class"] != out["rfm_class"])
        ]
        moves = (
            moved.groupby(["previous_rfm_class", "rfm_class"]).size().sort_values(ascending=False)
        )
        classes = {k: int(n) for k, n in out["rfm_class"].value_counts().items()}
        if backtest:  # as of a past day: the run keeps its figures, the current scores stay
            finished = timezone.now()
            RfmRun.objects.filter(pk=run.pk).update(
                status=RfmRun.Status.DONE,
                customers=len(out),
                classes=classes,
                thresholds=rfm_thresholds(scored) if len(scored) else {},
                finished_at=finished,
                duration=finished - started,
            )
            run.refresh_from_db()
            return run
        with transaction.atomic():
            bulk.scores_upsert(out, RFM_COLUMNS)
            # Customers who no longer bought in the window drop out of RFM.
            CustomerScore.objects.exclude(rfm_class="").exclude(rfm_computed_at=started).update(
                previous_rfm_class=F("rfm_class"),
                rfm_class="",
                rfm_recency=None,
                rfm_frequency=None,
                rfm_monetary=None,
                r_score=None,
                f_score=None,
                m_score=None,
                rfm_score=None,
                rfm_computed_at=started,
            )
        for segment in rfm_class_segments_ensure():
            segment_refresh(segment=segment, trigger="schedule")
        finished = timezone.now()
        RfmRun.objects.filter(pk=run.pk).update(
            status=RfmRun.Status.DONE,
            customers=len(out),
            moved=len(moved),
            classes=classes,
            moves=[[a, b, int(n)] for (a, b), n in moves.items()],
            thresholds=rfm_thresholds(scored) if len(scored) else {},
            finished_at=finished,
            duration=finished - started,
        )
    except Exception as exc:
        RfmRun.objects.filter(pk=run.pk).update(status=RfmRun.Status.FAILED, message=str(exc))
        raise
    run.refresh_from_db()
    return run


def rfm_refresh_queue(
    *, reference_date: dt.date | None = None, window_days: int = 730, trigger: str = "manual"
) -> RfmRun:
    """Record an RFM run and queue it on a worker after the transaction commits."""
    from segments.ml.tasks import rfm_refresh_task

    if not 1 <= window_days <= 36500:
        raise ValidationError({"window_days": "expected a whole number of days from 1 to 36500"})
    reference_date = as_of_check(reference_date, "reference_date")
    run = RfmRun.objects.create(
        reference_date=reference_date,
        window_days=window_days,
        trigger=trigger,
    )
    transaction.on_commit(lambda: rfm_refresh_task.delay(run.pk))
    return run
