"""Reading ``GET /metrics`` in tests: the text exposition parsed by prometheus_client's own
parser into {(sample name, labels): value}."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset], float]


def parse(text: str) -> tuple[Samples, dict[str, str]]:
    """The samples of an exposition and each family's type (by family name)."""
    samples: Samples = {}
    types: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples, types


def scrape(client, **headers) -> Samples:
    """GET /metrics with Django's test client; the parsed samples."""
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    return parse(response.content.decode())[0]


def value(samples: Samples, name: str, **labels) -> float:
    """One sample's value, 0 when the series does not exist (yet)."""
    return samples.get((name, frozenset(labels.items())), 0.0)
