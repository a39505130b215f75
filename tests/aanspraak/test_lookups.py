"""``field__any``: the same rows as ``__in``, as one ``= ANY(array)`` parameter on PostgreSQL
(docs/decisions/0005-membership-as-any-array.md)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from entitlements.models import Entitlement
from tests.support.factories import make_order

pytestmark = pytest.mark.django_db


def test_any_finds_what_in_finds_with_one_array_parameter(registry):
    order = make_order(registry, 5)
    pks = sorted(order.entitlements.values_list("pk", flat=True))[:3]
    uuids = [
        str(u)
        for u in Entitlement.objects.filter(pk__in=pks).values_list("entitlement_id", flat=True)
    ]
    with CaptureQueriesContext(connection) as queries:
        by_pk = sorted(Entitlement.objects.filter(pk__any=pks).values_list("pk", flat=True))
        by_uuid = sorted(
            Entitlement.objects.filter(entitlement_id__any=uuids).values_list("pk", flat=True)
        )
        by_fk = Entitlement.objects.filter(delivery_order__any=[order.pk]).count()
    assert by_pk == by_uuid == pks
    assert by_fk == 5
    assert all("= ANY(" in q["sql"] and " IN (" not in q["sql"] for q in queries.captured_queries)


def test_any_of_nothing_is_nothing_and_other_types_fall_back_to_in(registry):
    make_order(registry, 2)
    assert not Entitlement.objects.filter(pk__any=[]).exists()
    with CaptureQueriesContext(connection) as queries:
        found = Entitlement.objects.filter(entitlement_type__any=["school-student"]).count()
    assert found == 2
    assert " IN (" in queries.captured_queries[0]["sql"]


def test_any_takes_plain_integers_as_they_are_and_prepares_everything_else(registry):
    order = make_order(registry, 3)
    pks = sorted(order.entitlements.values_list("pk", flat=True))
    as_given = [str(pk) for pk in pks[:2]]  # strings are prepared (int()) as __in does
    assert (
        sorted(Entitlement.objects.filter(pk__any=as_given).values_list("pk", flat=True))
        == (pks[:2])
    )
    assert Entitlement.objects.filter(pk__any={pks[0], pks[2]}).count() == 2
    assert Entitlement.objects.filter(pk__any=(pks[1],)).count() == 1
    with pytest.raises(ValueError):
        list(Entitlement.objects.filter(pk__any=["1}"]))
