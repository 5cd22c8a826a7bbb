"""Email providers' tracking webhooks (django-anymail): the payloads Amazon SES (an SNS
notification), Mailgun, Postmark and SendGrid post, authenticated as each provider does it
(Mailgun's HMAC signature, SendGrid's ECDSA signature, basic auth for SES and Postmark), are
recorded on the send; a complaint or an unsubscribe withdraws consent; a forged post changes
nothing."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from campaigns.models import MessageEvent, Send
from campaigns.results import campaign_report
from privacy.models import ConsentState, ConsentStatus

pytestmark = pytest.mark.django_db

BASIC = "anymail:webhook-secret-for-tests"
MAILGUN_KEY = "mailgun-webhook-signing-key"


@pytest.fixture
def anymail_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": BASIC, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_KEY}
    return settings.ANYMAIL


@pytest.fixture
def delivered(launch, campaign, consenting_members, anymail_settings):
    """The campaign delivered to its five members; each send keeps the provider's message id
    (as the provider's backend recorded it when it accepted the message)."""
    launch(campaign)
    sends = list(Send.objects.filter(campaign=campaign, status=Send.Status.SENT).order_by("pk"))
    assert len(sends) == 5
    return sends


def _provider_id(send: Send, message_id: str) -> Send:
    Send.objects.filter(pk=send.pk).update(provider_message_id=message_id)
    send.refresh_from_db()
    return send


def _basic(credentials: str = BASIC) -> dict:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(credentials.encode()).decode()}


def _withdrawn(send: Send) -> bool:
    return ConsentState.objects.filter(
        customer_id=send.customer_id, purpose_id="email_marketing", state=ConsentStatus.WITHDRAWN
    ).exists()


def _kinds(send: Send) -> set[str]:
    return set(send.events.values_list("kind", flat=True))


# Amazon SES: an SNS notification whose Message is the SES event, behind basic auth.


def _sns(ses_event: dict) -> tuple[str, dict]:
    sns_id = str(uuid.uuid4())
    body = {
        "Type": "Notification",
        "MessageId": sns_id,
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:ses-events",
        "Subject": "Amazon SES Email Event Notification",
        "Message": json.dumps(ses_event),
        "Timestamp": "2024-03-20T22:48:55.512Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLElDMXvB8r9R83tGoNn0ecwd5UjllzsvSvbItzfaMpN2nk5HVSw7XnOn",
        "SigningCertURL": "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }
    headers = {
        "HTTP_X_AMZ_SNS_MESSAGE_TYPE": "Notification",
        "HTTP_X_AMZ_SNS_MESSAGE_ID": sns_id,
        "HTTP_X_AMZ_SNS_TOPIC_ARN": body["TopicArn"],
    }
    return json.dumps(body), headers


def _ses_mail(send: Send) -> dict:
    return {
        "timestamp": "2024-03-20T22:48:50.000Z",
        "source": "Shop <news@shop.example>",
        "sendingAccountId": "123456789012",
        "messageId": send.provider_message_id,
        "destination": [send.customer.email],
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": "Shop <news@shop.example>"},
            {"name": "To", "value": send.customer.email},
            {"name": "X-Metadata", "value": json.dumps({"crm_send": str(send.pk)})},
        ],
        "commonHeaders": {"from": ["Shop <news@shop.example>"], "to": [send.customer.email]},
        "tags": {"ses:configuration-set": ["campaigns"]},
    }


