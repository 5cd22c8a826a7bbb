"""Every refusal of the API has one shape, whichever app refuses: `{"field": ["message"]}`, with
`non_field_errors` for what concerns the request as a whole, as DRF answers a serializer."""

import pytest
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.test import override_settings
from django.urls import path
from rest_framework.permissions import AllowAny
from rest_framework.test import APIClient
from rest_framework.views import APIView

from privacy.models import RequestStatus
from tests.privacy.factories import DataSubjectRequestFactory
from tests.segments.factories import SegmentFactory

pytestmark = pytest.mark.django_db


class _Refusing(APIView):
    """A view whose service refuses with the error given in the query string."""

    permission_classes = [AllowAny]
    authentication_classes = []
    errors = {
        "message": DjangoValidationError("The campaign has no variant."),
        "list": DjangoValidationError(["First problem.", "Second problem."]),
        "fields": DjangoValidationError({"name": "required", "share": ["must be at least 1"]}),
        "all": DjangoValidationError({NON_FIELD_ERRORS: ["These settings conflict."]}),
    }

    def post(self, request):
        raise self.errors[request.query_params["error"]]


urlpatterns = [path("refusing/", _Refusing.as_view())]


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize(
    ("error", "body"),
    [
        ("message", {"non_field_errors": ["The campaign has no variant."]}),
        ("list", {"non_field_errors": ["First problem.", "Second problem."]}),
        ("fields", {"name": ["required"], "share": ["must be at least 1"]}),
        ("all", {"non_field_errors": ["These settings conflict."]}),
    ],
)
def test_a_services_refusal_is_a_400_shaped_like_a_serializers(error, body):
    response = APIClient().post(f"/refusing/?error={error}", {}, format="json")

    assert response.status_code == 400
    assert response.json() == body


def test_a_refused_rule_names_only_the_rule_field(api_client_for, marketing_user):
    api = api_client_for(marketing_user)
    rule = {"all": [{"field": "age", "op": "gt", "value": "old"}]}
    segment = SegmentFactory()

    answers = [
        api.post("/api/segments/preview/", {"rule": rule}, format="json"),
        api.post("/api/segments/", {"name": "Bad", "rule": rule}, format="json"),
        api.patch(f"/api/segments/{segment.pk}/", {"rule": rule}, format="json"),
    ]

    for response in answers:
        assert response.status_code == 400
        assert response.json() == {"rule": ["all[0].value: expected a whole number"]}


def test_a_refused_data_request_change_names_the_field(api_client_for, privacy_user):
    dsr = DataSubjectRequestFactory(status=RequestStatus.COMPLETED)

    response = api_client_for(privacy_user).post(
        f"/api/data-requests/{dsr.pk}/extend/", {"reason": "More time"}, format="json"
    )

    assert response.status_code == 400
    [(field, messages)] = response.json().items()
    assert field in ("status", "extended") and len(messages) == 1
