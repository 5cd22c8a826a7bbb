"""Training, activating and applying the win-probability model (deals/winprob.py): the features
read set-based in SQL, a training run as a job, every open deal scored in one statement, and a
deal's own probability with its reasons for its page.

A training that does not beat the stages' default probabilities on held-out deals is recorded
(with its metrics) but never made active; while no model is active, deals show the stage's
probability alone.
"""

import pickle
from functools import lru_cache

import pandas as pd
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.utils import timezone

from deals import winprob
from deals.models import Activity, Deal, Stage, StageChange, WinModel

T_DEAL = Deal._meta.db_table
T_STAGE = Stage._meta.db_table
T_CHANGE = StageChange._meta.db_table
T_ACTIVITY = Activity._meta.db_table

# One row per snapshot: what was known when a deal entered an open stage. `rank` is the stage's
# place among its pipeline's open stages (from 1), `open_stages` how many there are.
_STAGE_RANKS = f"""
    SELECT s.id, s.pipeline_id, s.position, s.probability, s.outcome,
           rank() OVER (PARTITION BY s.pipeline_id, s.outcome = 'open' ORDER BY s.position, s.id)
               AS stage_rank,
           count(*) FILTER (WHERE s.outcome = 'open') OVER (PARTITION BY s.pipeline_id)
               AS open_stages
    FROM {T_STAGE} s
"""  # noqa: S608 - table names from the models

TRAINING_SQL = f"""
WITH ranks AS ({_STAGE_RANKS})
SELECT sc.deal_id, d.closed_at, (fin.outcome = 'won') AS won,
       r.stage_rank, r.open_stages, r.probability AS stage_probability,
       extract(epoch FROM sc.changed_at - d.created_at) / 86400.0 AS age_days,
       row_number() OVER (PARTITION BY sc.deal_id ORDER BY sc.changed_at, sc.id) AS moves,
       coalesce(fr.position > r.position, false) AS moved_back,
       d.amount, d.source, d.pipeline_id AS pipeline,
       d.customer_id IS NOT NULL AS has_customer, d.account_id IS NOT NULL AS has_account,
       (SELECT count(*) FROM {T_ACTIVITY} a
         WHERE a.deal_id = sc.deal_id AND a.occurred_at <= sc.changed_at) AS activities
FROM {T_CHANGE} sc
JOIN {T_DEAL} d ON d.id = sc.deal_id
JOIN {T_STAGE} fin ON fin.id = d.stage_id AND fin.outcome <> 'open'
JOIN ranks r ON r.id = sc.to_stage_id AND r.outcome = 'open'
LEFT JOIN ranks fr ON fr.id = sc.from_stage_id
WHERE d.closed_at IS NOT NULL
"""  # noqa: S608

# Open deals as of their entry into their current stage (the snapshot the model was taught on).
OPEN_SQL = f"""
WITH ranks AS ({_STAGE_RANKS})
SELECT d.id AS deal_id, r.stage_rank, r.open_stages, r.probability AS stage_probability,
       extract(epoch FROM d.stage_entered_at - d.created_at) / 86400.0 AS age_days,
       (SELECT count(*) FROM {T_CHANGE} c WHERE c.deal_id = d.id) AS moves,
       coalesce((SELECT fr.position > r.position FROM {T_CHANGE} c
                  JOIN ranks fr ON fr.id = c.from_stage_id
                 WHERE c.deal_id = d.id ORDER BY c.changed_at DESC, c.id DESC LIMIT 1), false)
           AS moved_back,
       d.amount, d.source, d.pipeline_id AS pipeline,
       d.customer_id IS NOT NULL AS has_customer, d.account_id IS NOT NULL AS has_account,
       (SELECT count(*) FROM {T_ACTIVITY} a
         WHERE a.deal_id = d.id AND a.occurred_at <= d.stage_entered_at) AS activities
FROM {T_DEAL} d
JOIN ranks r ON r.id = d.stage_id AND r.outcome = 'open'
"""  # noqa: S608


def _frame(sql: str, params: list | None = None) -> pd.DataFrame:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        columns = [c.name for c in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=columns)


def win_training_frame() -> pd.DataFrame:
    return _frame(TRAINING_SQL)