def test_amazon_ses_bounce_and_complaint_are_recorded_and_the_complaint_withdraws_consent(
    client, delivered
):
    bounced = _provider_id(delivered[0], "0100018e5e1f0b3a-aaaaaaaa-1111-4a4a-9b9b-000000000001")
    complained = _provider_id(delivered[1], "0100018e5e1f0b3a-bbbbbbbb-2222-4a4a-9b9b-000000000002")
    bounce = {
        "eventType": "Bounce",
        "bounce": {
            "bounceType": "Permanent",
            "bounceSubType": "General",
            "bouncedRecipients": [
                {
                    "emailAddress": bounced.customer.email,
                    "action": "failed",
                    "status": "5.1.1",
                    "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                }
            ],
            "timestamp": "2024-03-20T22:48:55.000Z",
            "feedbackId": "0100018e5e1f0b3a-feedback-1",
            "reportingMTA": "dsn; e226-55.smtp-out.us-east-1.amazonses.com",
        },
        "mail": _ses_mail(bounced),
    }
    complaint = {
        "eventType": "Complaint",
        "complaint": {
            "complainedRecipients": [{"emailAddress": complained.customer.email}],
            "timestamp": "2024-03-20T22:50:02.669Z",
            "feedbackId": "0100018e5e1f0b3a-feedback-2",
            "userAgent": "Yahoo!-Mail-Feedback/2.0",
            "complaintFeedbackType": "abuse",
            "arrivalDate": "2024-03-20T22:50:02.669Z",
        },
        "mail": _ses_mail(complained),
    }

    for event in (bounce, complaint):
        body, headers = _sns(event)
        response = client.post(
            "/campaigns/hooks/amazon_ses/tracking/",
            body,
            content_type="text/plain; charset=UTF-8",
            **headers,
            **_basic(),
        )
        assert response.status_code == 200, response.content

    assert _kinds(bounced) == {MessageEvent.Kind.BOUNCE}
    assert "550 5.1.1 user unknown" in bounced.events.get().detail
    assert _kinds(complained) == {MessageEvent.Kind.COMPLAINT, MessageEvent.Kind.UNSUBSCRIBE}
    assert _withdrawn(complained) and not _withdrawn(bounced)
    totals = campaign_report(campaign=bounced.campaign)["totals"]
    assert (totals["bounced"], totals["complained"], totals["delivered"]) == (1, 1, 4)


def test_amazon_ses_without_the_webhook_secret_is_refused(client, delivered):
    send = _provider_id(delivered[0], "0100018e5e1f0b3a-cccccccc-3333-4a4a-9b9b-000000000003")
    complaint = {
        "eventType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": send.customer.email}]},
        "mail": _ses_mail(send),
    }
    body, headers = _sns(complaint)

    wrong = client.post(
        "/campaigns/hooks/amazon_ses/tracking/",
        body,
        content_type="text/plain",
        **headers,
        **_basic("anymail:guessed"),
    )
    missing = client.post(
        "/campaigns/hooks/amazon_ses/tracking/", body, content_type="text/plain", **headers
    )

    assert wrong.status_code == 400
    assert missing.status_code == 401  # SNS is told to authenticate
    assert not send.events.exists() and not _withdrawn(send)


# Mailgun: the JSON webhook with its HMAC-SHA256 signature block.


def _mailgun(event_data: dict, *, key: str = MAILGUN_KEY) -> str:
    timestamp = str(int(time.time()))
    token = uuid.uuid4().hex + uuid.uuid4().hex[:18]
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256)
    return json.dumps(
        {
            "signature": {
                "timestamp": timestamp,
                "token": token,
                "signature": signature.hexdigest(),
            },
            "event-data": event_data,
        }
    )


def _mailgun_event(send: Send, event: str, **extra) -> dict:
    return {
        "id": uuid.uuid4().hex[:22],
        "timestamp": time.time(),
        "log-level": "error" if event == "failed" else "info",
        "event": event,
        "recipient": send.customer.email,
        "recipient-domain": send.customer.email.split("@")[1],
        "tags": [],
        "campaigns": [],
        "user-variables": {"crm_send": str(send.pk)},
        "message": {
            "headers": {
                "to": send.customer.email,
                # Mailgun reports the Message-ID without its angle brackets.
                "message-id": send.provider_message_id.strip("<>"),
                "from": "Shop <news@shop.example>",
                "subject": "Hello",
            },
            "attachments": [],
            "size": 2414,
        },
        **extra,
    }


