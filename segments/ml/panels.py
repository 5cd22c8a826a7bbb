"""The customer page panel: RFM class and scores, churn risk and expected value with reasons."""

from django.http import HttpRequest

from crm.roles import Role, user_has_role
from customers.models import Customer
from segments.ml.models import CustomerScore, PredictiveModel


def customer_panel_context(request: HttpRequest, customer: Customer) -> dict:
    score = CustomerScore.objects.filter(customer=customer).first()
    model = PredictiveModel.objects.filter(active=True).only("horizon_days").first()
    return {
        "score": score,
        "score_horizon": model.horizon_days if model else 90,
        "score_churn_pct": round(score.churn_risk * 100)
        if score and score.churn_risk is not None
        else None,
        "scores_linkable": user_has_role(request.user, Role.MARKETING),
    }
