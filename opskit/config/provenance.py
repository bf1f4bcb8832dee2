"""Provenance: where every effective setting came from (`opskit config show`).

The layers are merged into one nested dict; each leaf's source is recorded under its
dotted key. Entries of the list-of-table sections are keyed by their name, the way
`config show` prints them: `services.kibana.url`, `retention.logs.keep`,
`baselines.latency_p95.expected`, `keymap.q`. A key no layer set comes from the schema's
default ("default").

Sources read, lowest layer first:

- `default`: the built-in defaults or the schema's;
- `env NAME`: a variable of the environment (the README's `.env` names or `OPSKIT_...`);
- `.env file PATH (NAME)`: the same names read from `--env-file PATH`;
- `file PATH`: the config file's top level;
- `context NAME in PATH`: the selected `[contexts.NAME]` table.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, SecretStr

from opskit.config.schema import SECRET_KEYS, Settings
from opskit.errors import ConfigError

DEFAULT = "default"
MASK = "********"

# [[services]], [[queues]]: a later layer's entry of the same name updates that entry, key
# by key (`enabled = false` is enough to drop a default service).
NAMED_LISTS = ("services", "queues")
# `query` and `signal` are alternatives: setting one drops the other an earlier layer set.
ALTERNATIVES = {"query": "signal", "signal": "query"}


def file_source(path: Path | str) -> str:
    return f"file {path}"


def context_source(name: str, path: Path | str) -> str:
    return f"context {name} in {path}"


def env_source(variable: str, env_file: Path | None = None) -> str:
    """A variable of the environment, or (env_file given) of the `--env-file`."""
    return f".env file {env_file} ({variable})" if env_file else f"env {variable}"


@dataclass
class Layered:
    """A nested dict plus, for every leaf, where it came from."""

    data: dict[str, Any] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)

    def merge(self, incoming: Mapping[str, Any], source: str) -> None:
        _merge(self.data, incoming, self.sources, source, "")

    def source_near(self, key: str) -> str | None:
        """The source of `key`, else of the closest entry or section holding it (a missing
        key has none of its own: name the layer that wrote its entry)."""
        if key in self.sources:
            return self.sources[key]
        parts = key.split(".")
        for n in range(len(parts), 0, -1):
            prefix = ".".join(parts[:n])
            found = [s for k, s in self.sources.items() if k.startswith(prefix + ".")]
            if found:
                return next((s for s in reversed(found) if s != DEFAULT), found[-1])
        return None


def _merge(
    base: dict[str, Any],
    incoming: Mapping[str, Any],
    sources: dict[str, str],
    source: str,
    prefix: str,
) -> None:
    if prefix:
        for key, other in ALTERNATIVES.items():
            if key in incoming and other not in incoming and other in base:
                del base[other]
                _forget(sources, f"{prefix}{other}")
    for key, value in incoming.items():
        path = f"{prefix}{key}"
        if not prefix and key in NAMED_LISTS and isinstance(value, list):
            current = base.get(key)
            base[key] = _merge_named(
                current if isinstance(current, list) else [], value, sources, source, key
            )
        elif isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value, sources, source, path + ".")
        else:
            # a scalar, a list (`[[retention]]` replaces the list) or a new table
            _forget(sources, path)
            base[key] = copy.deepcopy(dict(value) if isinstance(value, Mapping) else value)
            _record(sources, path, value, source)


def _merge_named(
    base: list[Any], incoming: list[Any], sources: dict[str, str], source: str, key: str
) -> list[Any]:
    """Lists of tables (services, queues) merge by `name`, then key by key."""
    if any(not isinstance(item, dict) for item in base):
        _forget(sources, key)  # an earlier layer's list was not a list of tables
        base = [item for item in base if isinstance(item, dict)]
    out = {str(item.get("name")): item for item in base}
    for index, item in enumerate(incoming):
        if not isinstance(item, Mapping) or "name" not in item:
            raise ConfigError(f"{source}: {key}[{index}]: every entry needs a name")
        name = str(item["name"])
        _merge(out.setdefault(name, {}), item, sources, source, f"{key}.{name}.")
    return list(out.values())


def _entry_name(item: Mapping[str, Any], index: int) -> str:
    name = item.get("name")
    return str(name) if isinstance(name, str | int) and str(name) else str(index)


def _record(sources: dict[str, str], path: str, value: object, source: str) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _record(sources, f"{path}.{k}", v, source)
    elif isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        for index, item in enumerate(value):
            _record(sources, f"{path}.{_entry_name(item, index)}", item, source)
    else:
        sources[path] = source


def _forget(sources: dict[str, str], path: str) -> None:
    for key in [k for k in sources if k == path or k.startswith(path + ".")]:
        del sources[key]


def source_of(sources: Mapping[str, str], key: str) -> str:
    return sources.get(key, DEFAULT)


# ------------------------------------------------------------------------ display


def mask(value: object, key: str = "") -> object:
    """A secret as `********` (empty stays empty); anything else unchanged."""
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if key in SECRET_KEYS and isinstance(value, str) and value:
        return MASK
    return value


def flatten(settings: Settings) -> list[tuple[str, object]]:
    """(dotted key, display value) for every key of every section, secrets masked.

    Tables give one row per key (`prometheus.url`); list-of-table sections one row per key
    of each entry, named by the entry (`services.kibana.url`, `retention.logs.keep`);
    tables of tables and of values one row per key (`baselines.error_rate.expected`,
    `keymap.q`). An empty section is one row (`retention`, `[]`), so none is left out.
    """
    rows: list[tuple[str, object]] = []
    for name in type(settings).model_fields:
        _walk(rows, name, getattr(settings, name), name)
    return rows


def _walk(rows: list[tuple[str, object]], path: str, value: object, key: str) -> None:
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _walk(rows, f"{path}.{name}", getattr(value, name), name)
    elif isinstance(value, list) and value and all(isinstance(v, BaseModel) for v in value):
        for index, entry in enumerate(value):
            label = getattr(entry, "name", None) or str(index)
            for name in type(entry).model_fields:
                if name != "name":  # the entry's name is in its key
                    _walk(rows, f"{path}.{label}.{name}", getattr(entry, name), name)
    elif isinstance(value, dict) and value:
        for name, item in value.items():
            _walk(rows, f"{path}.{name}", item, str(name))
    else:
        rows.append((path, mask(value, key)))


def section_of(key: str) -> str:
    """The section a dotted key belongs to (`services.kibana.url` -> `services`)."""
    return key.split(".", 1)[0]
