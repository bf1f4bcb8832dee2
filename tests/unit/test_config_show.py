"""`opskit config show`: every key of every section, with where it came from, secrets
masked (docs/configuration.md, "What `config show` prints")."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from opskit.config import Settings, flatten, load
from opskit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

FILE = """
[grafana]
password = "file-Secret-pw1"

[[services]]
name = "loki"
enabled = false          # a default service, dropped

[[services]]
name = "billing"
url = "http://billing:8080/health"

[[retention]]
name = "logs"
pattern = "logs-*"
keep = "30d"

[[retention]]
name = "traces"
pattern = "traces-*"
keep = "7d"
action = "close"

[[queues]]
name = "celery"
query = "sum(celery_queue_length)"   # replaces the default's signal
warning = 500

[maintenance]
keep_reports = 12

[baselines.latency_p50]
query = "histogram_quantile(0.5, sum by (le) (rate(x_bucket[5m])))"

[schedule]
weekly = "sunday 03:00"

[keymap]
q = "quit"

[contexts.prod.elasticsearch]
api_key = "ctx-Secret-key2"
url = "https://es.prod:9200"
"""

SECRETS = ("file-Secret-pw1", "ctx-Secret-key2", "env-Secret-tok3", "dotenv-Secret-pw4")


@pytest.fixture(autouse=True)
def _isolated_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))


def config_file(tmp_path: Path, text: str = FILE) -> Path:
    path = tmp_path / "opskit.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def opskit(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OPSKIT_")}
    for name in ("ELASTICSEARCH_PASSWORD", "ELASTICSEARCH_USER", "GRAFANA_USER"):
        clean.pop(name, None)
    clean.pop("GRAFANA_PASSWORD", None)
    full = {
        **clean,
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_STATE_HOME": str(tmp_path / "st"),
        "COLUMNS": "200",
        **env,
    }
    proc = subprocess.run(
        [sys.executable, "-m", "opskit", *args],
        capture_output=True,
        text=True,
        env=full,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def show_json(tmp_path: Path, *args: str, **env: str) -> dict[str, dict[str, Any]]:
    proc = opskit(tmp_path, *args, "config", "show", "--json", **env)
    rows = json.loads(proc.stdout)["settings"]
    return {row["key"]: row for row in rows}


def test_list_of_table_entries_show_their_file(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    rows = show_json(tmp_path, "--config", str(path))
    here = f"file {path}"
    assert rows["services.billing.url"] == {
        "key": "services.billing.url",
        "section": "services",
        "value": "http://billing:8080/health",
        "source": here,
    }
    assert rows["services.billing.timeout"]["source"] == "default"  # the schema's
    assert (rows["services.loki.enabled"]["value"], rows["services.loki.enabled"]["source"]) == (
        False,
        here,
    )
    assert rows["services.loki.url"]["source"] == "default"  # kept from the default entry
    assert rows["services.kibana.url"]["source"] == "default"
    for key in ("pattern", "keep"):
        assert rows[f"retention.logs.{key}"]["source"] == here
        assert rows[f"retention.traces.{key}"]["source"] == here
    assert rows["retention.traces.action"] == {
        "key": "retention.traces.action",
        "section": "retention",
        "value": "close",
        "source": here,
    }
    assert rows["retention.logs.action"]["source"] == "default"
    assert rows["queues.celery.query"]["source"] == here
    assert rows["queues.celery.signal"]["value"] is None  # the file's query replaced it
    assert rows["queues.celery.warning"]["value"] == 500
    assert rows["queues.mail.signal"]["source"] == "default"


def test_every_section_is_shown(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    rows = show_json(tmp_path, "--config", str(path))
    here = f"file {path}"
    assert rows["maintenance.keep_reports"]["value"] == 12
    assert rows["maintenance.keep_reports"]["source"] == here
    assert rows["maintenance.publish"]["source"] == "default"
    assert rows["maintenance.min_versions.grafana"]["source"] == "default"
    assert rows["baselines.latency_p50.query"]["source"] == here
    assert rows["baselines.latency_p50.expected"]["source"] == "default"
    assert rows["baselines.cache_hit_rate.higher_is_better"]["value"] is True
    assert rows["schedule.weekly"] == {
        "key": "schedule.weekly",
        "section": "schedule",
        "value": "sunday 03:00",
        "source": here,
    }
    assert rows["schedule.lock_wait"]["source"] == "default"
    assert rows["keymap.q"]["source"] == here
    assert rows["doctor.log_index"]["source"] == "default"
    assert rows["backup.dir"]["source"] == "default"
    sections = {row["section"] for row in rows.values()}
    assert set(Settings.model_fields) <= sections
    text = opskit(tmp_path, "--config", str(path), "config", "show").stdout
    for key in (
        "services.billing.url",
        "retention.traces.keep",
        "maintenance.keep_reports",
        "baselines.latency_p95.expected",
        "schedule.weekly",
        "keymap.q",
    ):
        assert key in text
    for title in ("[maintenance]", "[baselines]", "[schedule]", "[keymap]", "[retention]"):
        assert title in text


def test_empty_sections_are_still_shown(tmp_path: Path) -> None:
    rows = show_json(tmp_path)  # no file at all
    assert rows["retention"] == {
        "key": "retention",
        "section": "retention",
        "value": [],
        "source": "default",
    }
    assert rows["keymap"]["value"] == {}
    assert rows["prometheus.url"]["source"] == "default"


def test_env_context_and_dotenv_provenance(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    dotenv = tmp_path / ".env"
    dotenv.write_text("GRAFANA_PASSWORD=dotenv-Secret-pw4\nOPSKIT_GRAFANA_TIMEOUT=30s\n")
    dotenv.chmod(0o600)
    rows = show_json(
        tmp_path,
        "--config",
        str(path),
        "--context",
        "prod",
        "--env-file",
        str(dotenv),
        OPSKIT_PROMETHEUS_URL="http://prom.env:9090",
        OPSKIT_MAINTENANCE_PUBLISH="false",
        OPSKIT_SCHEDULE_WEEKLY="friday 22:00",
    )
    assert rows["prometheus.url"]["value"] == "http://prom.env:9090"
    assert rows["prometheus.url"]["source"] == "env OPSKIT_PROMETHEUS_URL"
    assert rows["maintenance.publish"]["value"] is False
    assert rows["maintenance.publish"]["source"] == "env OPSKIT_MAINTENANCE_PUBLISH"
    assert rows["schedule.weekly"]["value"] == "friday 22:00"  # env beats the file
    assert rows["schedule.weekly"]["source"] == "env OPSKIT_SCHEDULE_WEEKLY"
    assert rows["elasticsearch.url"]["source"] == f"context prod in {path}"
    assert rows["elasticsearch.api_key"]["source"] == f"context prod in {path}"
    assert rows["grafana.timeout"]["source"] == f".env file {dotenv} (OPSKIT_GRAFANA_TIMEOUT)"
    # the file's [grafana] password beats the README's .env name
    assert rows["grafana.password"]["source"] == f"file {path}"
    assert rows["grafana.username"]["source"] == f".env file {dotenv} (GRAFANA_PASSWORD)"
    assert rows["context"]["source"] == "--context"


def test_secrets_never_in_plain_text(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    dotenv = tmp_path / ".env"
    dotenv.write_text("ELASTICSEARCH_PASSWORD=dotenv-Secret-pw4\n")
    dotenv.chmod(0o600)
    common = ["--config", str(path), "--context", "prod", "--env-file", str(dotenv)]
    env = {"OPSKIT_PROMETHEUS_TOKEN": "env-Secret-tok3"}
    for args in (["config", "show"], ["config", "show", "--json"], ["context", "show"]):
        proc = opskit(tmp_path, *common, *args, **env)
        for secret in SECRETS:
            assert secret not in proc.stdout + proc.stderr, (secret, args)
    rows = show_json(tmp_path, *common, **env)
    for key in (
        "grafana.password",
        "elasticsearch.api_key",
        "elasticsearch.password",
        "prometheus.token",
    ):
        assert rows[key]["value"] == "********", key
    assert rows["prometheus.token"]["source"] == "env OPSKIT_PROMETHEUS_TOKEN"
    assert rows["alertmanager.password"]["value"] is None


def test_flatten_covers_every_field_of_every_section(tmp_path: Path) -> None:
    settings = load(config=config_file(tmp_path), environ={}).settings
    keys = [key for key, _ in flatten(settings)]
    assert len(keys) == len(set(keys))
    for name, info in Settings.model_fields.items():
        assert any(k == name or k.startswith(name + ".") for k in keys), name
        model = info.annotation
        if isinstance(model, type) and hasattr(model, "model_fields"):
            for field in model.model_fields:
                assert f"{name}.{field}" in keys or any(
                    k.startswith(f"{name}.{field}.") for k in keys
                ), f"{name}.{field}"


def test_same_name_entries_merge_key_by_key(tmp_path: Path) -> None:
    """The documented `enabled = false` drops a default service; a baseline's `query`
    replaces its default `signal`."""
    path = config_file(
        tmp_path,
        '[[services]]\nname = "loki"\nenabled = false\n'
        '[baselines.latency_p95]\nquery = "histogram_quantile(0.95, x)"\n',
    )
    settings = load(config=path, environ={}).settings
    loki = next(s for s in settings.services if s.name == "loki")
    assert (loki.enabled, loki.url) == (False, "http://localhost:3100/ready")
    p95 = settings.baselines["latency_p95"]
    assert (p95.query, p95.signal, p95.expected) == ("histogram_quantile(0.95, x)", None, 0.5)


def test_error_in_a_new_entry_names_its_file(tmp_path: Path) -> None:
    path = config_file(tmp_path, '[[services]]\nname = "new"\nenabled = true\n')
    with pytest.raises(ConfigError) as info:
        load(config=path, environ={})
    assert str(info.value) == f"file {path}: services.new.url: missing"
