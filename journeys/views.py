"""The journey pages: the list, the builder (settings and the step list), a journey's report with
its enrolments, test mode, activation and pause, and an enrolment's history."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from campaigns.views.shared import _errors_to_form, marketing_required
from crm.confirm import Confirmation, confirmation_given, confirmation_page
from journeys import services
from journeys.forms import JourneyForm, StepForm, TestCustomerForm
from journeys.models import Enrolment, Journey, Step
from journeys.selectors import (
    enrolment_history,
    enrolment_messages,
    journey_state_counts,
    journey_step_report,
    journey_steps,
    journeys_with_counts,
)


def _service_errors(request: HttpRequest, exc: ValidationError) -> None:
    for field, errors in getattr(exc, "message_dict", {"__all__": exc.messages}).items():
        messages.error(request, f"{field.replace('_', ' ')}: {'; '.join(errors)}")


@marketing_required
@require_GET
def journey_list(request: HttpRequest) -> HttpResponse:
    journeys = journeys_with_counts().order_by("-created_at")[:200]
    return render(request, "journeys/journey_list.html", {"journeys": journeys})


@marketing_required
def journey_create(request: HttpRequest) -> HttpResponse:
    form = JourneyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            journey = services.journey_create(actor=request.user, **form.service_fields())
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, "Journey created. Now add its steps.")
            return redirect("journeys:edit", journey.pk)
    return render(request, "journeys/journey_form.html", {"form": form})


@marketing_required
def journey_builder(request: HttpRequest, pk: int) -> HttpResponse:
    """The journey's settings and its step list, with the form that adds a step."""
    journey = get_object_or_404(Journey, pk=pk)
    form = JourneyForm(instance=journey)
    step_form = StepForm(journey=journey)
    if request.method == "POST":
        if request.POST.get("form") == "settings":
            form = JourneyForm(request.POST, instance=journey)
            if form.is_valid():
                try:
                    services.journey_update(
                        journey=journey, actor=request.user, **form.service_fields()
                    )
                except ValidationError as exc:
                    _errors_to_form(form, exc)
                else:
                    messages.success(request, "Settings saved.")
                    return redirect("journeys:edit", journey.pk)
        else:
            step_form = StepForm(request.POST, journey=journey)
            if step_form.is_valid():
                try:
                    services.step_add(
                        journey=journey, actor=request.user, **step_form.service_fields()
                    )
                except ValidationError as exc:
                    _errors_to_form(step_form, exc)
                else:
                    messages.success(request, "Step added.")
                    return redirect("journeys:edit", journey.pk)
        journey.refresh_from_db()
    return render(
        request,
        "journeys/journey_builder.html",
        {
            "journey": journey,
            "form": form,
            "step_form": step_form,
            "steps": journey_steps(journey=journey),
            "problems": services.journey_problems(journey),
        },
        status=400 if request.method == "POST" else 200,
    )


@marketing_required
def step_edit(request: HttpRequest, pk: int) -> HttpResponse:
    step = get_object_or_404(Step.objects.select_related("journey"), pk=pk)
    form = StepForm(request.POST or None, journey=step.journey, step=step)
    if request.method == "POST" and form.is_valid():
        try:
            services.step_update(step=step, actor=request.user, **form.service_fields())
        except ValidationError as exc:
            _errors_to_form(form, exc)
        else:
            messages.success(request, "Step saved.")
            return redirect("journeys:edit", step.journey_id)
    return render(request, "journeys/step_form.html", {"step": step, "form": form})


@marketing_required
@require_POST
def step_move(request: HttpRequest, pk: int) -> HttpResponse:
    step = get_object_or_404(Step.objects.select_related("journey"), pk=pk)
    try:
        services.step_move(
            step=step, actor=request.user, direction=request.POST.get("direction", "")
        )
    except ValidationError as exc:
        _service_errors(request, exc)
    return redirect("journeys:edit", step.journey_id)


@marketing_required
@require_POST
def step_remove(request: HttpRequest, pk: int) -> HttpResponse:
    step = get_object_or_404(Step.objects.select_related("journey"), pk=pk)
    try:
        services.step_remove(step=step, actor=request.user)
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        messages.success(request, "Step removed.")
    return redirect("journeys:edit", step.journey_id)


