"""What deals registers at start-up with the apps below it: its personal data, the deal panels
and timeline lines on customer and account pages, the follow-ups card on the dashboard, the
merge hook and the demo data. Nothing below deals imports it."""


def _deals_erase(rows) -> None:
    """A deal with an account stays the account's (the person leaves it); a deal with only the
    erased person goes, with its history."""
    rows.filter(account__isnull=False).update(customer=None)
    rows.filter(account__isnull=True).delete()


def personal_data_register_deals() -> None:
    from deals.models import (
        Activity,
        Deal,
        DealLine,
        ForecastTarget,
        Pipeline,
        Stage,
        StageChange,
        WinModel,
    )
    from privacy.mentions import personal_data_mentions_exempt, personal_data_mentions_register
    from privacy.registry import personal_data_exempt, personal_data_register

    personal_data_register(
        Deal,
        customer_path="customer",
        export_fields=[
            "id",
            "name",
            "amount",
            "currency",
            "expected_close_date",
            "stage_id",
            "source",
            "next_step",
            "lost_reason",
            "created_at",
            "closed_at",
        ],
        erase=_deals_erase,
        category="Deals",
        purpose="Selling to the customer",
        retention="While the deal is worked on and for the sales history",
        description="A deal with an account stays the account's without the person; others go.",
    )
    personal_data_register(
        Activity,
        customer_path="customer",
        export_fields=["id", "kind", "subject", "body", "occurred_at", "due_date", "done"],
        erase="delete",
        category="Sales activities",
        purpose="Calls, meetings and emails with the customer",
        retention="While the customer is served",
    )
    personal_data_exempt(StageChange, reason="Stage moves of a deal: no data about the person")
    personal_data_exempt(DealLine, reason="Products and prices on a deal")
    personal_data_mentions_register(Deal, fields=["name", "next_step", "lost_reason", "source"])
    personal_data_mentions_register(Activity, fields=["subject", "body"])
    personal_data_mentions_exempt(Deal, fields=["currency"], reason="A currency code")
    personal_data_mentions_exempt(
        WinModel,
        fields=["message", "metrics", "typical"],
        reason="A model's figures and the reason it was refused or not used: no person",
    )
    personal_data_mentions_exempt(ForecastTarget, fields=["currency"], reason="A currency code")
    personal_data_mentions_exempt(Pipeline, fields=["name"], reason="The name of a sales process")
    personal_data_mentions_exempt(Stage, fields=["name"], reason="The name of a sales stage")


def customer_hooks_register() -> None:
    from customers.registry import (
        AccountPanel,
        CustomerPanel,
        account_panel_register,
        customer_panel_register,
        merge_hook_register,
        timeline_source_register,
    )
    from deals import panels

    customer_panel_register(
        CustomerPanel(
            key="deals",
            title="Deals",
            template="deals/_panel.html",
            context=panels.customer_panel_context,
            order=20,
        )
    )
    account_panel_register(
        AccountPanel(
            key="deals",
            title="Deals",
            template="deals/_panel.html",
            context=panels.account_panel_context,
            order=20,
        )
    )
    timeline_source_register("deals", panels.customer_timeline)
    merge_hook_register(panels.deals_merge_hook)


def dashboard_cards_register() -> None:
    from crm.dashboard import DashboardCard, dashboard_card_register
    from crm.roles import Role
    from deals.panels import dashboard_follow_ups_context

    dashboard_card_register(
        DashboardCard(
            key="deals-follow-ups",
            template="deals/_dashboard_follow_ups.html",
            context=dashboard_follow_ups_context,
            roles=(Role.SALES,),
            order=5,
        )
    )


def register() -> None:
    personal_data_register_deals()
    customer_hooks_register()
    dashboard_cards_register()

    from deals.bulk import deals_bulk_register

    deals_bulk_register()

    from crm.demo.seeding import demo_step_register
    from deals.demo import demo_deals_seed

    demo_step_register("deals", demo_deals_seed)
