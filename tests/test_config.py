"""Settings come from the environment, with safe defaults and clear errors naming the variable."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings


def test_defaults_are_safe_for_a_local_run():
    settings = Settings.from_env({})
    assert (settings.host, settings.port) == ("127.0.0.1", 3000)
    assert settings.database_url == "sqlite:///data/dashboard.db"
    assert settings.api_key is None and settings.dashboard_token is None


def test_values_are_read_from_the_environment():
    settings = Settings.from_env({"DASHBOARD_HOST": "0.0.0.0", "DASHBOARD_PORT": "8080",
                                  "DASHBOARD_API_KEY": "k" * 20, "DASHBOARD_LOG_LEVEL": "debug"})
    assert (settings.host, settings.port, settings.api_key, settings.log_level) == (
        "0.0.0.0", 8080, "k" * 20, "DEBUG")


@pytest.mark.parametrize(("env", "named"), [
    ({"DASHBOARD_PORT": "http"}, "DASHBOARD_PORT"),
    ({"DASHBOARD_PORT": "70000"}, "DASHBOARD_PORT"),
    ({"DASHBOARD_HOST": "my laptop"}, "DASHBOARD_HOST"),
    ({"DASHBOARD_LOG_LEVEL": "loud"}, "DASHBOARD_LOG_LEVEL"),
    ({"DASHBOARD_API_KEY": "short"}, "DASHBOARD_API_KEY"),
    ({"DATABASE_URL": "mysql://db"}, "DATABASE_URL"),
    ({"DASHBOARD_MAX_BODY_BYTES": "-1"}, "DASHBOARD_MAX_BODY_BYTES"),
    ({"DASHBOARD_API_KEY": "same-secret-value-123", "DASHBOARD_TOKEN": "same-secret-value-123"},
     "DASHBOARD_API_KEY"),
    ({"DASHBOARD_THREADS": "16"}, "DASHBOARD_API_THREADS"),  # none left for streams: the default keeps 16
    ({"DASHBOARD_HEADER_TIMEOUT_S": "0"}, "DASHBOARD_HEADER_TIMEOUT_S"),
])
def test_a_bad_value_is_a_clear_error_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_secrets_stay_out_of_the_settings_repr():
    settings = Settings.from_env({"DASHBOARD_API_KEY": "agent-secret-0123456789",
                                  "DASHBOARD_TOKEN": "dash-secret-0123456789"})
    assert "secret" not in repr(settings)


def test_a_postgresql_url_without_the_driver_says_how_to_install_it(monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args: None if name == "psycopg2" else real_find_spec(name, *args))
    with pytest.raises(ConfigError, match=r"DATABASE_URL .*pip install -e '\.\[postgres\]'"):
        Settings.from_env({"DATABASE_URL": "postgresql://dashboard@db.internal/dashboard"})
