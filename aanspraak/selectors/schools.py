"""The one school lookup: the school a SchoolReference names (docs/api.md, docs/registry.md).

Intake resolves an order's buyer with it and the registry loader matches a file's schools
with it, so an identifier means the same school everywhere."""

from __future__ import annotations

from collections.abc import Mapping

from django.db.models import Q

from aanspraak.models import School


class AmbiguousSchool(Exception):
    """The identifiers of one reference name different schools."""


def find_school(ref: Mapping) -> School | None:
    """The school named by ``ref``, a SchoolReference (``organisationMasterIdentifier``
    and/or ``organisationIds: [{organisationId, organisationIdType}]``, values as strings): the
    school with that master identifier or any of those secondary identifiers, with its
    identifiers prefetched (``School.reference()`` reads them). None if none matches; raises
    AmbiguousSchool if the identifiers name more than one school."""
    query = Q()
    master = ref.get("organisationMasterIdentifier")
    if master is not None:
        query |= Q(organisation_master_identifier=master)
    for oid in ref.get("organisationIds") or ():
        query |= Q(
            organisation_ids__organisation_id=oid["organisationId"],
            organisation_ids__organisation_id_type=oid["organisationIdType"],
        )
    if not query:
        return None  # an empty Q() would match every school
    schools = list(School.objects.filter(query).distinct().prefetch_related("organisation_ids")[:2])
    if len(schools) > 1:
        raise AmbiguousSchool("the identifiers given name different schools")
    return schools[0] if schools else None
