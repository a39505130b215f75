"""load_registry: idempotent, hashed secrets, clear errors, nothing half-loaded."""

import copy
import json

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aanspraak.models import Client, Consent, Party, Product, School
from aanspraak.services.registry import RegistryError, load_registry
from tests.support.factories import REGISTRY

pytestmark = pytest.mark.django_db


def test_load_creates_everything():
    report = load_registry(REGISTRY)
    assert report.created["party"] == 8
    assert Party.objects.get(name="Portal Zuid").portal_id == "portal-zuid"
    assert Party.objects.get(name="Uitgeverij Noord").roles == ["licensor"]
    assert Product.objects.get(product_id="9789001000011").licensor.name == "Uitgeverij Noord"
    noord = Client.objects.get(client_id="noord-lr")
    assert noord.scope_set == {"eduv.entitlement.licensor", "eduv.usage.licensor"}
    school = School.objects.get(organisation_master_identifier="110A133")
    assert school.administration.name == "SIS Example"
    assert {c.party.name for c in Consent.objects.filter(school=school)} == {
        "Portal Zuid",
        "Dashboard West",
    }


def test_client_secrets_are_stored_hashed():
    load_registry(REGISTRY)
    client = Client.objects.get(client_id="noord-lr")
    assert client.client_secret != "noord-lr-secret"
    assert "noord-lr-secret" not in client.client_secret
    from django.contrib.auth.hashers import check_password

    assert check_password("noord-lr-secret", client.client_secret)


def test_endpoint_secret_is_encrypted_at_rest():
    data = copy.deepcopy(REGISTRY)
    data["parties"][2]["endpoint"].update(
        tokenUrl="http://127.0.0.1:9101/oauth2/token", clientId="hub", clientSecret="s3cr3t-hub"
    )
    load_registry(data)
    with connection.cursor() as cursor:
        cursor.execute(
            "select endpoint_client_secret from aanspraak_party where name = %s",
            ["Uitgeverij Noord"],
        )
        stored = cursor.fetchone()[0]
    assert stored.startswith("fernet:") and "s3cr3t-hub" not in stored
    assert Party.objects.get(name="Uitgeverij Noord").endpoint_client_secret == "s3cr3t-hub"


def test_loading_twice_changes_nothing():
    data = copy.deepcopy(REGISTRY)
    data["parties"][2]["endpoint"].update(
        tokenUrl="http://127.0.0.1:9101/oauth2/token", clientId="hub", clientSecret="s3cr3t-hub"
    )
    load_registry(data)
    with CaptureQueriesContext(connection) as queries:
        report = load_registry(data)
    assert not report.changed
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in {"INSERT", "UPDATE", "DELETE"}]
    assert writes == []


def test_changes_are_applied_on_reload():
    load_registry(REGISTRY)
    data = copy.deepcopy(REGISTRY)
    data["parties"][2]["clients"][0]["clientSecret"] = "rotated"
    data["schools"][0]["consents"] = ["Portal Zuid"]
    report = load_registry(data)
    assert report.updated["client"] == 1
    from django.contrib.auth.hashers import check_password

    assert check_password("rotated", Client.objects.get(client_id="noord-lr").client_secret)
    school = School.objects.get(organisation_master_identifier="110A133")
    assert [c.party.name for c in Consent.objects.filter(school=school)] == ["Portal Zuid"]


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda d: d["parties"][0].update(roles=["wizard"]),
            "parties[0] (Boekhandel Oost).roles[0]",
        ),
        (lambda d: d["parties"][4].pop("portalId"), "parties[4] (Portal Zuid).portalId"),
        (
            lambda d: d["parties"][0]["clients"][0].update(scopes=["eduv.entitlement.licensor"]),
            "needs the party role licensor",
        ),
        (
            lambda d: d["parties"][0]["clients"][0].update(scopes=["eduv.nonsense"]),
            "unknown scope 'eduv.nonsense'",
        ),
        (lambda d: d["schools"][0].update(consents=["Nobody"]), "schools[0].consents[0]"),
        (lambda d: d["schools"][0].update(administration="Portal Zuid"), "school-admin"),
        (lambda d: d["parties"][3].update(products=["9789001000011"]), "also listed under"),
        (lambda d: d["parties"][0].update(colour="red"), "parties[0].colour: unknown key"),
        (lambda d: d["schools"].append({"name": "No id"}), "schools[2]: organisationMaster"),
        (
            lambda d: d["parties"][1]["clients"][0].update(clientId="oost-seller"),
            "'oost-seller' is also used by Boekhandel Oost",
        ),
    ],
)
def test_bad_file_names_the_key_and_writes_nothing(mutate, expected):
    data = copy.deepcopy(REGISTRY)
    mutate(data)
    with pytest.raises(RegistryError) as excinfo:
        load_registry(data)
    assert expected in str(excinfo.value)
    assert not Party.objects.exists()
    assert not Client.objects.exists()


