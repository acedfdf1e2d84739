"""The Temporal, workflow and push settings: defaults, accepted forms, and clear errors."""

from __future__ import annotations

import pytest

from shared.config import ConfigError, Settings


def test_defaults_run_a_local_dev_server_with_the_seed_thresholds():
    settings = Settings.from_env({})
    assert (settings.temporal_address, settings.temporal_namespace, settings.temporal_task_queue) == (
        "localhost:7233", "default", "opencode-agent-tasks")
    assert settings.temporal_dev_server is True
    assert (settings.blocked_after_high_s, settings.blocked_after_low_s, settings.monitor_interval_s) == (
        600.0, 3600.0, 10.0)
    assert settings.push_url is None and settings.dashboard_public_url == "http://127.0.0.1:3000"


def test_a_temporal_address_of_your_own_or_off():
    own = Settings.from_env({"TEMPORAL_ADDRESS": "temporal.internal:7233", "TEMPORAL_NAMESPACE": "agents"})
    assert (own.temporal_address, own.temporal_namespace, own.temporal_dev_server) == (
        "temporal.internal:7233", "agents", False)
    off = Settings.from_env({"TEMPORAL_ADDRESS": "OFF"})
    assert (off.temporal_address, off.temporal_dev_server) == (None, False)


@pytest.mark.parametrize(("env", "named"), [
    ({"TEMPORAL_ADDRESS": "http://temporal:7233"}, "TEMPORAL_ADDRESS"),
    ({"TEMPORAL_ADDRESS": "temporal"}, "TEMPORAL_ADDRESS"),
    ({"MONITOR_INTERVAL_S": "soon"}, "MONITOR_INTERVAL_S"),
    ({"BLOCKED_AFTER_HIGH_S": "0"}, "BLOCKED_AFTER_HIGH_S"),
    ({"BLOCKED_AFTER_HIGH_S": "7200"}, "BLOCKED_AFTER_HIGH_S"),  # above the low threshold
    ({"TEMPORAL_RPC_TIMEOUT_S": "0"}, "TEMPORAL_RPC_TIMEOUT_S"),
    ({"PUSH_URL": "ntfy.sh/secret-topic"}, "PUSH_URL"),
    ({"PUSH_TOKEN": "short"}, "PUSH_TOKEN"),
    ({"DASHBOARD_PUBLIC_URL": "dashboard.local"}, "DASHBOARD_PUBLIC_URL"),
])
def test_a_bad_value_stops_start_up_naming_the_variable(env, named):
    with pytest.raises(ConfigError, match=named):
        Settings.from_env(env)


def test_the_push_url_and_token_stay_out_of_the_repr_and_errors():
    settings = Settings.from_env({"PUSH_URL": "https://ntfy.sh/very-secret-topic", "PUSH_TOKEN": "tk_" + "x" * 20,
                                  "DASHBOARD_PUBLIC_URL": "https://dash.example.test/"})
    assert "very-secret-topic" not in repr(settings) and "tk_" not in repr(settings)
    assert settings.dashboard_public_url == "https://dash.example.test"
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"PUSH_URL": "ftp://very-secret-topic"})
    assert "very-secret-topic" not in str(error.value)
