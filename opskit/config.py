"""Configuration: where opskit finds the stack and how it authenticates.

Layers, lowest first; each records where its values came from (`opskit config show`):

1. built-in defaults: the monitoring README's stack on localhost;
2. the README's `.env` names (ELASTICSEARCH_PASSWORD, GRAFANA_USER, GRAFANA_PASSWORD),
   from the environment or the `--env-file` (the environment wins, as docker compose does);
3. the config file (`--config`, then `$OPSKIT_CONFIG`, then `$XDG_CONFIG_HOME/opskit/opskit.toml`):
   its top level, then the selected `[contexts.NAME]` table over it;
4. `OPSKIT_<SECTION>_<KEY>` environment variables (`OPSKIT_PROMETHEUS_URL`, ...).

The merged result is validated once by pydantic; any problem stops with one line naming
the file, the key and what is wrong (exit 2).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from opskit.durations import from_seconds, parse_duration
from opskit.errors import ConfigError
from opskit.exporters import SIGNALS
from opskit.periods import parse_period
from opskit.timestrings import compile_timestring
from opskit.when import parse_when

BACKENDS = ("prometheus", "alertmanager", "elasticsearch", "grafana", "pushgateway")
SECRET_KEYS = frozenset({"password", "token", "api_key"})
ENV_PREFIX = "OPSKIT_"
APP_NAME = "opskit"


def _duration(value: object) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 10s")
    if isinstance(value, int | float):
        return from_seconds(float(value), value)
    if isinstance(value, str):
        return parse_duration(value)
    raise ValueError("expected a duration such as 10s")


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _promql(value: str) -> str:
    if not value.strip():
        raise ValueError("empty PromQL query")
    return value


PromQL = Annotated[str, AfterValidator(_promql)]


def _signal(value: str) -> str:
    if value not in SIGNALS:
        raise ValueError(f"unknown signal {value!r} (one of: {', '.join(SIGNALS)})")
    return value


# a signal of opskit/exporters.py: the query comes from whichever exporter is scraped
SignalName = Annotated[str, AfterValidator(_signal)]


def _one_source(query: str | None, signal: str | None) -> None:
    """A PromQL `query` as written, or a `signal` resolved against the exporters present."""
    if (query is None) == (signal is None):
        raise ValueError("set exactly one of `query` (PromQL) or `signal` (auto-detected)")


def _check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"bad URL {value!r} (expected http://host:port or https://...)")
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ValueError(f"bad port in URL {value!r}") from None
    if parts.username or parts.password:
        raise ValueError("credentials in the URL; use the username and password keys")
    return value.rstrip("/")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend(_Strict):
    url: str
    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None
    verify: bool = True
    ca_bundle: Path | None = None
    timeout: Duration = timedelta(seconds=10)
    retries: int = Field(default=2, ge=0, le=10)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("ca_bundle")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"CA bundle {str(value)!r} does not exist")
        return value.expanduser() if value is not None else None


class ElasticsearchBackend(Backend):
    api_key: SecretStr | None = None
    snapshot_repository: str = "backup"
    # fs repository location used when opskit registers the repository (relative: under
    # the node's path.repo); None means the repository's name.
    snapshot_location: str | None = None


class PrometheusBackend(Backend):
    # disk Prometheus may use for its TSDB (`opskit retention prometheus`), e.g. "50GiB"
    disk_budget: ByteSize | None = None


class RetentionPolicy(_Strict):
    """An index retention policy (`opskit retention plan|apply`)."""

    name: str
    pattern: str
    keep: str
    timestring: str | None = "%Y.%m.%d"  # None: age from the index creation date
    action: Literal["delete", "close", "forcemerge"] = "delete"
    snapshot_first: bool = False

    @field_validator("keep")
    @classmethod
    def _valid_keep(cls, value: str) -> str:
        parse_period(value)
        return value

    @field_validator("timestring")
    @classmethod
    def _valid_timestring(cls, value: str | None) -> str | None:
        if value:
            compile_timestring(value)
        return value or None

    @field_validator("pattern")
    @classmethod
    def _valid_pattern(cls, value: str) -> str:
        if not value.strip() or value.strip() in ("*", "_all") or "," in value:
            raise ValueError(f"pattern {value!r}: one index pattern, narrower than '*'")
        return value.strip()


class GrafanaBackend(Backend):
    org_id: int | None = Field(default=None, ge=1)


class BackupSettings(_Strict):
    """`[backup]`: where local backups go (default: the XDG data dir's opskit/backups)."""

    dir: Path | None = None

    @field_validator("dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None


class Service(_Strict):
    """A health endpoint (the README's HEALTH_ENDPOINTS)."""

    name: str
    url: str
    enabled: bool = True
    timeout: Duration = timedelta(seconds=5)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return _check_url(value)


class Queue(_Strict):
    """A queue depth: a PromQL expression (or a signal) and the README's thresholds."""

    name: str
    query: PromQL | None = None
    signal: SignalName | None = None
    warning: float
    critical: float | None = None
    enabled: bool = True

    @model_validator(mode="after")
    def _check_source(self) -> Queue:
        _one_source(self.query, self.signal)
        return self


README_LOG_SOURCES = ["email-service", "celery-worker", "postgresql", "postfix", "dovecot"]


class Doctor(_Strict):
    """Thresholds and inputs of `opskit doctor` (docs/doctor.md)."""

    log_sources: list[str] = Field(default_factory=lambda: list(README_LOG_SOURCES))
    # strftime pattern of a source's daily index; {source} is replaced by the source name
    log_index: str = "logs-{source}-%Y.%m.%d"
    growth_wait: Duration = timedelta(seconds=10)
    scrape_duration_ratio: float = Field(default=0.8, gt=0, le=1)
    heap_warning_percent: float = Field(default=75, gt=0, le=100)
    heap_critical_percent: float = Field(default=90, gt=0, le=100)
    shard_ceiling: int | None = Field(default=None, ge=1)  # None: cluster.max_shards_per_node
    shard_warning_ratio: float = Field(default=0.8, gt=0, le=1)
    head_series_warning: int = Field(default=2_000_000, ge=1)
    metric_series_warning: int = Field(default=10_000, ge=1)

    @field_validator("log_index")
    @classmethod
    def _has_source(cls, value: str) -> str:
        if "{source}" not in value:
            raise ValueError("must contain {source}, e.g. logs-{source}-%Y.%m.%d")
        return value


DEFAULT_MIN_VERSIONS = {
    "prometheus": "2.40",
    "alertmanager": "0.25",
    "elasticsearch": "8.0",
    "grafana": "10.0",
}


class Maintenance(_Strict):
    """`[maintenance]`: thresholds and switches of `opskit maintenance` (docs/maintenance.md)."""

    reports_dir: Path | None = None  # None: the XDG state dir's opskit/reports
    keep_reports: int = Field(default=100, ge=1)  # per cadence
    publish: bool = True  # outcomes to the Pushgateway
    pushgateway_job: str = "opskit"
    alert_on_failure: bool = False  # failures also posted to Alertmanager
    alert_hold: Duration = timedelta(hours=24)
    history_step: Duration = timedelta(minutes=5)
    flapping_episodes: int = Field(default=10, ge=2)
    firing_all_ratio: float = Field(default=0.9, gt=0, le=1)
    review_days: int = Field(default=30, ge=1)
    filesystem_selector: str = 'fstype!~"tmpfs|ramfs|overlay|squashfs|nsfs|fuse.*"'
    disk_lookback: Duration = timedelta(days=1)
    disk_warning_percent: float = Field(default=85, gt=0, le=100)
    disk_critical_percent: float = Field(default=95, gt=0, le=100)
    ingestion_days: int = Field(default=7, ge=2)
    ingestion_drop_ratio: float = Field(default=0.5, gt=0, lt=1)
    dashboards: list[str] = Field(default_factory=list)  # uids to spot-check; empty: all
    capacity_horizon_days: int = Field(default=90, ge=1)
    capacity_critical_days: int = Field(default=30, ge=1)
    min_history: Duration = timedelta(days=1)
    min_versions: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_MIN_VERSIONS))
    audit_files: list[Path] = Field(default_factory=list)
    backup_indices: list[str] = Field(default_factory=list)  # empty: every index


