from django.apps import AppConfig


class InsightsConfig(AppConfig):
    name = "insights"
    verbose_name = "Insights"

    def ready(self) -> None:
        from campaigns.links import message_link_register
        from insights.models import CustomerSatisfaction, KpiRefresh, KpiSnapshot, Survey
        from insights.services.surveys import SURVEY_SALT
        from privacy.mentions import personal_data_mentions_exempt, personal_data_mentions_register
        from privacy.registry import personal_data_register

        # Every survey message carries {{ links.survey }}: the send id signed with our salt.
        message_link_register(name="survey", url_name="insights:survey_answer", salt=SURVEY_SALT)

        # The answers themselves are behaviour events (exported and erased with the customer's
        # events, their comments searched for mentions of others); the latest scores are here.
        personal_data_register(
            CustomerSatisfaction,
            customer_path="customer",
            erase="delete",
            category="Satisfaction survey scores",
            purpose="Measuring satisfaction per segment; targeting by the latest answer",
            retention="Until the customer answers again or is erased",
        )
        personal_data_mentions_exempt(
            CustomerSatisfaction, reason="Scores and a class from a fixed list"
        )
        personal_data_mentions_register(Survey, fields=["name", "question"])
        personal_data_mentions_exempt(
            KpiSnapshot, reason="Counts and sums over groups of customers"
        )
        personal_data_mentions_register(KpiRefresh, fields=["message"])
