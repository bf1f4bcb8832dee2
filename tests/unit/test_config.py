import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from opskit.config import load
from opskit.errors import EXIT_CONFIG, EXIT_USAGE, ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "opskit.toml"
    path.write_text(text)
    return path


def env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "XDG_CONFIG_HOME": str(tmp_path / "cfg"),
        "XDG_STATE_HOME": str(tmp_path / "st"),
        **extra,
    }


@pytest.fixture(autouse=True)
def _isolated_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "st"))


def test_zero_config_is_the_readme_stack(tmp_path: Path) -> None:
    s = load(environ=env(tmp_path)).settings
    assert (s.prometheus.url, s.alertmanager.url) == (
        "http://localhost:9090",
        "http://localhost:9093",
    )
    assert (s.elasticsearch.url, s.grafana.url) == (
        "http://localhost:9200",
        "http://localhost:3000",
    )
    assert s.prometheus.verify is True
    assert {q.name: q.warning for q in s.queues} == {"celery": 1000, "mail": 100}
    assert {"kibana", "logstash", "jaeger", "otel-collector", "loki", "email-service"} <= {
        svc.name for svc in s.services
    }


def test_readme_env_names_and_env_file(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("ELASTICSEARCH_PASSWORD=espw\nGRAFANA_USER=ops\nGRAFANA_PASSWORD=gpw\n")
    loaded = load(env_file=dotenv, environ=env(tmp_path, GRAFANA_PASSWORD="fromenv"))
    s = loaded.settings
    assert s.elasticsearch.username == "elastic"
    assert s.elasticsearch.password is not None
    assert s.elasticsearch.password.get_secret_value() == "espw"
    assert s.grafana.username == "ops"
    assert s.grafana.password is not None
    assert s.grafana.password.get_secret_value() == "fromenv"  # environment beats .env


def test_precedence_and_provenance(tmp_path: Path) -> None:
    path = write(tmp_path, '[prometheus]\nurl = "http://prom.file:9090"\ntimeout = "3s"\n')
    loaded = load(config=path, environ=env(tmp_path, OPSKIT_PROMETHEUS_TIMEOUT="7s"))
    assert loaded.settings.prometheus.url == "http://prom.file:9090"
    assert loaded.settings.prometheus.timeout.total_seconds() == 7
    assert loaded.sources["prometheus.url"] == f"file {path}"
    assert loaded.sources["prometheus.timeout"] == "env OPSKIT_PROMETHEUS_TIMEOUT"
    assert loaded.sources.get("alertmanager.url") == "default"


def test_lookup_order(tmp_path: Path) -> None:
    xdg = tmp_path / "cfg" / "opskit"
    xdg.mkdir(parents=True)
    (xdg / "opskit.toml").write_text('[grafana]\nurl = "http://xdg:3000"\n')
    assert load(environ=env(tmp_path)).settings.grafana.url == "http://xdg:3000"
    named = write(tmp_path, '[grafana]\nurl = "http://named:3000"\n')
    e = env(tmp_path, OPSKIT_CONFIG=str(named))
    assert load(environ=e).settings.grafana.url == "http://named:3000"
    other = tmp_path / "other.toml"
    other.write_text('[grafana]\nurl = "http://explicit:3000"\n')
    assert load(config=other, environ=e).settings.grafana.url == "http://explicit:3000"


CONTEXTS = """
current_context = "staging"
[prometheus]
url = "http://prom.local:9090"
[contexts.prod]
read_only = true
color = "red"
[contexts.prod.prometheus]
url = "https://prom.prod:9090"
[contexts.prod.elasticsearch]
api_key = "prod-api-key-secret"
[contexts.staging.prometheus]
url = "https://prom.staging:9090"
"""


def test_contexts(tmp_path: Path) -> None:
    path = write(tmp_path, CONTEXTS)
    assert load(config=path, environ=env(tmp_path)).settings.prometheus.url == (
        "https://prom.staging:9090"
    )
    prod = load(config=path, context="prod", environ=env(tmp_path)).settings
    assert prod.read_only and prod.color == "red" and prod.context == "prod"
    assert prod.prometheus.url == "https://prom.prod:9090"
    assert prod.alertmanager.url == "http://localhost:9093"  # inherited default
    with pytest.raises(ConfigError, match="context 'nope' is not defined"):
        load(config=path, context="nope", environ=env(tmp_path))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[prometheus]\nurll = 'http://x'\n", "prometheus.urll: unknown key"),
        ("[prometheus]\nurl = 'ftp://x'\n", "prometheus.url: bad URL"),
        ("[prometheus]\ntimeout = 'soon'\n", "prometheus.timeout: bad duration"),
        ("[prometheus]\nurl = 'http://user:pw@x'\n", "credentials in the URL"),
        ("[prometheus\n", "not valid TOML"),
        ("[[queues]]\nname='q'\nquery=''\nwarning=1\n", "queues.q.query: empty PromQL"),
        ("[elasticsearch]\nca_bundle = '/no/such/ca.pem'\n", "does not exist"),
        ("bogus = 1\n", "bogus: unknown key"),
    ],
)
def test_bad_config_names_file_key_and_problem(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(config=path, environ=env(tmp_path))
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "pw" not in str(info.value).replace("opskit", "")


def test_cli_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[grafana]\ntimeout = '10 minutes'\n")
    proc = subprocess.run(
        [sys.executable, "-m", "opskit", "--config", str(path), "status"],
        capture_output=True,
        text=True,
        env={**os.environ, **env(tmp_path)},
        cwd=ROOT,
    )
    assert proc.returncode == EXIT_CONFIG
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "grafana.timeout" in lines[0] and str(path) in lines[0]
    missing = subprocess.run(
        [sys.executable, "-m", "opskit", "--config", "/no/file.toml", "queues"],
        capture_output=True,
        text=True,
        env={**os.environ, **env(tmp_path)},
        cwd=ROOT,
    )
    assert missing.returncode == EXIT_CONFIG and "/no/file.toml" in missing.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, CONTEXTS)
    e = {**os.environ, **env(tmp_path, GRAFANA_PASSWORD="hunter2-grafana")}
    for args in (
        ["config", "show"],
        ["config", "show", "--json"],
        ["--context", "prod", "context", "show", "--json"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "opskit", "--config", str(path), *args],
            capture_output=True,
            text=True,
            env=e,
            cwd=ROOT,
        )
        assert proc.returncode == 0, proc.stderr
        assert "hunter2-grafana" not in proc.stdout + proc.stderr
        assert "prod-api-key-secret" not in proc.stdout + proc.stderr
        assert "grafana.password" in proc.stdout