class Baseline(_Strict):
    """`[baselines.NAME]`: a PromQL expression and its expected value (the README's
    PERFORMANCE_BASELINES); worse than `expected` by more than `tolerance` warns."""

    query: PromQL | None = None
    signal: SignalName | None = None
    expected: float
    tolerance: float = Field(default=0.25, ge=0)
    higher_is_better: bool = False
    unit: str = ""
    enabled: bool = True

    @model_validator(mode="after")
    def _check_source(self) -> Baseline:
        _one_source(self.query, self.signal)
        return self


class ScheduleSettings(_Strict):
    """`[schedule]`: when `opskit schedule run` (and the printed cron entries) run each
    cadence: `monday 06:00`, `day 1 06:30` (quarterly: in January, April, July, October)."""

    weekly: str = "monday 06:00"
    monthly: str = "day 1 06:30"
    quarterly: str = "day 1 07:00"
    lock_wait: Duration = timedelta(hours=1)

    @field_validator("weekly", "monthly", "quarterly")
    @classmethod
    def _valid_when(cls, value: str, info: ValidationInfo) -> str:
        parse_when(str(info.field_name), value)
        return value


class Settings(_Strict):
    context: str = "default"
    read_only: bool = False
    color: str | None = None
    refresh: Duration = timedelta(seconds=5)
    prometheus: PrometheusBackend
    alertmanager: Backend
    elasticsearch: ElasticsearchBackend
    grafana: GrafanaBackend
    pushgateway: Backend
    services: list[Service]
    queues: list[Queue]
    keymap: dict[str, str] = Field(default_factory=dict)
    doctor: Doctor = Field(default_factory=Doctor)
    retention: list[RetentionPolicy] = Field(default_factory=list)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    maintenance: Maintenance = Field(default_factory=Maintenance)
    baselines: dict[str, Baseline] = Field(default_factory=dict)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)

    def backend(self, name: str) -> Backend:
        value = getattr(self, name)
        assert isinstance(value, Backend)
        return value

    @property
    def enabled_services(self) -> list[Service]:
        return [s for s in self.services if s.enabled]

    @property
    def enabled_queues(self) -> list[Queue]:
        return [q for q in self.queues if q.enabled]


