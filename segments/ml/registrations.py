"""What ML segments register with lower apps: personal data and the customer page panel."""


def register() -> None:
    from customers.registry import CustomerPanel, customer_panel_register
    from privacy.mentions import personal_data_mentions_register
    from privacy.registry import personal_data_register
    from segments.ml import panels
    from segments.ml.models import (
        BacktestScore,
        ClusterAssignment,
        CustomerScore,
        MLJob,
        MLSegment,
        RfmRun,
    )

    personal_data_register(
        CustomerScore,
        customer_path="customer",
        erase="delete",
        category="Scores (RFM, churn risk, predicted value, lifetime value)",
        purpose="Marketing segmentation and prediction",
        retention="Recomputed on every run; deleted with the customer",
    )
    personal_data_register(
        BacktestScore,
        customer_path="customer",
        erase="delete",
        category="Back-test scores (churn risk, value, lifetime value as of a past date)",
        purpose="Checking predictions against what happened since",
        retention="Kept with the back-test's report until the model is deleted",
    )
    personal_data_register(
        ClusterAssignment,
        customer_path="customer",
        erase="delete",
        category="ML segment cluster",
        purpose="Marketing segmentation",
        retention="Until the next assignment of the ML segment",
    )
    personal_data_mentions_register(MLSegment, fields=["name", "description"])
    personal_data_mentions_register(RfmRun, fields=["message"])
    personal_data_mentions_register(MLJob, fields=["message", "step"])
    from privacy.mentions import personal_data_mentions_exempt
    from segments.ml.models import Cluster, LifetimeModel, ModelVersion, PredictiveModel

    computed = "Computed from features and aggregates, never from a name or an address"
    for model in (ModelVersion, Cluster, PredictiveModel, LifetimeModel):
        personal_data_mentions_exempt(model, reason=computed)
    personal_data_mentions_exempt(
        RfmRun, fields=["moves", "thresholds", "classes"], reason=computed
    )
    personal_data_mentions_exempt(RfmRun, fields=["trigger"], reason="A code")
    personal_data_mentions_exempt(
        MLSegment, fields=["features", "attribute_keys"], reason="Feature names"
    )
    personal_data_mentions_exempt(MLJob, fields=["options"], reason="Settings of the job")
    customer_panel_register(
        CustomerPanel(
            key="scores",
            title="Scores",
            template="segments/ml/_customer_panel.html",
            context=panels.customer_panel_context,
            order=45,
        )
    )
