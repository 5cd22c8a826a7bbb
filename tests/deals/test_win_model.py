"""The win-probability model: learned from the recorded stage history of closed deals, measured
on the deals closed last against the stages' default probabilities, refused on too little
history, shown beside the stage's default with its reasons, and a forecast from it."""

import datetime as dt

import pytest
from django.test import Client

from bench.deal_rows import deals_generate
from bench.generator import dataset_generate
from deals.models import Deal, Stage, WinModel
from deals.selectors import deals_visible_to
from deals.win_model import deal_win_prediction, win_model_run, win_model_train
from tests.deals.factories import deal_make

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sales_history(db):
    """1,500 seeded deals over 300 customers: about 800 won or lost, with their stage history;
    whether a deal was won depends on its source and amount, as the bench generator makes it."""
    today = dt.date.today()
    dataset_generate(
        customers=300, purchases=300, seed=5, reset=True, today=today, log=lambda m: None
    )
    deals_generate(deals=1_500, seed=5, today=today, log=lambda m: None)


def _trained(actor, capture) -> WinModel:
    with capture(execute=True):
        job = win_model_train(actor=actor)
    job.refresh_from_db()
    return job


def test_the_model_beats_the_stage_default_on_deals_closed_after_it_learned(
    sales_history, superuser, django_capture_on_commit_callbacks
):
    job = _trained(superuser, django_capture_on_commit_callbacks)

    assert job.status == "done", job.message
    metrics = job.metrics
    assert metrics["test_deals"] > 100 and metrics["train_deals"] > 300
    assert metrics["auc"] > metrics["baseline_auc"]
    assert metrics["brier"] < metrics["baseline_brier"]
    assert job.active
    open_deals = Deal.objects.filter(stage__outcome=Stage.Outcome.OPEN)
    assert job.scored == open_deals.count()
    assert not open_deals.filter(win_probability__isnull=True).exists()
    assert not Deal.objects.exclude(stage__outcome="open").filter(win_probability__isnull=False)


def test_training_is_refused_with_the_reason_on_too_little_history(
    pipeline, superuser, sales_user, account_of_sam, django_capture_on_commit_callbacks
):
    for i in range(5):
        deal_make(owner=sales_user, account=account_of_sam, name=f"Deal {i}")

    job = _trained(superuser, django_capture_on_commit_callbacks)

    assert job.status == "failed"
    assert "0 deals were won or lost (at least 200 needed)" in job.message
    assert not job.active


def test_only_an_administrator_trains_the_model(sales_user, api_client_for):
    response = api_client_for(sales_user).post("/api/deals/win-model/")

    assert response.status_code == 403
    assert not WinModel.objects.exists()


def test_a_deal_shows_the_learned_chance_beside_the_stage_default_with_reasons(
    sales_history, superuser, django_capture_on_commit_callbacks
):
    _trained(superuser, django_capture_on_commit_callbacks)
    deal = Deal.objects.filter(stage__outcome="open").order_by("id").first()

    html = _client(superuser).get(f"/deals/{deal.pk}/").content.decode()
    api = _client(superuser).get(f"/api/deals/{deal.pk}/win-probability/").json()
    prediction = deal_win_prediction(deal)

    assert 'data-testid="win-prediction"' in html and 'data-testid="win-reasons"' in html
    assert api["probability"] == prediction["probability"]
    assert api["stage_probability"] == deal.stage.probability
    assert api["reasons"] and {r["direction"] for r in api["reasons"]} <= {"raises", "lowers"}


def test_an_amount_far_above_the_usual_lowers_the_learned_chance(
    sales_history, superuser, django_capture_on_commit_callbacks
):
    """The generator makes big deals harder to win: the model has learned it, and says so."""
    _trained(superuser, django_capture_on_commit_callbacks)
    deal = Deal.objects.filter(stage__outcome="open").order_by("id").first()
    before = deal_win_prediction(deal)["probability"]

    Deal.objects.filter(pk=deal.pk).update(amount=deal.amount * 50)
    after = deal_win_prediction(Deal.objects.get(pk=deal.pk))

    assert after["probability"] < before
    amount = next(r for r in after["reasons"] if r["feature"] == "log_amount")
    assert amount["direction"] == "lowers"


def test_the_forecast_shows_the_learned_forecast_and_the_models_check(
    sales_history, superuser, django_capture_on_commit_callbacks
):
    _trained(superuser, django_capture_on_commit_callbacks)
    client = _client(superuser)

    html = client.get("/deals/forecast/").content.decode()
    api = client.get("/api/deals/forecast/").json()

    assert 'data-testid="forecast-predicted"' in html and 'data-testid="win-auc"' in html
    assert any(row["predicted"] != row["weighted"] for row in api["rows"])


def test_a_salesperson_sees_scores_only_of_their_own_deals(
    sales_history, superuser, django_capture_on_commit_callbacks
):
    _trained(superuser, django_capture_on_commit_callbacks)
    seller = Deal.objects.filter(stage__outcome="open").order_by("id").first().owner
    hers = Deal.objects.exclude(owner=seller).filter(stage__outcome="open").first()

    response = _client(seller).get(f"/api/deals/{hers.pk}/win-probability/")

    assert response.status_code == 404
    assert deals_visible_to(seller).filter(pk=hers.pk).count() == 0


def test_a_model_that_does_not_beat_the_stage_default_is_not_used(
    sales_history, superuser, monkeypatch
):
    from deals import winprob

    real_fit = winprob.fit

    def no_better(*args, **kwargs):
        fitted = real_fit(*args, **kwargs)
        fitted.metrics["beats_stage_default"] = False
        return fitted

    monkeypatch.setattr(winprob, "fit", no_better)
    job = WinModel.objects.create(created_by=superuser)

    job = win_model_run(job=job)

    assert job.status == "done" and not job.active
    assert "does not beat" in job.message
    assert not Deal.objects.filter(win_probability__isnull=False).exists()
