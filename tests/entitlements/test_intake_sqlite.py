"""The embedded default (SQLite, no DATABASE_URL) stores delivery orders too: insert_rows
falls back from COPY to bulk_create."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.support.processes import ROOT

SCRIPT = """
from aanspraak.models import Party
from aanspraak.services.registry import load_registry, read_registry_file
from entitlements.models import Entitlement, EntitlementUrlStatus, OutboundMessage
from entitlements.intake import receive_delivery_order
load_registry(read_registry_file("aanspraak/simulation/demo-registry.yaml"))
seller = Party.objects.get(name="Demo Boekhandel")
order = {
    "deliveryOrderId": "DO-lite", "productId": "9789001000011",
    "buyer": {"school": {"organisationMasterIdentifier": "110A133"}},
    "startDate": "2026-08-01", "activationUntilDate": "2026-10-01",
}
students = [{"userMasterIdentifier": f"https://ketenid.nl/201703/{i}"} for i in range(20)]
receive_delivery_order(seller, {"deliveryOrderReferenceId": "r1", "deliveryOrder": {
    **order, "deliveryType": "school-students", "deliverySpecification": {"students": students}}})
receive_delivery_order(seller, {"deliveryOrderReferenceId": "r2", "deliveryOrder": {
    **order, "deliveryOrderId": "DO-codes", "deliveryType": "school-activationcodes",
    "deliverySpecification": {"quantity": 5}}})
e = Entitlement.objects.filter(delivery_order__delivery_order_id="DO-lite").order_by("id").first()
print(Entitlement.objects.count(), EntitlementUrlStatus.objects.count(),
      OutboundMessage.objects.count(), e.specification["user"]["userMasterIdentifier"],
      Entitlement.objects.exclude(activation_code=None).count())
"""


def test_intake_on_sqlite(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env["HUB_DATA_DIR"] = str(tmp_path / "data")
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=120)
    out = subprocess.run(
        [*manage, "shell", "-c", SCRIPT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    # 25 entitlements, one URL status each (one portal), 2 requests each + 2 confirmations.
    assert out.stdout.strip().splitlines()[-1].split() == [
        "25",
        "25",
        "52",
        "https://ketenid.nl/201703/0",
        "5",
    ]
