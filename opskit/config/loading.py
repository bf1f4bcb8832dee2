"""Loading: the files, the environment and the contexts, merged in layers and validated.

Layers, lowest first; each records where its values came from (provenance.py):

1. built-in defaults (defaults.py): the monitoring README's stack on localhost;
2. the README's `.env` names (ELASTICSEARCH_PASSWORD, GRAFANA_USER, GRAFANA_PASSWORD),
   from the environment or the `--env-file` (the environment wins, as docker compose does);
3. the config file (`--config`, then `$OPSKIT_CONFIG`, then `$XDG_CONFIG_HOME/opskit/opskit.toml`):
   its top level, then the selected `[contexts.NAME]` table over it;
4. `OPSKIT_<SECTION>_<KEY>` environment variables (`OPSKIT_PROMETHEUS_URL`,
   `OPSKIT_MAINTENANCE_PUBLISH`, ...) for the table sections, `OPSKIT_REFRESH`,
   `OPSKIT_READ_ONLY`, `OPSKIT_COLOR` for the top level.

The merged result is validated once by pydantic; any problem raises one ConfigError
naming the source, the key and what is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from opskit.config.defaults import defaults
from opskit.config.provenance import (
    DEFAULT,
    Layered,
    context_source,
    env_source,
    file_source,
)
from opskit.config.schema import SECRET_KEYS, Settings, table_sections
from opskit.errors import ConfigError

ENV_PREFIX = "OPSKIT_"
APP_NAME = "opskit"


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
    import tomllib  # only when there is a file to read: not on every start-up

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def readme_env(env: Mapping[str, str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """The monitoring README's `.env` names mapped onto opskit's settings, as (variable,
    nested value) per variable; later ones win (GRAFANA_USER over the implied admin)."""
    if env.get("ELASTICSEARCH_PASSWORD"):
        user = env.get("ELASTICSEARCH_USER")
        yield "ELASTICSEARCH_PASSWORD", {"elasticsearch": {"username": "elastic"}}
        if user:
            yield "ELASTICSEARCH_USER", {"elasticsearch": {"username": user}}
        yield (
            "ELASTICSEARCH_PASSWORD",
            {"elasticsearch": {"password": env["ELASTICSEARCH_PASSWORD"]}},
        )
    if env.get("GRAFANA_PASSWORD"):
        yield "GRAFANA_PASSWORD", {"grafana": {"username": "admin"}}
        yield "GRAFANA_PASSWORD", {"grafana": {"password": env["GRAFANA_PASSWORD"]}}
    if env.get("GRAFANA_USER"):
        yield "GRAFANA_USER", {"grafana": {"username": env["GRAFANA_USER"]}}


_TOP_LEVEL_ENV = ("refresh", "read_only", "color")
# not configuration: the secrets `opskit restore grafana` gives data sources and contact
# points (tasks.grafana_restore.load_secrets reads them; never shown, never stored)
SECRET_ENV_PREFIXES = ("OPSKIT_GRAFANA_DS_SECRET_", "OPSKIT_GRAFANA_CP_SECRET_")
# the names `lab/lab.py env` prints (and a tracing operator would guess) for the
# `[tracing]` URLs: OPSKIT_JAEGER_URL is tracing.jaeger_url, and so on
TRACING_ENV = ("jaeger_url", "otel_health_url", "otel_metrics_url", "otlp_url", "otlp_grpc_url")


def opskit_env(env: Mapping[str, str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """`OPSKIT_<SECTION>_<KEY>` variables as (variable, dotted key, nested value); the
    sections are the tables of Settings (backends, doctor, backup, maintenance, schedule)."""
    sections = table_sections()
    for name, value in sorted(env.items()):
        if not name.startswith(ENV_PREFIX) or name.startswith(SECRET_ENV_PREFIXES):
            continue
        rest = name[len(ENV_PREFIX) :].lower()
        for section in sections:
            if rest.startswith(section + "_"):
                key = rest[len(section) + 1 :]
                yield name, f"{section}.{key}", {section: {key: value}}
                break
        else:
            if rest in _TOP_LEVEL_ENV:
                yield name, rest, {rest: value}
            elif rest in TRACING_ENV:
                yield name, f"tracing.{rest}", {"tracing": {rest: value}}


def current_context_file() -> Path:
    return state_path() / "current-context"


def selected_context(
    explicit: str | None, env: Mapping[str, str], file_data: Mapping[str, Any]
) -> tuple[str | None, str]:
    if explicit:
        return explicit, "--context"
    if env.get("OPSKIT_CONTEXT"):
        return env["OPSKIT_CONTEXT"], "env OPSKIT_CONTEXT"
    try:
        stored = current_context_file().read_text().strip()
    except OSError:
        stored = ""
    if stored:
        return stored, "opskit context use"
    value = file_data.get("current_context")
    if isinstance(value, str) and value:
        return value, "current_context in the config file"
    return None, DEFAULT


@dataclass
class Loaded:
    settings: Settings
    # dotted key (`prometheus.url`, `services.kibana.url`) -> where its value came from
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
    real = dict(os.environ if environ is None else environ)
    from_file = read_env_file(env_file) if env_file is not None else {}
    env = {**from_file, **real}

    def env_label(variable: str) -> str:
        return env_source(variable, env_file if variable not in real else None)

    path, _how = find_config_file(config, env)
    file_data = read_toml(path) if path else {}
    where = str(path) if path else "config"

    contexts = file_data.pop("contexts", {})
    if not isinstance(contexts, dict):
        raise ConfigError(f"{where}: contexts: must be a table of [contexts.NAME] tables")
    current = file_data.pop("current_context", None)
    name, why = selected_context(context, env, {"current_context": current})
    if name is not None and name != "default" and name not in contexts:
        known = ", ".join(sorted(contexts)) or "none defined"
        raise ConfigError(f"{where}: context {name!r} is not defined (contexts: {known})")

    layered = Layered()
    layered.merge(defaults(), DEFAULT)
    for var, value in readme_env(env):
        layered.merge(value, env_label(var))
    if file_data:
        layered.merge(file_data, file_source(where))
    if name and name != "default":
        ctx = contexts[name]
        if not isinstance(ctx, dict):
            raise ConfigError(f"{where}: contexts.{name}: must be a table")
        layered.merge(ctx, context_source(name, where))
    for var, _dotted, value in opskit_env(env):
        layered.merge(value, env_label(var))
    layered.data["context"] = name or "default"
    layered.sources["context"] = why

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
    err = exc.errors()[0]
    loc = [str(p) for p in err["loc"]]
    if len(loc) >= 2 and isinstance(layered.data.get(loc[0]), list) and loc[1].isdigit():
        entries = layered.data[loc[0]]
        index = int(loc[1])
        if index < len(entries) and isinstance(entries[index], dict):
            loc[1] = str(entries[index].get("name", index))
    key = ".".join(loc)
    source = layered.source_near(key)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "missing"
    return f"{source or where}: {key}: {msg}"
