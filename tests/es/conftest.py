"""Fixtures for the Elasticsearch backup and retention tests: indices and snapshot
repositories of our own (unique names, removed afterwards), never the lab's `logs-*`."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Lab, get_json

DAYS = 45


def es_request(
    lab: Lab, method: str, path: str, body: Any = None, ndjson: str | None = None
) -> Any:
    """A raw request to the lab's Elasticsearch; HTTP errors come back as their JSON body."""
    data, ctype = None, "application/json"
    if ndjson is not None:
        data, ctype = ndjson.encode(), "application/x-ndjson"
    elif body is not None:
        data = json.dumps(body).encode()
    req = urllib.request.Request(f"{lab.elasticsearch}{path}", data=data, method=method)
    req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"{}")
    return json.loads(raw) if raw else None


def index_names(lab: Lab, pattern: str) -> set[str]:
    rows = get_json(
        f"{lab.elasticsearch}/_cat/indices/{pattern}?format=json&h=index&expand_wildcards=all"
    )
    return {r["index"] for r in rows}


def delete_indices(lab: Lab, pattern: str) -> None:
    """Delete by exact names (Elasticsearch 8 refuses wildcard deletes), and check."""
    assert pattern.startswith(("opskit-test-", "restored-opskit-test-")), pattern
    names = sorted(index_names(lab, pattern))
    for start in range(0, len(names), 40):
        es_request(lab, "DELETE", "/" + ",".join(names[start : start + 40]))
    assert index_names(lab, pattern) == set(), f"could not clean up {pattern}"


def documents(lab: Lab, index: str) -> list[dict[str, Any]]:
    body = es_request(lab, "POST", f"/{index}/_search", {"size": 1000, "sort": ["n"]})
    return [h["_source"] for h in body["hits"]["hits"]]


def create_index(lab: Lab, name: str, docs: int = 3, **settings: Any) -> None:
    body = {"settings": {"number_of_shards": 1, "number_of_replicas": 0, **settings}}
    wait = "" if docs else "?wait_for_active_shards=0"  # red on purpose needs no wait
    answer = es_request(lab, "PUT", f"/{name}{wait}", body)
    assert answer.get("acknowledged"), answer
    if docs:
        lines = "".join(
            json.dumps({"index": {"_index": name, "_id": str(n)}})
            + "\n"
            + json.dumps({"n": n, "message": f"{name} line {n}"})
            + "\n"
            for n in range(docs)
        )
        answer = es_request(lab, "POST", "/_bulk?refresh=true", ndjson=lines)
        assert not answer["errors"], answer


@dataclass
class DailyIndices:
    """45 days of daily indices `<prefix>app-YYYY.MM.dd` (today UTC included), like the demo."""

    prefix: str
    by_day: dict[str, datetime]  # index name -> its day (UTC midnight)

    @property
    def pattern(self) -> str:
        return f"{self.prefix}app-*"


def unique_prefix(tag: str) -> str:
    return f"opskit-test-{tag}-{uuid.uuid4().hex[:8]}-"


def make_daily(lab: Lab, prefix: str, days: int = DAYS) -> DailyIndices:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    by_day = {f"{prefix}app-{today - timedelta(days=b):%Y.%m.%d}": today - timedelta(days=b)
              for b in range(days)}  # fmt: skip
    with ThreadPoolExecutor(8) as pool:  # concurrent creates: the cluster batches them
        list(pool.map(lambda name: create_index(lab, name, docs=2), by_day))
    return DailyIndices(prefix, by_day)


@pytest.fixture
def daily(lab: Lab) -> Iterator[DailyIndices]:
    prefix = unique_prefix("ret")
    made = make_daily(lab, prefix)
    yield made
    delete_indices(lab, f"{prefix}*")


@pytest.fixture
def scratch_prefix(lab: Lab) -> Iterator[str]:
    """A prefix for indices a test creates itself; everything under it is deleted after."""
    prefix = unique_prefix("bk")
    yield prefix
    delete_indices(lab, f"{prefix}*")
    delete_indices(lab, f"restored-{prefix}*")


def path_repo(lab: Lab) -> Path:
    nodes = get_json(f"{lab.elasticsearch}/_nodes/settings")["nodes"]
    node = next(iter(nodes.values()))
    return Path(node["settings"]["path"]["repo"][0])


@dataclass
class Repo:
    name: str
    directory: Path


@pytest.fixture
def repo(lab: Lab) -> Iterator[Repo]:
    """A repository name of our own, not registered yet (opskit registers it), and its
    directory under path.repo; unregistered and removed afterwards."""
    name = f"opskit-test-{uuid.uuid4().hex[:8]}"
    directory = path_repo(lab) / name
    yield Repo(name, directory)
    snaps = es_request(lab, "GET", f"/_snapshot/{name}/_all").get("snapshots", [])
    for s in snaps:
        es_request(lab, "DELETE", f"/_snapshot/{name}/{s['snapshot']}")
    es_request(lab, "DELETE", f"/_snapshot/{name}")
    shutil.rmtree(directory, ignore_errors=True)


def opskit_env(lab: Lab, repository: str, **extra: str) -> dict[str, str]:
    return lab.env(OPSKIT_ELASTICSEARCH_SNAPSHOT_REPOSITORY=repository, **extra)


def run_json(lab: Lab, env: dict[str, str], *args: str, codes: tuple[int, ...] = (0,)) -> Any:
    proc = lab.opskit(*args, "--json", env=env, timeout=180)
    assert proc.returncode in codes, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return json.loads(proc.stdout)
