from collections.abc import Iterator

import pytest
from django.core import mail

from tests.campaigns.factories import (
    CampaignFactory,
    VariantFactory,
    consent_grant_all,
    members_add,
)
from tests.campaigns.servers import Receiver, SmtpServer
from tests.customers.factories import CustomerFactory
from tests.segments.factories import StaticSegmentFactory


@pytest.fixture(autouse=True)
def _campaign_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    settings.CAMPAIGNS_SITE_URL = "http://testserver"
    settings.CAMPAIGNS_PROVIDER_SECRET = "provider-secret"
    settings.CAMPAIGNS_RATE_PER_SECOND = 0
    settings.CELERY_TASK_ALWAYS_EAGER = True
    mail.outbox = []


@pytest.fixture
def launch(django_capture_on_commit_callbacks, marketing_user):
    """Launch a campaign and run what it queues on commit (delivery), as a worker would."""
    from campaigns.services import campaign_launch

    def run(campaign, actor=None):
        with django_capture_on_commit_callbacks(execute=True):
            return campaign_launch(campaign=campaign, actor=actor or marketing_user)

    return run


@pytest.fixture
def segment():
    return StaticSegmentFactory(name="Newsletter readers")


@pytest.fixture
def consenting_members(segment):
    customers = CustomerFactory.create_batch(5)
    members_add(segment, customers)
    consent_grant_all(customers)
    return customers


@pytest.fixture
def campaign(segment, marketing_user):
    campaign = CampaignFactory(created_by=marketing_user)
    campaign.target_segments.add(segment)
    VariantFactory(campaign=campaign, name="A")
    return campaign


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpServer]:
    server = SmtpServer()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    server.controller.start()
    try:
        yield server
    finally:
        server.controller.stop()


@pytest.fixture
def receiver():
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()
