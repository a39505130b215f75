"""Endpoints of the chain that another component provides: the hub answers 405 to every
method (seeds 000 and 001: "The Aanspraakmanager should give a 405 HTTP status as result
when called")."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema

from .errors import json_error
from .schema import error_responses
from .views import HubAPIView


class ProvidedElsewhereView(HubAPIView):
    """Answers every method with 405 and a StatusResponse naming the provider. ``Allow`` is
    empty: the hub allows no method on this resource (RFC 9110 §10.2.1). No token is needed:
    the answer is the same for everyone."""

    provider = "Licentieregistratie"
    authentication_classes: list = []
    permission_classes: list = []

    def dispatch(self, request, *args, **kwargs):
        response = json_error(
            405,
            f"Method {request.method} is not allowed: the {self.provider} is the provider of "
            f"{request.path}, not the Aanspraakmanager. Call the {self.provider} instead.",
        )
        response["Allow"] = ""
        return response


_DOC = dict(
    tags=["Licentieregistratie"],
    description="The Licentieregistratie is the provider of this endpoint; the "
    "Aanspraakmanager answers 405 to every method.",
    auth=[],
    request=None,
    responses=error_responses(
        405,
        descriptions={405: "Method not allowed - Licentieregistratie is provider of this endpoint"},
    ),
)


class UsageSchoolUserView(ProvidedElsewhereView):
    """``POST /usage/school/user`` (seed 000)."""

    @extend_schema(
        operation_id="get-usage-for-user-at-school", summary="Get Usage for User at School", **_DOC
    )
    def post(self, request):  # pragma: no cover - dispatch answers before any handler
        raise AssertionError("unreachable")


class UsageContractView(ProvidedElsewhereView):
    """``GET /usage/contracts/{id}`` (seed 001)."""

    @extend_schema(operation_id="get-usage-by-contract", summary="Get Usage by Contract", **_DOC)
    def get(self, request, id: str):  # pragma: no cover
        raise AssertionError("unreachable")
