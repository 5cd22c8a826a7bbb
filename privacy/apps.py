from django.apps import AppConfig
from django.core import checks


class PrivacyConfig(AppConfig):
    name = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from privacy.registrations import (
            customer_hooks_register,
            dashboard_cards_register,
            personal_data_files_register_builtin,
            personal_data_mentions_register_builtin,
            personal_data_register_builtin,
        )

        personal_data_register_builtin()
        personal_data_files_register_builtin()
        personal_data_mentions_register_builtin()
        customer_hooks_register()
        dashboard_cards_register()
        from privacy.registrations import customer_names
        from privacy.registry import record_names_register

        record_names_register("customer", customer_names)
        checks.register(personal_data_check)


def personal_data_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn at start-up about a model linked to customers that the personal-data registry misses."""
    from privacy.mentions import personal_data_text_fields_undecided
    from privacy.registry import personal_data_file_fields_uncovered, personal_data_unregistered

    return (
        [
            checks.Warning(
                f"{label} has a foreign key path to Customer but is not in the personal-data registry.",
                hint="Call privacy.registry.personal_data_register() from its AppConfig.ready().",
                id="privacy.W001",
            )
            for label in personal_data_unregistered()
        ]
        + [
            checks.Warning(
                f"{name} stores files that no erasure scrubs.",
                hint="Call privacy.registry.personal_data_files_register(..., covers=[...]).",
                id="privacy.W002",
            )
            for name in personal_data_file_fields_uncovered()
        ]
        + [
            checks.Warning(
                f"{name} holds text that may mention a customer, and no erasure looks at it.",
                hint=(
                    "Call privacy.mentions.personal_data_mentions_register(...) or, when it cannot "
                    "name anyone, personal_data_mentions_exempt(..., reason=...)."
                ),
                id="privacy.W003",
            )
            for name in personal_data_text_fields_undecided()
        ]
    )
