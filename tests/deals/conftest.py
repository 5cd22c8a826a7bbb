import pytest

from tests.customers.factories import AccountFactory, CustomerFactory
from tests.deals.factories import pipeline_make


@pytest.fixture
def pipeline(db):
    return pipeline_make()


@pytest.fixture
def account_of_sam(sales_user):
    return AccountFactory(owner=sales_user, name="Globex")


@pytest.fixture
def customer_of_sam(sales_user, account_of_sam):
    return CustomerFactory(owner=sales_user, account=account_of_sam)
