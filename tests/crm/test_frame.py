"""The page frame: sign-in, throttling, navigation by role, messages, local assets."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tests.conftest import DEMO_PASSWORD

pytestmark = pytest.mark.django_db


def test_signing_in_leads_to_the_dashboard(client, sales_user):
    response = client.post(
        reverse("login"), {"username": sales_user.username, "password": DEMO_PASSWORD}, follow=True
    )

    assert response.redirect_chain[-1][0] == reverse("dashboard")
    assert "My follow-ups due" in response.content.decode()


def test_a_wrong_password_shows_an_error_on_the_sign_in_page(client, sales_user):
    response = client.post(reverse("login"), {"username": sales_user.username, "password": "wrong"})

    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_signing_out_ends_the_session(client, sales_user):
    client.force_login(sales_user)

    client.post(reverse("logout"))

    assert client.get(reverse("dashboard")).status_code == 302


def test_changing_the_password_works_and_checks_the_old_one(client, sales_user):
    client.force_login(sales_user)

    bad = client.post(
        reverse("password_change"),
        {
            "old_password": "nope",
            "new_password1": "n3w-Secret-pass",
            "new_password2": "n3w-Secret-pass",
        },
    )
    good = client.post(
        reverse("password_change"),
        {
            "old_password": DEMO_PASSWORD,
            "new_password1": "n3w-Secret-pass",
            "new_password2": "n3w-Secret-pass",
        },
    )

    assert "Your old password was entered incorrectly" in bad.content.decode()
    assert good.status_code == 302
    sales_user.refresh_from_db()
    assert sales_user.check_password("n3w-Secret-pass")


def test_repeated_wrong_passwords_lock_that_username_from_that_address_only(
    client, settings, sales_user, other_sales_user
):
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3
    login = reverse("login")

    for _ in range(3):
        client.post(
            login, {"username": sales_user.username, "password": "wrong"}, REMOTE_ADDR="10.0.0.1"
        )
    locked = client.post(
        login, {"username": sales_user.username, "password": DEMO_PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    colleague = client.post(
        login,
        {"username": other_sales_user.username, "password": DEMO_PASSWORD},
        REMOTE_ADDR="10.0.0.1",
    )
    client.logout()
    elsewhere = client.post(
        login, {"username": sales_user.username, "password": DEMO_PASSWORD}, REMOTE_ADDR="10.0.0.2"
    )

    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.content.decode()
    assert colleague.status_code == 302
    assert elsewhere.status_code == 302


def test_navigation_shows_what_the_role_may_use(client, sales_user, privacy_user, superuser):
    client.force_login(sales_user)
    sales_page = client.get(reverse("dashboard")).content.decode()
    client.force_login(privacy_user)
    privacy_page = client.get(reverse("dashboard")).content.decode()
    client.force_login(superuser)
    admin_page = client.get(reverse("dashboard")).content.decode()

    assert 'href="/customers/"' in sales_page and 'href="/privacy/"' not in sales_page
    assert 'href="/campaigns/"' not in sales_page and ">Admin<" not in sales_page
    assert 'href="/privacy/"' in privacy_page
    for link in ('href="/segments/"', 'href="/campaigns/"', 'href="/privacy/"', ">Admin<"):
        assert link in admin_page


def test_the_frame_loads_htmx_and_its_own_script_from_this_server(client, sales_user):
    client.force_login(sales_user)

    page = client.get(reverse("dashboard")).content.decode()

    assert "/static/django_htmx/htmx-2.min.js" in page
    assert "/static/crm/app.js" in page
    assert "/static/vendor/chartjs/chart.umd.min.js" in page
    assert 'id="revenue-data"' in page


def test_flash_messages_appear_on_the_next_page(client, sales_user):
    client.force_login(sales_user)

    response = client.post(
        reverse("customers:customer_create"),
        {"last_name": "Flash", "email": "flash@example.com", "owner": sales_user.pk},
        follow=True,
    )

    assert "Customer Flash created." in response.content.decode()


def test_dashboard_lists_follow_ups_overdue_first_and_top_customers(client, sales_user):
    import datetime as dt

    from django.utils import timezone

    from tests.customers.factories import CustomerFactory, NoteFactory

    customer = CustomerFactory(owner=sales_user, last_name="Duefirst", lifetime_value=900)
    today = timezone.localdate()
    NoteFactory(
        customer=customer,
        author=sales_user,
        body="Later one",
        due_date=today + dt.timedelta(days=2),
    )
    NoteFactory(
        customer=customer,
        author=sales_user,
        body="Overdue one",
        due_date=today - dt.timedelta(days=3),
    )
    client.force_login(sales_user)

    response = client.get(reverse("dashboard"))

    bodies = [n.body for n in response.context["follow_ups"]]
    assert bodies == ["Overdue one", "Later one"]
    assert response.context["top_customers"][0] == customer
    assert "overdue" in response.content.decode()


def test_dashboard_chart_sums_my_accounts_revenue_by_month(client, sales_user):
    from decimal import Decimal

    from django.core.cache import cache
    from django.utils import timezone

    from tests.customers.factories import AccountFactory, CustomerFactory, PurchaseFactory

    cache.clear()  # the chart is cached per user and day
    account = AccountFactory(owner=sales_user)
    customer = CustomerFactory(owner=sales_user, account=account)
    PurchaseFactory(customer=customer, amount=Decimal("70.00"), purchased_at=timezone.now())
    PurchaseFactory(customer=customer, amount=Decimal("30.00"), purchased_at=timezone.now())
    client.force_login(sales_user)

    chart = client.get(reverse("dashboard")).context["revenue_chart"]

    assert len(chart["labels"]) == 12
    assert chart["values"][-1] == 100.0


def test_group_names_the_frame_relies_on_exist():
    assert set(Group.objects.values_list("name", flat=True)) >= {"sales", "marketing", "privacy"}


@pytest.mark.django_db
def test_a_page_outside_the_role_explains_itself_inside_the_frame(client, sales_user):
    client.force_login(sales_user)

    response = client.get("/privacy/")

    assert response.status_code == 403
    assert b"Not allowed" in response.content
    assert b"Back to the dashboard" in response.content