def test_mailgun_events_signed_with_the_signing_key_are_recorded(client, delivered):
    failed, complained, opened, clicked, left = (
        _provider_id(send, f"<20240320224855.1.{n}@mg.shop.example>")
        for n, send in enumerate(delivered)
    )
    events = [
        _mailgun_event(
            failed,
            "failed",
            severity="permanent",
            reason="bounce",
            **{
                "delivery-status": {
                    "code": 550,
                    "message": "5.1.1 The email account that you tried to reach does not exist",
                    "description": "",
                    "attempt-no": 1,
                }
            },
        ),
        _mailgun_event(complained, "complained"),
        _mailgun_event(opened, "opened", ip="203.0.113.7"),
        _mailgun_event(clicked, "clicked", url="https://shop.example/sale"),
        _mailgun_event(left, "unsubscribed"),
    ]

    for event in events:
        response = client.post(
            "/campaigns/hooks/mailgun/tracking/",
            _mailgun(event),
            content_type="application/json",
            **_basic(),  # in the URL given to Mailgun: https://anymail:...@crm.example/...
        )
        assert response.status_code == 200, response.content

    assert _kinds(failed) == {MessageEvent.Kind.BOUNCE}
    assert "does not exist" in failed.events.get().detail
    assert _kinds(complained) == {MessageEvent.Kind.COMPLAINT, MessageEvent.Kind.UNSUBSCRIBE}
    assert _kinds(opened) == {MessageEvent.Kind.OPEN}
    assert clicked.events.get().url == "https://shop.example/sale"
    assert _kinds(left) == {MessageEvent.Kind.UNSUBSCRIBE}
    assert [_withdrawn(s) for s in delivered] == [False, True, False, False, True]
    totals = campaign_report(campaign=failed.campaign)["totals"]
    assert (totals["opened"], totals["clicked"], totals["unsubscribed"]) == (1, 1, 2)


def test_mailgun_event_with_a_forged_signature_is_refused(client, delivered):
    send = _provider_id(delivered[0], "<20240320224855.1.9@mg.shop.example>")

    response = client.post(
        "/campaigns/hooks/mailgun/tracking/",
        _mailgun(_mailgun_event(send, "complained"), key="not-the-signing-key"),
        content_type="application/json",
        **_basic(),
    )

    assert response.status_code == 400
    assert not send.events.exists() and not _withdrawn(send)


def test_a_mailgun_event_found_by_the_send_id_it_carried(client, delivered):
    # A message whose provider id was not recorded (say it is unknown after a crash): the send
    # id the message carried as metadata finds it.
    send = _provider_id(delivered[0], "")

    event = _mailgun_event(send, "delivered")
    event["message"]["headers"]["message-id"] = "20240320224855.1.77@mg.shop.example"
    response = client.post(
        "/campaigns/hooks/mailgun/tracking/",
        _mailgun(event),
        content_type="application/json",
        **_basic(),
    )

    assert response.status_code == 200
    assert _kinds(send) == {MessageEvent.Kind.DELIVERED}


# Postmark: one JSON event per post, behind basic auth.


def _postmark_bounce(send: Send, record_type: str = "Bounce", type_: str = "HardBounce") -> dict:
    return {
        "RecordType": record_type,
        "MessageStream": "broadcast",
        "ID": 4323372036854775807,
        "Type": type_,
        "TypeCode": 1 if type_ == "HardBounce" else 512,
        "Name": "Hard bounce" if type_ == "HardBounce" else "Spam complaint",
        "Tag": "campaign",
        "MessageID": send.provider_message_id,
        "Metadata": {"crm_send": str(send.pk)},
        "ServerID": 23,
        "Description": "The server was unable to deliver your message (ex: unknown user, "
        "mailbox not found).",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": send.customer.email,
        "From": "news@shop.example",
        "BouncedAt": "2024-03-20T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": True,
        "Subject": "Hello",
    }


def test_postmark_events_behind_basic_auth_are_recorded(client, delivered):
    bounced, complained, opened, clicked, _other = (
        _provider_id(send, str(uuid.uuid4())) for send in delivered
    )
    common = {"MessageStream": "broadcast", "Tag": "campaign", "Metadata": {}}
    opened_event = {
        **common,
        "RecordType": "Open",
        "FirstOpen": True,
        "Recipient": opened.customer.email,
        "MessageID": opened.provider_message_id,
        "ReceivedAt": "2024-03-20T16:40:11.5131349Z",
        "Platform": "WebMail",
        "ReadSeconds": 5,
        "UserAgent": "Mozilla/5.0",
    }
    clicked_event = {
        **common,
        "RecordType": "Click",
        "ClickLocation": "HTML",
        "Recipient": clicked.customer.email,
        "MessageID": clicked.provider_message_id,
        "ReceivedAt": "2024-03-20T16:41:11.5131349Z",
        "OriginalLink": "https://shop.example/sale",
        "Platform": "Desktop",
        "UserAgent": "Mozilla/5.0",
    }
    for event in (
        _postmark_bounce(bounced),
        _postmark_bounce(complained, "SpamComplaint", "SpamComplaint"),
        opened_event,
        clicked_event,
    ):
        response = client.post(
            "/campaigns/hooks/postmark/tracking/",
            json.dumps(event),
            content_type="application/json",
            **_basic(),
        )
        assert response.status_code == 200, response.content

    assert _kinds(bounced) == {MessageEvent.Kind.BOUNCE}
    assert _kinds(complained) == {MessageEvent.Kind.COMPLAINT, MessageEvent.Kind.UNSUBSCRIBE}
    assert _withdrawn(complained) and not _withdrawn(bounced)
    assert _kinds(opened) == {MessageEvent.Kind.OPEN}
    assert clicked.events.get().url == "https://shop.example/sale"


