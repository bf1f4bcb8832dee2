"""Configuration: where opskit finds the stack and how it authenticates.

- `schema`: the pydantic models (`Settings` and its sections), validated once;
- `defaults`: the built-in defaults, the monitoring README's stack on localhost;
- `loading`: the layers (defaults, the README's `.env` names, the config file and its
  contexts, `OPSKIT_*` variables), merged and validated by `load`;
- `provenance`: where each effective value came from, and the rows of `config show`.

The names below are the package's public interface: import them from `opskit.config`.
"""

from __future__ import annotations

from opskit.config.defaults import (
    DEFAULT_BASELINES,
    DEFAULT_MIN_VERSIONS,
    DEFAULT_QUEUES,
    DEFAULT_SERVICES,
    README_LOG_SOURCES,
    defaults,
)
from opskit.config.loading import (
    APP_NAME,
    ENV_PREFIX,
    Loaded,
    config_dir,
    current_context_file,
    exposure_warning,
    find_config_file,
    load,
    opskit_env,
    read_env_file,
    read_toml,
    readme_env,
    selected_context,
    state_path,
)
from opskit.config.provenance import (
    DEFAULT,
    MASK,
    Layered,
    flatten,
    mask,
    section_of,
    source_of,
)
from opskit.config.schema import (
    BACKENDS,
    SECRET_KEYS,
    AlertmanagerBackend,
    Backend,
    BackupSettings,
    Baseline,
    ClusterBackend,
    Doctor,
    Duration,
    ElasticsearchBackend,
    GrafanaBackend,
    Maintenance,
    PrometheusBackend,
    PromQL,
    Queue,
    RetentionPolicy,
    ScheduleSettings,
    Service,
    Settings,
    SignalName,
    Tracing,
    table_sections,
)

__all__ = [
    "APP_NAME",
    "BACKENDS",
    "DEFAULT",
    "DEFAULT_BASELINES",
    "DEFAULT_MIN_VERSIONS",
    "DEFAULT_QUEUES",
    "DEFAULT_SERVICES",
    "ENV_PREFIX",
    "MASK",
    "README_LOG_SOURCES",
    "SECRET_KEYS",
    "AlertmanagerBackend",
    "Backend",
    "BackupSettings",
    "Baseline",
    "ClusterBackend",
    "Doctor",
    "Duration",
    "ElasticsearchBackend",
    "GrafanaBackend",
    "Layered",
    "Loaded",
    "Maintenance",
    "PromQL",
    "PrometheusBackend",
    "Queue",
    "RetentionPolicy",
    "ScheduleSettings",
    "Service",
    "Settings",
    "SignalName",
    "Tracing",
    "config_dir",
    "current_context_file",
    "defaults",
    "exposure_warning",
    "find_config_file",
    "flatten",
    "load",
    "mask",
    "opskit_env",
    "read_env_file",
    "read_toml",
    "readme_env",
    "section_of",
    "selected_context",
    "source_of",
    "state_path",
    "table_sections",
]
