from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"

    def ready(self):
        from customers.registry import (
            CustomerPanel,
            customer_panel_register,
            timeline_source_register,
        )
        from privacy.registry import audience_provider_register, personal_data_register
        from segments import panels
        from segments.models import Membership, MembershipChange

        personal_data_register(
            Membership,
            customer_path="customer",
            erase="delete",
            category="Segment membership",
            purpose="Marketing segmentation",
            retention="While the customer matches the segment",
        )
        personal_data_register(
            MembershipChange,
            customer_path="customer",
            erase="delete",
            category="Segment membership history",
            purpose="Marketing segmentation (size and churn over time)",
            retention="While the segment exists",
        )
        from django.db.models import CharField, Value
        from django.db.models.functions import Cast, Concat

        from privacy.mentions import personal_data_mentions_exempt, personal_data_mentions_register
        from segments.erasure import segment_rules_mentions_erase
        from segments.models import RefreshRun, Segment

        personal_data_mentions_register(
            Segment,
            fields=["name", "description", "slug"],
            # A slug made from a name that names the person: a neutral one, still unique.
            blank={"slug": Concat(Value("segment-"), Cast("pk", output_field=CharField()))},
        )
        personal_data_mentions_exempt(RefreshRun, fields=["task_id"], reason="A task id")
        personal_data_mentions_register(
            Segment,
            fields=["rule"],
            edit=segment_rules_mentions_erase,
            description="A rule's values naming the person leave the rule",
        )
        personal_data_mentions_register(RefreshRun, fields=["message"])
        audience_provider_register(
            "segment",
            label="Segment",
            customers=panels.segment_audience,
            choices=panels.segment_choices,
        )
        customer_panel_register(
            CustomerPanel(
                key="segments",
                title="Segments",
                template="segments/_customer_panel.html",
                context=panels.customer_panel_context,
                order=40,
            )
        )
        timeline_source_register("segments", panels.customer_timeline)

        from customers.registry import marks_listener_register
        from segments.realtime import memberships_update_queue

        marks_listener_register(memberships_update_queue)

        from crm.demo.seeding import demo_step_register
        from segments.demo import demo_segments_seed

        demo_step_register("segments", demo_segments_seed)

        from segments.bulk import segments_bulk_register

        segments_bulk_register()

        from segments.ml.registrations import register as ml_register

        ml_register()

        from crm.dashboard import DashboardCard, dashboard_card_register
        from crm.roles import Role
        from segments.dashboard import dashboard_segment_growth

        dashboard_card_register(
            DashboardCard(
                key="segment-growth",
                template="segments/_dashboard_growth.html",
                context=dashboard_segment_growth,
                roles=(Role.MARKETING,),
                order=30,
            )
        )

        from privacy.registry import record_names_register

        def segment_names(ids: set[int]) -> dict[int, str]:
            return dict(Segment.objects.filter(pk__in=ids).values_list("pk", "name"))

        record_names_register("segment", segment_names)
        record_names_register("segment_members", segment_names)
