"""The configuration's schema: pydantic models that validate the merged layers once.

Every model forbids unknown keys and is frozen; `Settings` is the whole configuration.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from opskit.config.defaults import DEFAULT_ARCHIVE_KEEP, DEFAULT_MIN_VERSIONS, README_LOG_SOURCES
from opskit.durations import from_seconds, parse_duration
from opskit.exporters import SIGNALS
from opskit.periods import parse_period
from opskit.timestrings import compile_timestring
from opskit.when import parse_when

BACKENDS = ("prometheus", "alertmanager", "elasticsearch", "grafana", "pushgateway")
SECRET_KEYS = frozenset({"password", "token", "api_key"})


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


def _check_ca_bundle(value: Path | None) -> Path | None:
    if value is not None and not value.expanduser().is_file():
        raise ValueError(f"CA bundle {str(value)!r} does not exist")
    return value.expanduser() if value is not None else None


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
        return _check_ca_bundle(value)


class ElasticsearchBackend(Backend):
    api_key: SecretStr | None = None
    snapshot_repository: str = "backup"
    # fs repository location used when opskit registers the repository (relative: under
    # the node's path.repo); None means the repository's name.
    snapshot_location: str | None = None


def _url_list(value: object) -> object:
    """`urls` as a TOML list, or one comma-separated string (from the environment)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ClusterBackend(Backend):
    """A backend that may be several servers: `urls` (Alertmanager peers of one gossip
    cluster, Prometheus replicas of one HA pair). With `urls`, `url` is the first of
    them; without, the one `url` is the only member."""

    urls: Annotated[list[str], BeforeValidator(_url_list)] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _url_from_urls(cls, data: object) -> object:
        if isinstance(data, dict):
            urls = _url_list(data.get("urls"))
            if isinstance(urls, list) and urls and isinstance(urls[0], str):
                data = {**data, "url": urls[0]}
        return data

    @field_validator("urls")
    @classmethod
    def _valid_urls(cls, value: list[str]) -> list[str]:
        checked = [_check_url(u) for u in value]
        if len(set(checked)) != len(checked):
            raise ValueError("the same URL twice")
        return checked

    @property
    def members(self) -> list[str]:
        """Every server of this backend, the first being `url`."""
        return list(self.urls) or [self.url]


class AlertmanagerBackend(ClusterBackend):
    # how long `opskit silence add` waits for a new silence to reach every reachable peer
    replicate_timeout: Duration = timedelta(seconds=15)


class PrometheusBackend(ClusterBackend):
    # disk Prometheus may use for its TSDB (`opskit retention prometheus`), e.g. "50GiB"
    disk_budget: ByteSize | None = None
    # the external label that tells HA replicas apart (Prometheus' `external_labels`);
    # targets and alerts are merged on their labels without it
    replica_label: str = "replica"
    # what answers the Prometheus API: auto-detected, or named
    flavor: Literal["auto", "prometheus", "victoriametrics"] = "auto"


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


class ArchiveSettings(_Strict):
    """`[archive]`: retention's snapshot-first snapshots (archives) are kept by
    `opskit snapshots prune` while younger than `keep`, whatever the backup tiers say."""

    keep: str = DEFAULT_ARCHIVE_KEEP

    @field_validator("keep")
    @classmethod
    def _valid_keep(cls, value: str) -> str:
        parse_period(value)
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


class Tracing(_Strict):
    """`[tracing]`: the README's Distributed Tracing (OpenTelemetry Collector + Jaeger):
    where they listen, and the thresholds of `opskit health`, `traces` and the doctor
    (docs/configuration.md). `OPSKIT_JAEGER_URL`, `OPSKIT_OTEL_HEALTH_URL`,
    `OPSKIT_OTEL_METRICS_URL`, `OPSKIT_OTLP_URL` and `OPSKIT_OTLP_GRPC_URL` set the URLs
    (as `lab/lab.py env` prints them), like `OPSKIT_TRACING_<KEY>` does."""

    enabled: bool = True  # false: no tracing rows, no Traces data, no doctor area checks
    jaeger_url: str = "http://localhost:16686"  # the query API (the UI's port)
    otel_health_url: str = "http://localhost:13133/"  # the health_check extension
    otel_metrics_url: str = "http://localhost:8888/metrics"  # the collector's own metrics
    otlp_url: str = "http://localhost:4318"  # OTLP/HTTP receiver
    otlp_grpc_url: str | None = "http://localhost:4317"  # OTLP/gRPC (a TCP check); none: skip
    username: str | None = None  # for a Jaeger query API behind an authenticating proxy
    password: SecretStr | None = None
    token: SecretStr | None = None
    verify: bool = True
    ca_bundle: Path | None = None
    timeout: Duration = timedelta(seconds=10)
    retries: int = Field(default=1, ge=0, le=10)
    # the Traces view and `opskit traces`: traces of the last `window`, at most `limit`
    # per service (the rates are then over the time those traces cover)
    window: Duration = timedelta(hours=1)
    limit: int = Field(default=500, ge=10, le=5000)
    slowest: int = Field(default=10, ge=1, le=100)  # slowest and failing traces kept
    error_rate_warning: float = Field(default=0.01, ge=0, le=1)  # the README's 1%
    error_rate_critical: float = Field(default=0.05, ge=0, le=1)
    # the collector's counters over this window (from Prometheus, when it scrapes them)
    metrics_window: Duration = timedelta(minutes=5)
    prometheus_selector: str = ""  # extra label matchers, e.g. job="jaeger"
    queue_warning_ratio: float = Field(default=0.8, gt=0, le=1)  # exporter queue / capacity
    # a service with traces in `window` but none in the last `silent_after` "stopped"
    silent_after: Duration = timedelta(minutes=10)
    services: list[str] = Field(default_factory=list)  # expected to send traces
    incident_before: Duration = timedelta(minutes=15)  # the incident view's traces window
    incident_after: Duration = timedelta(minutes=15)

    @field_validator("jaeger_url", "otel_health_url", "otel_metrics_url", "otlp_url")
    @classmethod
    def _valid_url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("otlp_grpc_url")
    @classmethod
    def _valid_grpc(cls, value: str | None) -> str | None:
        return _check_url(value) if value else None

    @field_validator("ca_bundle")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        return _check_ca_bundle(value)

    def jaeger(self) -> Backend:
        """The query API as a backend: what `opskit.http.build_http` takes."""
        return Backend(
            url=self.jaeger_url,
            username=self.username,
            password=self.password,
            token=self.token,
            verify=self.verify,
            ca_bundle=self.ca_bundle,
            timeout=self.timeout,
            retries=self.retries,
        )


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
    alertmanager: AlertmanagerBackend
    elasticsearch: ElasticsearchBackend
    grafana: GrafanaBackend
    pushgateway: Backend
    services: list[Service]
    queues: list[Queue]
    keymap: dict[str, str] = Field(default_factory=dict)
    doctor: Doctor = Field(default_factory=Doctor)
    retention: list[RetentionPolicy] = Field(default_factory=list)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    archive: ArchiveSettings = Field(default_factory=ArchiveSettings)
    maintenance: Maintenance = Field(default_factory=Maintenance)
    baselines: dict[str, Baseline] = Field(default_factory=dict)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    tracing: Tracing = Field(default_factory=Tracing)

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


def table_sections() -> tuple[str, ...]:
    """The sections of Settings that are one table (`[doctor]`, `[prometheus]`, ...)."""
    return tuple(
        name
        for name, info in Settings.model_fields.items()
        if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel)
    )