def win_open_frame(*, deal_ids: list[int] | None = None) -> pd.DataFrame:
    if deal_ids is None:
        return _frame(OPEN_SQL)
    return _frame(OPEN_SQL + " WHERE d.id = ANY(%s)", [deal_ids])


def _require_admin(actor: AbstractBaseUser | None) -> None:
    if actor is not None and not actor.is_superuser:
        raise PermissionDenied("Only an administrator trains the win-probability model.")


def win_model_train(*, actor: AbstractBaseUser | None = None) -> WinModel:
    """Record a training run and queue it once this commits."""
    from deals.tasks import win_model_train_task

    _require_admin(actor)
    with transaction.atomic():
        job = WinModel.objects.create(created_by=actor)
        transaction.on_commit(lambda: win_model_train_task.delay(job.pk))
    return job


def win_model_run(*, job: WinModel) -> WinModel:
    """Fit, measure on held-out deals, and activate and score when it beats the stage default."""
    WinModel.objects.filter(pk=job.pk).update(
        status=WinModel.Status.RUNNING, started_at=timezone.now()
    )
    try:
        fitted = winprob.fit(
            win_training_frame(),
            min_closed=settings.DEALS_WIN_MODEL_MIN_CLOSED,
            min_each=settings.DEALS_WIN_MODEL_MIN_EACH,
        )
    except winprob.TrainingRefused as refusal:
        WinModel.objects.filter(pk=job.pk).update(
            status=WinModel.Status.FAILED, message=str(refusal), finished_at=timezone.now()
        )
        job.refresh_from_db()
        return job
    beats = fitted.metrics["beats_stage_default"]
    with transaction.atomic():
        if beats:
            WinModel.objects.filter(active=True).update(active=False)
        WinModel.objects.filter(pk=job.pk).update(
            metrics=fitted.metrics,
            typical=fitted.typical,
            fitted=pickle.dumps(fitted.model),
            active=beats,
            message=""
            if beats
            else "Kept for the record, not used: it does not beat the stages' default "
            "probabilities on the held-out deals.",
        )
        scored = win_scores_write() if beats else 0
        WinModel.objects.filter(pk=job.pk).update(
            status=WinModel.Status.DONE, scored=scored, finished_at=timezone.now()
        )
    job.refresh_from_db()
    return job


@lru_cache(maxsize=4)
def _loaded(model_id: int, finished_at) -> winprob.WinFit:
    row = WinModel.objects.get(pk=model_id)
    return winprob.WinFit(
        model=pickle.loads(bytes(row.fitted)),  # noqa: S301 - written by this code alone
        metrics=row.metrics,
        typical=row.typical,
    )


def win_model_active() -> WinModel | None:
    return WinModel.objects.filter(active=True).defer("fitted").first()


def win_fit_active() -> tuple[WinModel, winprob.WinFit] | None:
    row = win_model_active()
    if row is None:
        return None
    return row, _loaded(row.pk, row.finished_at)


def win_scores_write() -> int:
    """Score every open deal with the active model, written back in one statement; closed deals
    lose their score. Returns how many deals were scored."""
    active = win_fit_active()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {T_DEAL} d SET win_probability = NULL FROM {T_STAGE} s "  # noqa: S608
            "WHERE s.id = d.stage_id AND s.outcome <> 'open' AND d.win_probability IS NOT NULL"
        )
    if active is None:
        return 0
    frame = win_open_frame()
    if frame.empty:
        return 0
    percent = (winprob.predict(active[1].model, frame) * 100).round().astype(int)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {T_DEAL} d SET win_probability = v.p "  # noqa: S608
            "FROM unnest(%s::bigint[], %s::smallint[]) AS v(id, p) WHERE d.id = v.id",
            [frame["deal_id"].astype(int).tolist(), percent.tolist()],
        )
        return cursor.rowcount


def deal_win_prediction(deal: Deal) -> dict | None:
    """The deal's learned probability now (percent) and its reasons, or None when no model is
    active or the deal is closed."""
    active = win_fit_active()
    if active is None or deal.stage.outcome != Stage.Outcome.OPEN:
        return None
    row, fitted = active
    frame = win_open_frame(deal_ids=[deal.pk])
    if frame.empty:
        return None
    probability = float(winprob.predict(fitted.model, frame)[0])
    return {
        "probability": round(probability * 100),
        "reasons": winprob.reasons(fitted, frame)[0],
        "model": row,
    }