DEFAULT_SERVICES: list[dict[str, Any]] = [
    {"name": "email-service", "url": "http://localhost:5000/health"},
    {"name": "kibana", "url": "http://localhost:5601/api/status"},
    {"name": "logstash", "url": "http://localhost:9600/"},
    {"name": "jaeger", "url": "http://localhost:16686/"},
    {"name": "otel-collector", "url": "http://localhost:13133/"},
    {"name": "loki", "url": "http://localhost:3100/ready"},
]

# The README's thresholds; queries come from the exporters actually scraped
# (opskit/exporters.py, docs/exporters.md).
DEFAULT_QUEUES: list[dict[str, Any]] = [
    {"name": "celery", "signal": "celery_queue", "warning": 1000},
    {"name": "mail", "signal": "mail_queue", "warning": 100},
]


DEFAULT_BASELINES: dict[str, dict[str, Any]] = {
    # the README's key metrics (PERFORMANCE_BASELINES); absent metrics are reported as
    # "no data" with the metric names and exporters looked for
    "latency_p50": {"signal": "latency_p50", "expected": 0.1, "unit": "s"},
    "latency_p95": {"signal": "latency_p95", "expected": 0.5, "unit": "s"},
    "latency_p99": {"signal": "latency_p99", "expected": 1.5, "unit": "s"},
    "error_rate": {"signal": "error_rate", "expected": 0.01},
    # both Celery exporters call it celery_queue_length (labels differ, max ignores them)
    "queue_depth": {"query": "max(celery_queue_length)", "expected": 500},
    # prometheus-postgres-exporter: pg_stat_activity_max_tx_duration{datname,state}
    "db_query_time": {
        "query": "avg(pg_stat_activity_max_tx_duration)",
        "expected": 1.0,
        "unit": "s",
    },
    # prometheus-redis-exporter: redis_keyspace_hits_total / redis_keyspace_misses_total
    "cache_hit_rate": {
        "query": "sum(rate(redis_keyspace_hits_total[1h])) / (sum(rate(redis_keyspace_hits_total"
        "[1h])) + sum(rate(redis_keyspace_misses_total[1h])))",
        "expected": 0.9,
        "higher_is_better": True,
    },
}


def defaults() -> dict[str, Any]:
    return {
        "prometheus": {"url": "http://localhost:9090"},
        "alertmanager": {"url": "http://localhost:9093"},
        "elasticsearch": {"url": "http://localhost:9200"},
        "grafana": {"url": "http://localhost:3000"},
        "pushgateway": {"url": "http://localhost:9091"},
        "services": [dict(s) for s in DEFAULT_SERVICES],
        "queues": [dict(q) for q in DEFAULT_QUEUES],
        "baselines": {k: dict(v) for k, v in DEFAULT_BASELINES.items()},
    }


# ------------------------------------------------------------------------ loading


@dataclass
class Layered:
    """A nested dict plus, for every leaf, where it came from."""

    data: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def merge(self, incoming: Mapping[str, Any], source: str, prefix: str = "") -> None:
        _merge(self.data, incoming, self.sources, source, prefix)


