"""The API's rate limits, counted per client address as crm.client_address sees it (behind a
trusted reverse proxy, the address the proxy reports; never one the client wrote itself)."""

from rest_framework.throttling import AnonRateThrottle, UserRateThrottle

from crm.client_address import client_address


class ClientAnonRateThrottle(AnonRateThrottle):
    def get_ident(self, request) -> str:
        return client_address(request) or "unknown"


class ClientUserRateThrottle(UserRateThrottle):
    def get_ident(self, request) -> str:
        return client_address(request) or "unknown"
