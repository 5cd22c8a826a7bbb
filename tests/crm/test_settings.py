import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _check(env_overrides: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    # A production process: none of the test run's own variables (the browser tests allow
    # Django's ORM next to Playwright's event loop, which the deploy check rightly refuses).
    unset = {"SECRET_KEY", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", "check", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_without_a_secret_key_refuses_to_start_with_a_clear_message():
    result = _check({"DEBUG": "false"})

    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "x" * 20 + "-long-random-production-key-42",
    "CAMPAIGNS_SITE_URL": "https://crm.example.com",
}


def test_deploy_check_is_clean_with_production_settings():
    result = _check(PRODUCTION, "--deploy")

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_deploy_check_warns_when_email_links_would_point_at_a_local_address():
    result = _check({**PRODUCTION, "CAMPAIGNS_SITE_URL": "http://127.0.0.1:8000"}, "--deploy")

    assert "campaigns.W001" in result.stderr
    assert "unsubscribe" in result.stderr


def test_deploy_check_warns_when_email_links_are_plain_http():
    result = _check({**PRODUCTION, "CAMPAIGNS_SITE_URL": "http://crm.example.com"}, "--deploy")

    assert "campaigns.W002" in result.stderr


def test_a_trusted_proxy_that_is_not_an_address_refuses_to_start_naming_it():
    result = _check({"TRUSTED_PROXIES": "10.0.0.0/8,proxy.internal"})

    assert result.returncode != 0
    assert "TRUSTED_PROXIES: 'proxy.internal' is not an IP address or network" in result.stderr


def test_an_unknown_phone_region_refuses_to_start_naming_it():
    result = _check({"PHONE_DEFAULT_REGION": "Germany"})

    assert result.returncode != 0
    assert "PHONE_DEFAULT_REGION: 'GERMANY'" in result.stderr
