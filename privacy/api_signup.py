"""Public REST endpoint for signups (no login): the same rules as the signup page.

POST /api/signups/ with an email, optional names and the purposes; the answer is 202 with the
same message whatever happened, so it cannot tell whether the address was known. Submissions
are limited per client address like the page (429 past the limit).
"""

from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter

from crm.client_address import client_address
from privacy.models import ConsentWording
from privacy.signup import signup_allowed, signup_subscribe

ACCEPTED = {
    True: "Check the inbox of this address: every choice starts once its emailed link is "
    "confirmed.",
    False: "Thank you for signing up. If the address needs confirming, an email with a link "
    "is on its way.",
}


class SignupSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    last_name = serializers.CharField(max_length=100, required=False, allow_blank=True)
    purposes = serializers.ListField(
        child=serializers.CharField(max_length=50),
        allow_empty=False,
        help_text="Purpose codes among those the signup page offers.",
    )
    wordings = serializers.DictField(
        child=serializers.IntegerField(),
        required=False,
        help_text="{purpose code: id of the consent wording shown}; the current one when omitted.",
    )

    def validate_purposes(self, value):
        offered = list(settings.PRIVACY_SIGNUP_PURPOSES)
        unknown = [code for code in value if code not in offered]
        if unknown:
            raise serializers.ValidationError(
                f"Not offered: {', '.join(unknown)}. Choose among {', '.join(offered)}."
            )
        return list(dict.fromkeys(value))

    def validate(self, attrs):
        chosen = {}
        for code in attrs["purposes"]:
            wording_id = (attrs.get("wordings") or {}).get(code)
            wording = None
            if wording_id is not None:
                wording = ConsentWording.objects.filter(pk=wording_id, purpose_id=code).first()
                if wording is None:
                    raise serializers.ValidationError(
                        {"wordings": [f"{code}: {wording_id} is not a wording of this purpose."]}
                    )
            chosen[code] = wording
        attrs["chosen"] = chosen
        return attrs


class SignupViewSet(viewsets.GenericViewSet):
    """Public signup: subscribe an email to the purposes offered (double opt-in when set)."""

    serializer_class = SignupSerializer
    permission_classes = [AllowAny]
    authentication_classes = []  # public: no session, so no CSRF token either
    throttle_classes = []  # limited by privacy.signup, like the page

    @extend_schema(
        auth=[],
        responses={
            202: inline_serializer("SignupAccepted", {"detail": serializers.CharField()}),
            400: OpenApiResponse(description="A field is missing or wrong; the error names it."),
            429: OpenApiResponse(description="Too many signups from this client address."),
        },
    )
    def create(self, request, *args, **kwargs):
        client = client_address(request)
        if not signup_allowed(client=client):
            return Response(
                {"detail": "Too many signups from this address; try again later."},
                status=status.HTTP_429_TOO_MANY_REQUESTS,
            )
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        signup_subscribe(
            email=data["email"],
            first_name=data.get("first_name", ""),
            last_name=data.get("last_name", ""),
            purposes=data["chosen"],
            ip_address=client,
            site_url=f"{request.scheme}://{request.get_host()}",
        )
        return Response(
            {"detail": ACCEPTED[settings.PRIVACY_DOUBLE_OPT_IN]}, status=status.HTTP_202_ACCEPTED
        )


def register(router: DefaultRouter) -> None:
    router.register("signups", SignupViewSet, basename="signup")
