"""REST API of the pipeline: pipelines, stages, deals (with their move), deal lines, activities
and targets, with the same per-owner rules as the pages (deals.selectors)."""

from rest_framework.routers import DefaultRouter


def register(router: DefaultRouter) -> None:
    from deals.api import views

    router.register("pipelines", views.PipelineViewSet, basename="pipeline")
    router.register("stages", views.StageViewSet, basename="stage")
    router.register("deals", views.DealViewSet, basename="deal")
    router.register("deal-lines", views.DealLineViewSet, basename="deal-line")
    router.register("activities", views.ActivityViewSet, basename="activity")
    router.register("forecast-targets", views.ForecastTargetViewSet, basename="forecast-target")
