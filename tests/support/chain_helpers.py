"""Builders for the chain-client tests: seed-004 Enrollments and orders by enrollmentId."""

from __future__ import annotations

import uuid


def enrollment(
    enrollment_id: str,
    *,
    eckid: str | None = None,
    begin: str = "2026-07-01",
    end: str | None = None,
    status: str = "active",
    **extra,
) -> dict:
    """A seed-004 Enrollment (the page's required fields; ``status`` any string)."""
    body = {
        "enrollmentId": enrollment_id,
        "student": {
            "userMasterIdentifier": eckid or f"https://ketenid.nl/201703/{enrollment_id.lower()}"
        },
        "enrollmentType": "study",
        "studyYear": 2,
        "schoolPeriod": "2026-2027",
        "beginDate": begin,
        "status": status,
        "dateCreated": "2026-06-01T10:00:00Z",
        "dateLastModified": "2026-06-01T10:00:00Z",
    }
    if end is not None:
        body["endDate"] = end
    body.update(extra)
    return body


def order_by_enrollments(enrollment_ids: list[str], *, order_id: str = "DO-E", **extra) -> dict:
    """A PUT /deliveryorders body of school-students given by enrollmentId (and any extra
    students in ``extra["students"]``)."""
    students = [{"enrollmentId": e} for e in enrollment_ids] + extra.pop("students", [])
    return {
        "deliveryOrderReferenceId": str(uuid.uuid4()),
        "deliveryOrder": {
            "deliveryOrderId": order_id,
            "contractId": extra.pop("contract_id", "C-E"),
            "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
            "productId": "9789001000011",
            "deliveryType": "school-students",
            "deliverySpecification": {"students": students},
            "startDate": "2026-08-01",
            "activationUntilDate": "2026-10-01",
            "expirationDate": "2027-07-31",
            **extra,
        },
    }
