"""Every task the code defines, and every task the beat schedule names, is registered on a real
worker: a task a worker does not know leaves its job waiting forever."""

import ast
import socket
from pathlib import Path

import pytest
from django_celery_beat.models import PeriodicTask

from crm.celery import app as celery_app
from tests.integration.conftest import REPO


def product_packages() -> list[str]:
    """The installed apps whose code lives in this repository (a new app is covered at once)."""
    from django.apps import apps

    return [
        config.name
        for config in apps.get_app_configs()
        if Path(config.path).resolve().is_relative_to(REPO)
    ]


def _is_task_decorator(node: ast.expr) -> bool:
    target = node.func if isinstance(node, ast.Call) else node
    if isinstance(target, ast.Name):
        return target.id == "shared_task"
    return isinstance(target, ast.Attribute) and target.attr in ("task", "shared_task")


def tasks_defined_in_code() -> set[str]:
    """The names of every function decorated as a Celery task in the product's source."""
    names = set()
    for package in product_packages():
        for path in (REPO / package.replace(".", "/")).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(REPO).with_suffix("").parts)
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.FunctionDef) and any(
                    _is_task_decorator(d) for d in node.decorator_list
                ):
                    names.add(f"{module}.{node.name}")
    return names


def test_the_source_scan_finds_the_tasks_of_every_app():
    modules = {name.rsplit(".", 1)[0] for name in tasks_defined_in_code()}

    assert {
        "customers.tasks",
        "privacy.tasks",
        "segments.tasks",
        "segments.ml.tasks",
        "campaigns.tasks",
        "insights.tasks",
        "journeys.tasks",
    } <= modules


@pytest.mark.django_db
def test_every_task_the_beat_schedule_names_is_defined_in_code():
    scheduled = set(PeriodicTask.objects.values_list("task", flat=True))

    assert scheduled, "the migrations create the beat schedule"
    assert scheduled <= tasks_defined_in_code()


@pytest.mark.integration
def test_a_real_worker_registers_every_task_defined_in_code(celery_worker_process):
    node = f"{celery_worker_process.queue}@{socket.gethostname()}"

    replies = celery_app.control.inspect(destination=[node], timeout=10).registered() or {}

    assert node in replies, f"no answer from {node}: {replies}\n{celery_worker_process.output}"
    registered = {name.split(" ")[0] for name in replies[node]}
    missing = tasks_defined_in_code() - registered
    assert not missing, f"tasks the worker does not know: {sorted(missing)}"
