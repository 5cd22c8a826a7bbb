import pytest

from tests.customers.factories import CustomerFactory
from tests.segments.factories import SegmentFactory


@pytest.fixture
def german_customers():
    return CustomerFactory.create_batch(3, country="DE")


@pytest.fixture
def french_customer():
    return CustomerFactory(country="FR")


@pytest.fixture
def segment_of_germans():
    return SegmentFactory(name="Germans", rule={"field": "country", "op": "eq", "value": "DE"})