def _merge(
    base: dict[str, Any],
    incoming: Mapping[str, Any],
    sources: dict[str, str],
    source: str,
    prefix: str,
) -> None:
    for key, value in incoming.items():
        path = f"{prefix}{key}"
        if key in ("services", "queues") and not prefix and isinstance(value, list):
            base[key] = _merge_named(base.get(key, []), value, sources, source, key)
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, sources, source, path + ".")
        else:
            base[key] = dict(value) if isinstance(value, Mapping) else value
            _record(sources, path, value, source)


def _record(sources: dict[str, str], path: str, value: object, source: str) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _record(sources, f"{path}.{k}", v, source)
    else:
        sources[path] = source


def _merge_named(
    base: list[Any], incoming: list[Any], sources: dict[str, str], source: str, key: str
) -> list[Any]:
    """Lists of tables (services, queues) merge by `name`: same name replaces."""
    out = {str(item.get("name")): item for item in base if isinstance(item, dict)}
    for index, item in enumerate(incoming):
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f"{source}: {key}[{index}]: every entry needs a name")
        out[str(item["name"])] = dict(item)
        _record(sources, f"{key}.{item['name']}", dict(item), source)
    return list(out.values())


def read_env_file(path: Path) -> dict[str, str]:
    from dotenv import dotenv_values

    if not path.is_file():
        raise ConfigError(f"{path}: env file does not exist")
    return {k: v for k, v in dotenv_values(path).items() if v is not None}


def config_dir() -> Path:
    from platformdirs import user_config_path

    return user_config_path(APP_NAME)


def state_path() -> Path:
    from platformdirs import user_state_path

    return user_state_path(APP_NAME)