def test_postmark_without_the_right_credentials_is_refused(client, delivered):
    send = _provider_id(delivered[0], str(uuid.uuid4()))
    body = json.dumps(_postmark_bounce(send, "SpamComplaint", "SpamComplaint"))

    response = client.post(
        "/campaigns/hooks/postmark/tracking/",
        body,
        content_type="application/json",
        **_basic("anymail:guessed"),
    )

    assert response.status_code == 400
    assert not send.events.exists() and not _withdrawn(send)


# SendGrid: a batch of events, signed with the Event Webhook's ECDSA key.


@pytest.fixture
def sendgrid_key(anymail_settings):
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    anymail_settings["SENDGRID_TRACKING_WEBHOOK_VERIFICATION_KEY"] = base64.b64encode(
        public
    ).decode()
    return key


def _sendgrid_post(client, key, events: list[dict]):
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return client.post(
        "/campaigns/hooks/sendgrid/tracking/",
        body,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=base64.b64encode(signature).decode(),
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=timestamp,
        **_basic(),
    )


def _sendgrid_event(send: Send, event: str, **extra) -> dict:
    return {
        "email": send.customer.email,
        "timestamp": int(time.time()),
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": ["campaign"],
        "sg_event_id": base64.b64encode(uuid.uuid4().bytes).decode(),
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "anymail_id": send.provider_message_id,
        "crm_send": str(send.pk),
        **extra,
    }


def test_sendgrid_signed_batch_is_recorded_at_once(client, delivered, sendgrid_key):
    bounced, complained, opened, clicked, delivered_one = (
        _provider_id(send, str(uuid.uuid4())) for send in delivered
    )

    response = _sendgrid_post(
        client,
        sendgrid_key,
        [
            _sendgrid_event(
                bounced,
                "bounce",
                reason="550 5.1.1 unknown recipient",
                status="5.1.1",
                type="bounce",
            ),  # fmt: skip
            _sendgrid_event(complained, "spamreport"),
            _sendgrid_event(opened, "open", useragent="Mozilla/5.0", ip="203.0.113.7"),
            _sendgrid_event(clicked, "click", url="https://shop.example/sale", url_offset={}),
            _sendgrid_event(delivered_one, "delivered", response="250 OK"),
        ],
    )

    assert response.status_code == 200, response.content
    assert _kinds(bounced) == {MessageEvent.Kind.BOUNCE}
    assert _kinds(complained) == {MessageEvent.Kind.COMPLAINT, MessageEvent.Kind.UNSUBSCRIBE}
    assert _withdrawn(complained)
    assert _kinds(opened) == {MessageEvent.Kind.OPEN}
    assert clicked.events.get().url == "https://shop.example/sale"
    assert _kinds(delivered_one) == {MessageEvent.Kind.DELIVERED}


def test_sendgrid_batch_with_a_forged_signature_is_refused(client, delivered, sendgrid_key):
    send = _provider_id(delivered[0], str(uuid.uuid4()))
    forger = ec.generate_private_key(ec.SECP256R1())

    response = _sendgrid_post(client, forger, [_sendgrid_event(send, "spamreport")])

    assert response.status_code == 400
    assert not send.events.exists() and not _withdrawn(send)


def test_a_provider_webhook_that_would_accept_unsigned_posts_is_not_served(
    client, delivered, settings
):
    settings.ANYMAIL = {}  # no basic-auth secret, no signing key
    send = _provider_id(delivered[0], str(uuid.uuid4()))
    body = json.dumps(_postmark_bounce(send, "SpamComplaint", "SpamComplaint"))

    postmark = client.post(
        "/campaigns/hooks/postmark/tracking/", body, content_type="application/json"
    )
    mailgun = client.post(
        "/campaigns/hooks/mailgun/tracking/",
        _mailgun(_mailgun_event(send, "complained")),
        content_type="application/json",
    )

    assert postmark.status_code == mailgun.status_code == 404
    assert not send.events.exists() and not _withdrawn(send)
