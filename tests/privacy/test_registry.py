import pytest
from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps

from customers.models import Customer
from privacy.registry import (
    personal_data_file_fields_uncovered,
    personal_data_files_register,
    personal_data_register,
    personal_data_unregister,
    personal_data_unregistered,
)


def test_every_model_with_a_foreign_key_path_to_customer_is_registered():
    assert personal_data_unregistered() == [], (
        "Register these models with privacy.registry.personal_data_register() in their app's "
        "AppConfig.ready(), so exports and erasures cover them"
    )


@isolate_apps("privacy")
def test_the_check_fails_for_a_new_model_linked_to_customers_until_it_is_registered():
    class LoyaltyCard(models.Model):
        customer = models.ForeignKey(Customer, on_delete=models.CASCADE)
        number = models.CharField(max_length=20)

        class Meta:
            app_label = "privacy"

        def __str__(self) -> str:
            return self.number

    class LoyaltyStamp(models.Model):  # linked only through LoyaltyCard
        card = models.ForeignKey(LoyaltyCard, on_delete=models.CASCADE)

        class Meta:
            app_label = "privacy"

        def __str__(self) -> str:
            return str(self.pk)

    candidates = [*apps.get_models(include_auto_created=True), LoyaltyCard, LoyaltyStamp]

    assert personal_data_unregistered(candidates) == ["privacy.loyaltycard", "privacy.loyaltystamp"]

    personal_data_register(LoyaltyCard, category="Loyalty cards")
    personal_data_register(LoyaltyStamp, customer_path="card__customer", category="Loyalty stamps")
    try:
        assert personal_data_unregistered(candidates) == []
    finally:
        personal_data_unregister(LoyaltyCard)
        personal_data_unregister(LoyaltyStamp)


def test_registering_with_an_unknown_erase_mode_or_field_is_refused():
    with pytest.raises(ValueError, match="erase"):
        personal_data_register(Customer, customer_path="", erase="shred")
    with pytest.raises(ValueError, match="unknown fields"):
        personal_data_register(Customer, customer_path="", export_fields=["shoe_size"])


def test_every_stored_file_field_is_scrubbed_by_erasure():
    assert personal_data_file_fields_uncovered() == [], (
        "Register the files with privacy.registry.personal_data_files_register(covers=[...]) or "
        "give their model a callable eraser that deletes them, so erasures reach them"
    )


@isolate_apps("privacy")
def test_the_file_check_fails_for_a_new_stored_file_until_its_scrub_is_registered():
    class Attachment(models.Model):  # e.g. a scanned contract uploaded by staff
        upload = models.FileField(upload_to="attachments/")

        class Meta:
            app_label = "privacy"

        def __str__(self) -> str:
            return self.upload.name

    candidates = [*apps.get_models(include_auto_created=True), Attachment]

    assert personal_data_file_fields_uncovered(candidates) == ["privacy.attachment.upload"]

    personal_data_files_register(
        "attachments",
        scrub=lambda customer: 0,
        where="attachments/",
        covers=["privacy.attachment.upload"],
    )
    try:
        assert personal_data_file_fields_uncovered(candidates) == []
    finally:
        from privacy.registry import _files

        _files.pop("attachments")
