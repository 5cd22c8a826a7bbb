app_name = "customer_import"

urlpatterns: list = []
