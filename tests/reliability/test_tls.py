"""Real TLS and auth: nginx with the lab's own CA in front of Prometheus, Elasticsearch
and the Grafana double."""

from __future__ import annotations

import json

from tests.conftest import TLS_PASSWORD, TLS_USER, Lab, get_json
from tests.core.test_errors import one_line


def tls_env(lab: Lab, **extra: str) -> dict[str, str]:
    base = {
        "OPSKIT_PROMETHEUS_URL": lab.tls_prometheus,
        "OPSKIT_PROMETHEUS_USERNAME": TLS_USER,
        "OPSKIT_PROMETHEUS_PASSWORD": TLS_PASSWORD,
        "OPSKIT_ELASTICSEARCH_URL": lab.tls_elasticsearch,
        "OPSKIT_ELASTICSEARCH_USERNAME": TLS_USER,
        "OPSKIT_ELASTICSEARCH_PASSWORD": TLS_PASSWORD,
        "OPSKIT_GRAFANA_URL": lab.tls_grafana,
    }
    return lab.env(**{**base, **extra})


def with_ca(lab: Lab, **extra: str) -> dict[str, str]:
    ca = str(lab.tls_ca)
    bundles = {f"OPSKIT_{b}_CA_BUNDLE": ca for b in ("PROMETHEUS", "ELASTICSEARCH", "GRAFANA")}
    return tls_env(lab, **{**bundles, **extra})


def test_unknown_ca_fails_by_default_naming_the_host(lab: Lab) -> None:
    proc = lab.opskit("targets", env=tls_env(lab))
    assert proc.returncode == 3
    line = one_line(proc.stderr)
    assert "TLS" in line and lab.tls_prometheus in line and "not trusted" in line
    es = lab.opskit("indices", env=tls_env(lab))
    assert es.returncode == 3
    assert "TLS" in one_line(es.stderr) and lab.tls_elasticsearch in es.stderr


def test_ca_bundle_makes_it_pass(lab: Lab) -> None:
    proc = lab.opskit("targets", "--json", env=with_ca(lab))
    assert proc.returncode == 2, proc.stderr  # 2: the lab's email-service target is down
    assert {t["job"] for t in json.loads(proc.stdout)} >= {"prometheus", "node"}
    es = lab.opskit("indices", "--pattern", "logs-postfix-*", "--json", env=with_ca(lab))
    assert es.returncode == 0, es.stderr
    # the same indices as Elasticsearch itself lists without TLS (the shipper adds one a day)
    direct = get_json(f"{lab.elasticsearch}/_cat/indices/logs-postfix-*?format=json&h=index")
    assert {i["name"] for i in json.loads(es.stdout)} == {r["index"] for r in direct}
    assert len(direct) >= 45
    status = lab.opskit("status", "--json", env=with_ca(lab))
    sources = json.loads(status.stdout)["sources"]
    assert sources["grafana"]["ok"] and sources["prometheus"]["ok"], sources
    assert sources["elasticsearch"]["ok"], sources


def test_verify_false_works_and_warns(lab: Lab) -> None:
    env = tls_env(lab, OPSKIT_PROMETHEUS_VERIFY="false", OPSKIT_ELASTICSEARCH_VERIFY="false")
    proc = lab.opskit("targets", env=env)
    assert proc.returncode == 2, proc.stderr  # the down email-service target
    assert "TLS verification is off for prometheus" in proc.stderr
    es = lab.opskit("cluster", env=env)
    assert es.returncode in (0, 1), es.stderr
    assert "TLS verification is off for elasticsearch" in es.stderr


def test_wrong_credentials_are_auth_failed(lab: Lab) -> None:
    env = with_ca(
        lab,
        OPSKIT_PROMETHEUS_PASSWORD="wrong-password-123",
        OPSKIT_ELASTICSEARCH_PASSWORD="wrong-password-123",
    )
    proc = lab.opskit("targets", env=env)
    assert proc.returncode == 4
    line = one_line(proc.stderr)
    assert "401" in line and "wrong-password-123" not in proc.stderr
    es = lab.opskit("indices", env=env)
    assert es.returncode == 4 and "401" in one_line(es.stderr)
    missing = lab.opskit(
        "targets", env=with_ca(lab, OPSKIT_PROMETHEUS_USERNAME="", OPSKIT_PROMETHEUS_PASSWORD="")
    )
    assert missing.returncode == 4