def test_every_problem_at_once_with_its_full_path():
    data = copy.deepcopy(REGISTRY)
    data["parties"][2]["clients"][0]["scopes"].append("eduv.x")
    data["parties"][4]["endpoint"]["baseUrl"] = "ftp://portal"
    data["schools"][1]["organisationIds"][0]["organisationIdType"] = "ZIP"
    with pytest.raises(RegistryError) as excinfo:
        load_registry(data)
    assert excinfo.value.problems == [
        "parties[2] (Uitgeverij Noord).clients[0].scopes[2]: unknown scope 'eduv.x'",
        "parties[4] (Portal Zuid).endpoint.baseUrl: must be an http(s) URL",
        "schools[1].organisationIds[0].organisationIdType: one of OIE_CODE, BP_ID, DD_ID, AS_ID",
    ]


def test_yaml_numbers_are_read_as_identifiers():
    data = copy.deepcopy(REGISTRY)
    data["parties"][3]["products"] = [9789002000010]
    data["schools"][1]["organisationMasterIdentifier"] = 220244
    data["schools"][1]["organisationIds"][0]["organisationId"] = 2200
    load_registry(data)
    assert Product.objects.get(product_id="9789002000010").licensor.name == "Uitgeverij Berg"
    school = School.objects.get(organisation_master_identifier="220244")
    assert [o.organisation_id for o in school.organisation_ids.all()] == ["2200"]
    assert not load_registry(data).changed


def test_identifiers_of_two_schools_in_one_entry_are_refused():
    load_registry(REGISTRY)
    data = copy.deepcopy(REGISTRY)
    data["schools"][0]["organisationIds"] = [
        {"organisationId": "22BB", "organisationIdType": "BP_ID"}
    ]
    with pytest.raises(RegistryError, match=r"schools\[0\]: the identifiers given name different"):
        load_registry(data)


def test_nothing_half_loaded_when_a_write_fails(monkeypatch):
    from aanspraak.services import registry as registry_module

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(registry_module, "_upsert_school", boom)
    with pytest.raises(RuntimeError):
        load_registry(REGISTRY)
    assert not Party.objects.exists()


def test_command_reads_yaml_and_json(tmp_path, capsys):
    import yaml

    yaml_file = tmp_path / "registry.yaml"
    yaml_file.write_text(yaml.safe_dump(REGISTRY))
    call_command("load_registry", str(yaml_file))
    assert "party: 8 created" in capsys.readouterr().out
    json_file = tmp_path / "registry.json"
    json_file.write_text(json.dumps(REGISTRY))
    call_command("load_registry", str(json_file))
    assert "nothing changed" in capsys.readouterr().out


def test_command_reports_yaml_syntax_error_with_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("parties:\n  - name: A\n    roles: [seller\n")
    with pytest.raises(CommandError) as excinfo:
        call_command("load_registry", str(bad))
    assert "line" in str(excinfo.value)


def test_command_missing_file(tmp_path):
    with pytest.raises(CommandError, match="not found"):
        call_command("load_registry", str(tmp_path / "nope.yaml"))


def test_demo_registry_file_loads():
    call_command("load_registry", "aanspraak/simulation/demo-registry.yaml")
    assert Party.objects.filter(is_portal=True, portal_id="portal-zuid").exists()


def test_rotate_field_keys(settings, capsys):
    from cryptography.fernet import Fernet

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.HUB_FIELD_ENCRYPTION_KEYS = [old]
    data = copy.deepcopy(REGISTRY)
    data["parties"][2]["endpoint"].update(
        tokenUrl="http://127.0.0.1:9101/oauth2/token", clientId="hub", clientSecret="s3cr3t-hub"
    )
    load_registry(data)
    settings.HUB_FIELD_ENCRYPTION_KEYS = [new, old]
    call_command("rotate_field_keys")
    assert "re-encrypted 1 secret" in capsys.readouterr().out
    settings.HUB_FIELD_ENCRYPTION_KEYS = [new]  # the old key is gone: still readable
    assert Party.objects.get(name="Uitgeverij Noord").endpoint_client_secret == "s3cr3t-hub"
