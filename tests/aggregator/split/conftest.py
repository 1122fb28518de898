"""Real documents of our backend (tests/aggregator/merging/conftest.py) for the split tests."""

from tests.aggregator.merging.conftest import real  # noqa: F401 (the fixture)
