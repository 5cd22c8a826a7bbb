from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "customers"

    def ready(self) -> None:
        from customers.bulk import customers_bulk_register

        customers_bulk_register()