def test_context_use_persists(tmp_path: Path) -> None:
    path = write(tmp_path, CONTEXTS)
    e = {**os.environ, **env(tmp_path)}
    cmd = [sys.executable, "-m", "opskit", "--config", str(path)]
    use = subprocess.run(
        [*cmd, "context", "use", "prod"], capture_output=True, text=True, env=e, cwd=ROOT
    )
    assert use.returncode == 0, use.stderr
    listed = subprocess.run(
        [*cmd, "context", "list"], capture_output=True, text=True, env=e, cwd=ROOT
    )
    assert "* prod" in listed.stdout
    bad = subprocess.run(
        [*cmd, "context", "use", "nope"], capture_output=True, text=True, env=e, cwd=ROOT
    )
    assert bad.returncode == EXIT_USAGE and "nope" in bad.stderr


toml_scalars = st.one_of(
    st.integers(), st.booleans(), st.text(max_size=10), st.floats(allow_nan=False)
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "prometheus",
                "grafana",
                "elasticsearch",
                "services",
                "refresh",
                "queues",
                "read_only",
                "x",
            ]
        ),
        st.one_of(
            toml_scalars,
            st.dictionaries(
                st.sampled_from(["url", "timeout", "verify", "retries", "name", "zz"]),
                toml_scalars,
                max_size=3,
            ),
        ),
        max_size=3,
    )
)
def test_random_config_gives_config_error_or_settings(data: dict[str, object]) -> None:
    """Any shape of input: either valid settings or one ConfigError, never a crash."""
    try:
        load(environ={"OPSKIT_CONFIG_UNUSED": "1"}, config=None, context=None) if not data else (
            _load_dict(data)
        )
    except ConfigError as exc:
        assert "\n" not in str(exc)


def _load_dict(data: dict[str, object]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.toml"
        path.write_text(_to_toml(data))
        load(config=path, environ={"XDG_STATE_HOME": tmp, "XDG_CONFIG_HOME": tmp})


def _to_toml(data: dict[str, object]) -> str:
    import json

    def scalar(v: object) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        return repr(v) if not isinstance(v, float) or v == v else "0.0"

    top = [f"{k} = {scalar(v)}" for k, v in data.items() if not isinstance(v, dict)]
    tables = []
    for k, v in data.items():
        if isinstance(v, dict):
            tables.append(f"[{k}]")
            tables += [f"{kk} = {scalar(vv)}" for kk, vv in v.items()]
    return "\n".join(top + tables) + "\n"


def test_secret_config_readable_by_others_is_warned(tmp_path: Path) -> None:
    path = write(tmp_path, '[grafana]\npassword = "s3cret-pw"\n')
    path.chmod(0o644)
    loaded = load(config=path, environ=env(tmp_path))
    assert len(loaded.warnings) == 1 and "chmod 600" in loaded.warnings[0]
    assert "s3cret-pw" not in loaded.warnings[0]
    path.chmod(0o600)
    assert load(config=path, environ=env(tmp_path)).warnings == []
    plain = write(tmp_path, '[grafana]\nurl = "http://g:3000"\n')
    plain.chmod(0o644)
    assert load(config=plain, environ=env(tmp_path)).warnings == []  # no secrets: no warning
    dotenv = tmp_path / ".env"
    dotenv.write_text("GRAFANA_PASSWORD=x\n")
    dotenv.chmod(0o640)
    warned = load(env_file=dotenv, environ=env(tmp_path)).warnings
    assert any(str(dotenv) in w for w in warned)
    proc = subprocess.run(
        [sys.executable, "-m", "opskit", "--env-file", str(dotenv), "config", "show"],
        capture_output=True,
        text=True,
        env={**os.environ, **env(tmp_path)},
        cwd=ROOT,
    )
    assert "readable by other users" in proc.stderr
