from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"

    def ready(self):
        from django.db.models import Q

        from campaigns import (
            checks,  # noqa: F401 (registers the deploy checks)
            panels,
        )
        from campaigns.models import Campaign, MessageEvent, PromotionCode, Send, Variant
        from campaigns.services import sends_cancel_for_customer
        from campaigns.tracking import EVENT_TYPES
        from customers.registry import timeline_source_register
        from privacy.mentions import personal_data_mentions_register
        from privacy.registry import personal_data_register

        personal_data_register(
            Send,
            customer_path="customer",
            export_fields=[
                "id",
                "campaign_id",
                "variant_id",
                "is_holdout",
                "status",
                "reason",
                "created_at",
                "sent_at",
            ],  # fmt: skip
            erase=sends_cancel_for_customer,
            category="Marketing messages",
            purpose="Sending campaigns the person consented to; measuring their effect",
            retention="While the campaign's report is kept; pending sends are cancelled on erasure",
        )
        personal_data_register(
            PromotionCode,
            customer_path="customer",
            export_fields=["id", "promotion_id", "code", "created_at"],
            erase="delete",
            category="Promotion codes",
            purpose="Personal discount codes sent in campaigns",
            retention="Until the promotion ends",
        )
        personal_data_register(
            MessageEvent,
            customer_path="send__customer",
            export_fields=["id", "send_id", "kind", "at", "url"],
            erase="delete",
            category="Message opens, clicks and unsubscribes",
            purpose="Campaign reports",
            retention="While the campaign's report is kept",
        )
        # A mail server's refusal quotes the address it refused: in the person's own sends only
        # (the sends table is the largest there is), and in any provider report.
        personal_data_mentions_register(Send, fields=["reason"], customer_path="customer")
        personal_data_mentions_register(MessageEvent, fields=["detail"])
        personal_data_mentions_register(Campaign, fields=["name", "goal"])
        personal_data_mentions_register(Variant, fields=["subject", "text", "html"])
        from campaigns.models import Promotion
        from privacy.mentions import personal_data_mentions_exempt

        personal_data_mentions_exempt(
            Campaign,
            fields=["time_zone", "webhook_url", "webhook_secret", "from_email", "exclusions"],
            reason="Settings and counts; the sender is staff",
        )
        personal_data_mentions_exempt(Variant, fields=["name"], reason="An A/B label")
        personal_data_mentions_exempt(Promotion, reason="Codes")
        personal_data_mentions_exempt(PromotionCode, reason="The person's codes are deleted")
        personal_data_mentions_exempt(
            Send, fields=["provider_message_id"], reason="Blanked on the person's sends"
        )
        personal_data_mentions_exempt(
            MessageEvent, fields=["url"], reason="A link of the message; the person's are deleted"
        )
        # The opens, clicks, ... recorded by tracking: the panel shows them with the campaign.
        tracked = Q(type__in=EVENT_TYPES.values(), properties__has_key="send")
        timeline_source_register("campaigns", panels.customer_timeline, shows_events=tracked)

        from campaigns.dashboard import dashboard_campaign_results, dashboard_upcoming_sends
        from crm.dashboard import DashboardCard, dashboard_card_register
        from crm.roles import Role

        dashboard_card_register(
            DashboardCard(
                key="campaign-results",
                template="campaigns/_dashboard_results.html",
                context=dashboard_campaign_results,
                roles=(Role.MARKETING,),
                order=20,
                wide=True,
            )
        )
        dashboard_card_register(
            DashboardCard(
                key="upcoming-sends",
                template="campaigns/_dashboard_upcoming.html",
                context=dashboard_upcoming_sends,
                roles=(Role.MARKETING,),
                order=32,
            )
        )

        from privacy.registry import record_names_register

        record_names_register(
            "campaign",
            lambda ids: dict(Campaign.objects.filter(pk__in=ids).values_list("pk", "name")),
        )