@marketing_required
@require_GET
def journey_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """What the journey does and has done: counts per step (a chart), enrolments, test mode."""
    journey = get_object_or_404(Journey.objects.select_related("trigger_segment"), pk=pk)
    report = journey_step_report(journey=journey)
    chart = {
        "labels": [f"{line['step'].position}. {line['step'].summary}"[:60] for line in report],
        "reached": [line["reached"] for line in report],
        "waiting": [line["waiting"] for line in report],
        "converted": [line["converted"] for line in report],
    }
    enrolments = (
        Enrolment.objects.filter(journey=journey)
        .select_related("customer", "step")
        .order_by("-entered_at", "-pk")[:50]
    )
    return render(
        request,
        "journeys/journey_detail.html",
        {
            "journey": journey,
            "report": report,
            "chart": chart,
            "counts": journey_state_counts(journey=journey),
            "enrolments": enrolments,
            "test_form": TestCustomerForm(),
            "problems": services.journey_problems(journey),
        },
    )


@marketing_required
@require_POST
def journey_activate(request: HttpRequest, pk: int) -> HttpResponse:
    journey = get_object_or_404(Journey, pk=pk)
    if not confirmation_given(request):
        segment = journey.trigger_segment.name if journey.trigger_segment_id else ""
        return confirmation_page(
            request,
            Confirmation(
                title=f"Activate “{journey.name}”?",
                action_label="Activate the journey",
                facts=[
                    (
                        "Trigger",
                        journey.get_trigger_display() + (f": {segment}" if segment else ""),
                    ),
                    ("Steps", str(journey.steps.count())),
                    ("Goal", journey.get_goal_display()),
                    ("Re-entry", journey.get_reentry_display()),
                ],
                warning=(
                    "Customers who trigger it from now on enter it and get its messages and "
                    "tasks; messages already handed over cannot be called back."
                ),
                cancel_url=f"/journeys/{journey.pk}/",
                danger=False,
            ),
        )
    try:
        services.journey_activate(journey=journey, actor=request.user)
    except ValidationError as exc:
        _service_errors(request, exc)
    else:
        messages.success(request, "The journey is active.")
    return redirect("journeys:detail", journey.pk)


@marketing_required
@require_POST
def journey_pause(request: HttpRequest, pk: int) -> HttpResponse:
    journey = get_object_or_404(Journey, pk=pk)
    if not confirmation_given(request):
        waiting = journey.enrolments.filter(state=Enrolment.State.ACTIVE, is_test=False).count()
        return confirmation_page(
            request,
            Confirmation(
                title=f"Pause “{journey.name}”?",
                action_label="Pause the journey",
                facts=[("Customers in it now", str(waiting))],
                warning="Nobody enters and nobody moves on until it is activated again.",
                cancel_url=f"/journeys/{journey.pk}/",
            ),
        )
    services.journey_pause(journey=journey, actor=request.user)
    messages.success(request, "The journey is paused.")
    return redirect("journeys:detail", journey.pk)


@marketing_required
@require_POST
def journey_test(request: HttpRequest, pk: int) -> HttpResponse:
    """Test mode: run one chosen customer through the journey with the waits shortened."""
    journey = get_object_or_404(Journey, pk=pk)
    form = TestCustomerForm(request.POST)
    if not form.is_valid():
        for error in form.errors.get("customer", []):
            messages.error(request, f"customer: {error}")
        return redirect("journeys:detail", journey.pk)
    try:
        enrolment = services.journey_test_start(
            journey=journey, actor=request.user, customer=form.cleaned_data["customer"]
        )
    except ValidationError as exc:
        _service_errors(request, exc)
        return redirect("journeys:detail", journey.pk)
    messages.success(request, "Test run started.")
    return redirect("journeys:enrolment_detail", enrolment.pk)


@marketing_required
@require_GET
def enrolment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    enrolment = get_object_or_404(
        Enrolment.objects.select_related("journey", "customer", "step"), pk=pk
    )
    return render(
        request,
        "journeys/enrolment_detail.html",
        {
            "enrolment": enrolment,
            "history": enrolment_history(enrolment=enrolment),
            "sends": enrolment_messages(enrolment=enrolment),
        },
    )


@marketing_required
@require_POST
def enrolment_hurry(request: HttpRequest, pk: int) -> HttpResponse:
    enrolment = get_object_or_404(Enrolment, pk=pk)
    try:
        services.enrolment_hurry(enrolment=enrolment, actor=request.user)
    except ValidationError as exc:
        _service_errors(request, exc)
    return redirect("journeys:enrolment_detail", enrolment.pk)
