"""The Linear settings: read from the environment, validated, and never shown."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings


def test_linear_is_off_by_default():
    settings = Settings.from_env({})
    assert not settings.linear_configured
    assert settings.linear_webhook_secret is None
    assert settings.linear_api_url == "https://api.linear.app/graphql"
    assert (settings.linear_sync_interval_s, settings.linear_team_ids) == (60, ())


def test_linear_settings_are_read_from_the_environment():
    settings = Settings.from_env({
        "LINEAR_API_KEY": "lin_api_" + "k" * 40, "LINEAR_WEBHOOK_SECRET": "lin_wh_" + "s" * 40,
        "LINEAR_API_URL": "http://127.0.0.1:8765/graphql", "LINEAR_SYNC_INTERVAL_S": "120",
        "LINEAR_TEAM_IDS": " team-a, team-b ,,",
    })
    assert settings.linear_configured
    assert settings.linear_api_url == "http://127.0.0.1:8765/graphql"
    assert (settings.linear_sync_interval_s, settings.linear_team_ids) == (120, ("team-a", "team-b"))


def test_an_oauth_token_alone_configures_linear():
    assert Settings.from_env({"LINEAR_OAUTH_TOKEN": "lin_oauth_" + "t" * 40}).linear_configured


@pytest.mark.parametrize(("env", "named"), [
    ({"LINEAR_API_KEY": "short"}, "LINEAR_API_KEY"),
    ({"LINEAR_API_KEY": "Bearer lin_api_0123456789abcdef"}, "LINEAR_API_KEY"),
    ({"LINEAR_OAUTH_TOKEN": "Bearer lin_oauth_0123456789abcdef"}, "LINEAR_OAUTH_TOKEN"),
    ({"LINEAR_WEBHOOK_SECRET": "tiny"}, "LINEAR_WEBHOOK_SECRET"),
    ({"LINEAR_API_URL": "api.linear.app/graphql"}, "LINEAR_API_URL"),
    ({"LINEAR_SYNC_INTERVAL_S": "1"}, "LINEAR_SYNC_INTERVAL_S"),
    ({"LINEAR_SYNC_INTERVAL_S": "every minute"}, "LINEAR_SYNC_INTERVAL_S"),
])
def test_a_bad_linear_value_is_a_clear_error_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_linear_secrets_stay_out_of_the_settings_repr():
    settings = Settings.from_env({"LINEAR_API_KEY": "lin_api_secretvalue0123456789",
                                  "LINEAR_OAUTH_TOKEN": "lin_oauth_secretvalue0123456789",
                                  "LINEAR_WEBHOOK_SECRET": "lin_wh_secretvalue0123456789"})
    assert "secretvalue" not in repr(settings)
