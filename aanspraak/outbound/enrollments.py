"""Client of a school administration system's ``GET /enrollments/school/{id}`` (seed 004,
scope ``eduv.association``): the hub asks which student an ``enrollmentId`` stands for.

The school is named with ``orgMasterId`` (its OnderwijsaanbiederId), or, when it has none,
with ``orgId`` + ``orgIdType`` (its first secondary identifier). The answer is validated
against the page's Enrollment; the page's ``status`` enum is defective (it repeats
``enrollmentType``'s ``["study", "subject"]``), so any non-empty string is accepted there
(OneRoster's ``active`` / ``tobedeleted`` is what it means).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aanspraak.choices import UserIdType

from .client import Endpoint, endpoint_for_party
from .fetch import MalformedBody, fetch_json, need_object, need_string

SCOPE = "eduv.association"
ENROLLMENT_TYPES = ("study", "subject")
# OneRoster's status meaning "about to be deleted": such an enrollment is not active.
TO_BE_DELETED = "tobedeleted"


@dataclass(frozen=True)
class Enrollment:
    """The parts of a seed-004 Enrollment the hub uses (``raw`` keeps the whole object)."""

    enrollment_id: str
    student: dict  # a UserReference: userMasterIdentifier and/or userIds
    enrollment_type: str
    school_period: str
    begin_date: dt.date
    end_date: dt.date | None
    status: str
    raw: dict

    def inactive_reason(self, start: dt.date, until: dt.date) -> str | None:
        """Why this enrollment cannot carry an entitlement that is activatable over
        [``start``, ``until``) (None when it can). It can when its own [``beginDate``,
        ``endDate``) overlaps that window (seed 004: ``endDate`` exclusive; no endDate:
        open-ended), so a student who enrolls mid-period, before ``until``, is accepted.
        A window of one day (``start == until``) is taken as that day."""
        if self.status.strip().lower() == TO_BE_DELETED:
            return f"enrollment {self.enrollment_id} has status {self.status}"
        window_end = max(until, start + dt.timedelta(days=1))
        if self.begin_date >= window_end:
            return (
                f"enrollment {self.enrollment_id} begins {self.begin_date}, not before the "
                f"entitlement's activationUntilDate {until}"
            )
        if self.end_date is not None and self.end_date <= start:
            return (
                f"enrollment {self.enrollment_id} ended {self.end_date} (exclusive), not after "
                f"the entitlement's startDate {start}"
            )
        return None


def _date(obj: dict, key: str, path: str, *, required: bool) -> dt.date | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise MalformedBody(f"{path}.{key} is required (YYYY-MM-DD)")
        return None
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise MalformedBody(f"{path}.{key} must be a date YYYY-MM-DD")


def _student(value: Any, path: str) -> dict:
    obj = need_object(value, path)
    student: dict = {}
    master = need_string(obj, "userMasterIdentifier", path, required=False)
    if master is not None:
        student["userMasterIdentifier"] = master
    ids = obj.get("userIds")
    if ids is not None:
        if not isinstance(ids, list):
            raise MalformedBody(f"{path}.userIds must be a list")
        clean = []
        for i, item in enumerate(ids):
            p = f"{path}.userIds[{i}]"
            item = need_object(item, p)
            user_id = need_string(item, "userId", p)
            kind = item.get("userIdType")
            if kind not in UserIdType.values:
                raise MalformedBody(f"{p}.userIdType must be one of {', '.join(UserIdType.values)}")
            clean.append({"userId": user_id, "userIdType": kind})
        if clean:
            student["userIds"] = clean
    if not student:
        raise MalformedBody(f"{path} needs userMasterIdentifier or userIds")
    return student


def parse_enrollment(data: Any, expected_id: str | None = None) -> Enrollment:
    """Validate a seed-004 Enrollment; raises MalformedBody naming the field."""
    path = "enrollment"
    obj = need_object(data, path)
    enrollment_id = need_string(obj, "enrollmentId", path)
    assert enrollment_id is not None
    if expected_id is not None and enrollment_id != expected_id:
        raise MalformedBody(f"{path}.enrollmentId is {enrollment_id}, asked for {expected_id}")
    if "student" not in obj:
        raise MalformedBody(f"{path}.student is required")
    student = _student(obj["student"], f"{path}.student")
    enrollment_type = obj.get("enrollmentType")
    if enrollment_type not in ENROLLMENT_TYPES:
        raise MalformedBody(f"{path}.enrollmentType must be one of {', '.join(ENROLLMENT_TYPES)}")
    school_period = need_string(obj, "schoolPeriod", path)
    begin = _date(obj, "beginDate", path, required=True)
    end = _date(obj, "endDate", path, required=False)
    assert begin is not None
    if end is not None and end < begin:
        raise MalformedBody(f"{path}.endDate {end} is before beginDate {begin}")
    # The page's enum for status is a copy of enrollmentType's; accept any string.
    status = need_string(obj, "status", path)
    return Enrollment(
        enrollment_id=enrollment_id,
        student=student,
        enrollment_type=enrollment_type,
        school_period=school_period or "",
        begin_date=begin,
        end_date=end,
        status=status or "",
        raw=obj,
    )


def school_params(school) -> dict:
    """The query naming the school: ``orgMasterId``, else ``orgId`` + ``orgIdType`` of its
    first secondary identifier (by id, so the choice is stable)."""
    if school.organisation_master_identifier:
        return {"orgMasterId": school.organisation_master_identifier}
    first = school.organisation_ids.order_by("id").first()
    if first is None:
        return {}
    return {"orgId": first.organisation_id, "orgIdType": first.organisation_id_type}


def administration_endpoint(party) -> Endpoint:
    """The Endpoint of a school's administration party, asking tokens for its scope."""
    return dataclasses.replace(endpoint_for_party(party), scope=SCOPE)


def get_enrollment(endpoint: Endpoint, enrollment_id: str, params: dict) -> Enrollment:
    """``GET /enrollments/school/{enrollment_id}?<params>``: the validated Enrollment.
    Raises ChainCallError (see aanspraak.outbound.fetch for the kinds)."""
    return fetch_json(
        endpoint,
        f"enrollments/school/{quote(enrollment_id, safe='')}",
        lambda data: parse_enrollment(data, enrollment_id),
        params=params,
        what=f"enrollment {enrollment_id} at {endpoint.name or endpoint.base_url}",
    )