def find_config_file(explicit: Path | None, env: Mapping[str, str]) -> tuple[Path | None, str]:
    """The file to read and how it was chosen; a named file that is missing is an error."""
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"{explicit}: config file does not exist (given with --config)")
        return explicit, "--config"
    if env.get("OPSKIT_CONFIG"):
        path = Path(env["OPSKIT_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(f"{path}: config file does not exist (named by $OPSKIT_CONFIG)")
        return path, "$OPSKIT_CONFIG"
    path = config_dir() / "opskit.toml"
    return (path, "XDG config dir") if path.is_file() else (None, "none")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def readme_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The monitoring README's `.env` names mapped onto opskit's settings."""
    out: dict[str, dict[str, Any]] = {}
    if env.get("ELASTICSEARCH_PASSWORD"):
        out.setdefault("elasticsearch", {})["username"] = env.get("ELASTICSEARCH_USER", "elastic")
        out["elasticsearch"]["password"] = env["ELASTICSEARCH_PASSWORD"]
    if env.get("GRAFANA_USER"):
        out.setdefault("grafana", {})["username"] = env["GRAFANA_USER"]
    if env.get("GRAFANA_PASSWORD"):
        grafana = out.setdefault("grafana", {})
        grafana.setdefault("username", "admin")
        grafana["password"] = env["GRAFANA_PASSWORD"]
    return out


_TOP_LEVEL_ENV = ("refresh", "read_only", "color")


def opskit_env(env: Mapping[str, str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """`OPSKIT_<SECTION>_<KEY>` variables as (variable, dotted key, nested value)."""
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section in BACKENDS:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                yield name, f"{section}.{key}", {section: {key: value}}
                break
        else:
            if rest in _TOP_LEVEL_ENV:
                yield name, rest, {rest: value}


def current_context_file() -> Path:
    return state_path() / "current-context"


def selected_context(
    explicit: str | None, env: Mapping[str, str], file_data: Mapping[str, Any]
) -> tuple[str | None, str]:
    if explicit:
        return explicit, "--context"
    if env.get("OPSKIT_CONTEXT"):
        return env["OPSKIT_CONTEXT"], "$OPSKIT_CONTEXT"
    try:
        stored = current_context_file().read_text().strip()
    except OSError:
        stored = ""
    if stored:
        return stored, "opskit context use"
    value = file_data.get("current_context")
    if isinstance(value, str) and value:
        return value, "current_context in the config file"
    return None, "default"


@dataclass
class Loaded:
    settings: Settings
    sources: dict[str, str]
    path: Path | None
    contexts: dict[str, dict[str, Any]]
    raw: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def _holds_secrets(data: object) -> bool:
    if isinstance(data, dict):
        return any((k in SECRET_KEYS and v) or _holds_secrets(v) for k, v in data.items())
    if isinstance(data, list):
        return any(_holds_secrets(v) for v in data)
    return False


def exposure_warning(path: Path, what: str) -> str | None:
    """A warning when a file holding secrets can be read by other users."""
    try:
        mode = path.stat().st_mode & 0o777
    except OSError:
        return None
    if mode & 0o077:
        return (
            f"{path} holds {what} and is readable by other users (mode {mode:04o}); "
            f"run: chmod 600 {path}"
        )
    return None


def load(
    config: Path | None = None,
    context: str | None = None,
    env_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Loaded:
    """Load, merge and validate the configuration; raise ConfigError on any problem."""
    env = dict(os.environ if environ is None else environ)
    if env_file is not None:
        env = {**read_env_file(env_file), **env}
    path, _how = find_config_file(config, env)
    file_data = read_toml(path) if path else {}
    where = str(path) if path else "config"

    contexts = file_data.pop("contexts", {})
    if not isinstance(contexts, dict):
        raise ConfigError(f"{where}: contexts: must be a table of [contexts.NAME] tables")
    current = file_data.pop("current_context", None)
    name, _why = selected_context(context, env, {"current_context": current})
    if name is not None and name != "default" and name not in contexts:
        known = ", ".join(sorted(contexts)) or "none defined"
        raise ConfigError(f"{where}: context {name!r} is not defined (contexts: {known})")

    layered = Layered()
    layered.merge(defaults(), "default")
    env_source = f"env file {env_file}" if env_file else "environment"
    layered.merge(readme_env(env), f"{env_source} (README .env names)")
    if file_data:
        layered.merge(file_data, f"{where}")
    if name and name != "default":
        ctx = contexts[name]
        if not isinstance(ctx, dict):
            raise ConfigError(f"{where}: contexts.{name}: must be a table")
        layered.merge(ctx, f"{where} [contexts.{name}]")
    for var, _dotted, value in opskit_env(env):
        layered.merge(value, f"${var}")
    layered.data["context"] = name or "default"
    layered.sources["context"] = _why

    try:
        settings = Settings.model_validate(layered.data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, layered, where)) from None
    warnings = []
    if path is not None and _holds_secrets({**file_data, "contexts": contexts}):
        warnings.append(exposure_warning(path, "secrets"))
    if env_file is not None:
        warnings.append(exposure_warning(env_file, "credentials"))
    found = [w for w in warnings if w]
    return Loaded(settings, layered.sources, path, contexts, file_data, found)


def _describe(exc: ValidationError, layered: Layered, where: str) -> str:
    """The first validation error as `source: key: problem`; list entries by name."""
    sources = layered.sources
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if len(loc) >= 2 and loc[0] in ("services", "queues", "retention") and loc[1].isdigit():
        entries = layered.data.get(loc[0], [])
        index = int(loc[1])
        if index < len(entries) and isinstance(entries[index], dict):
            loc[1] = str(entries[index].get("name", index))
    key = ".".join(loc)
    source = sources.get(key)
    if source is None:
        # a list entry: name it by the entry's name when we can
        for candidate in sorted(sources, key=len, reverse=True):
            if key.startswith(candidate) or candidate.startswith(key):
                source = sources[candidate]
                break
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "missing"
    return f"{source or where}: {key}: {msg}"


def mask(value: object) -> object:
    if isinstance(value, SecretStr):
        return "********" if value.get_secret_value() else ""
    return value


def flatten(settings: Settings) -> list[tuple[str, object]]:
    """(dotted key, display value) for every setting, secrets masked."""
    rows: list[tuple[str, object]] = [
        ("context", settings.context),
        ("read_only", settings.read_only),
        ("color", settings.color),
        ("refresh", settings.refresh),
    ]
    for section in BACKENDS:
        backend = settings.backend(section)
        for key in type(backend).model_fields:
            rows.append((f"{section}.{key}", mask(getattr(backend, key))))
    for key in Doctor.model_fields:
        rows.append((f"doctor.{key}", getattr(settings.doctor, key)))
    for svc in settings.services:
        rows.append((f"services.{svc.name}", svc.url if svc.enabled else "(disabled)"))
    for q in settings.queues:
        state = "" if q.enabled else " (disabled)"
        source = q.query or f"signal {q.signal} (the exporter scraped decides the query)"
        rows.append((f"queues.{q.name}", f"{source} > {q.warning:g}{state}"))
    for p in settings.retention:
        first = ", snapshot first" if p.snapshot_first else ""
        rows.append((f"retention.{p.name}", f"{p.pattern}: {p.action} after {p.keep}{first}"))
    rows.append(("backup.dir", settings.backup.dir))
    return rows


def source_of(sources: Mapping[str, str], key: str) -> str:
    if key in sources:
        return sources[key]
    return "default"
