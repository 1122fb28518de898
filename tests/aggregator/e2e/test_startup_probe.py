import requests


def test_federation_starts(federation):
    document = requests.get(f"{federation.aggregator.url}/", timeout=10).json()
    assert sorted(document["federation"]) == ["A", "B"]
