"""The quarterly tasks against the lab."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import GRAFANA_PASSWORD, GRAFANA_USER, OFFSET, ROOT, Lab, get_json
from tests.maintenance.conftest import Maint, problems, result
from tests.maintenance.test_weekly import delete_indices, make_index

AM_CONFIG = ROOT / "lab" / ".state" / f"offset-{OFFSET}" / "alertmanager" / "alertmanager.yml"
PLANTED = "labPlantedWebhookSecret0"


def _reload_alertmanager(lab: Lab) -> None:
    req = urllib.request.Request(f"{lab.alertmanager}/-/reload", method="POST")
    urllib.request.urlopen(req, timeout=30).close()


def _set_grafana_password(lab: Lab, old: str, new: str) -> None:
    get_json(
        f"{lab.grafana}/api/user/password",
        (GRAFANA_USER, old),
        "PUT",
        {"oldPassword": old, "newPassword": new, "confirmNew": new},
    )


def test_security_audit_finds_planted_secrets_and_defaults(
    lab: Lab, maint: Maint, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    env_file = repo / ".env"
    env_file.write_text("SLACK_WEBHOOK_URL=https://hooks.slack.com/services/x\n")
    env_file.chmod(0o644)
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", ".env"], check=True)
    maint.configure(f'[maintenance]\naudit_files = ["{env_file}"]\n')

    proc = maint.run("maintenance", "quarterly", "--only", "security_audit", "--json")
    assert PLANTED not in proc.stdout + proc.stderr  # where, never the secret itself
    res = result(maint.report("quarterly", "--only", "security_audit"), "security_audit")
    found = problems(res)
    assert res["status"] == "fail"
    assert any(
        p.startswith("alertmanager receivers[slack-incoming-webhook].url: incoming-webhook URL")
        for p in found
    ), found
    assert "grafana: the default admin/admin login still works: change it" in found
    assert any(p.startswith(f"{env_file}: readable by everyone") for p in found), found
    assert any(p.startswith(f"{env_file}: tracked by git") for p in found), found

    original = AM_CONFIG.read_text()
    start, end = original.index("  # Planted on purpose"), original.index("inhibit_rules:")
    try:
        AM_CONFIG.write_text(original[:start] + original[end:])
        _reload_alertmanager(lab)
        _set_grafana_password(lab, GRAFANA_PASSWORD, "opskit-test-Str0ng")
        env_file.chmod(0o600)
        maint.config.chmod(0o600)  # the config file in use is audited too
        subprocess.run([*git, "rm", "-q", "--cached", ".env"], check=True)
        res = result(maint.report("quarterly", "--only", "security_audit"), "security_audit")
        left = problems(res)
        assert not [p for p in left if p.startswith(("alertmanager", "grafana", str(env_file)))]
        # the lab's Elasticsearch has no security module: that finding stays
        assert left == ["elasticsearch: answers without credentials (security is off)"]
    finally:
        AM_CONFIG.write_text(original)
        _reload_alertmanager(lab)
        _set_grafana_password(lab, "opskit-test-Str0ng", GRAFANA_PASSWORD)


def test_capacity_finds_the_filesystem_that_fills_within_the_quarter(maint: Maint) -> None:
    res = result(maint.report("quarterly", "--only", "capacity"), "capacity")
    fs = res["data"]["filesystems"]["monitoring-2:9100 /var/lib/prometheus"]
    assert 0 < fs["days_until_full"] < 30 and res["status"] == "fail"
    assert res["data"]["elasticsearch"]["growth_bytes_per_day"] > 0
    maint.configure(
        "[maintenance]\nfilesystem_selector = "
        '\'fstype!~"tmpfs|overlay",instance!="monitoring-2:9100"\'\n'
    )
    res = result(maint.report("quarterly", "--only", "capacity"), "capacity")
    assert res["status"] == "pass", problems(res)


def test_version_inventory_against_minimums(maint: Maint) -> None:
    res = result(maint.report("quarterly", "--only", "versions"), "versions")
    assert res["status"] == "pass", problems(res)
    assert res["data"]["versions"]["elasticsearch"] == "8.14.1"
    assert res["data"]["versions"]["alertmanager"].startswith("0.25")
    maint.configure('[maintenance.min_versions]\nelasticsearch = "8.15"\n')
    res = result(maint.report("quarterly", "--only", "versions"), "versions")
    assert problems(res) == [
        "elasticsearch: 8.14.1 is older than the minimum 8.15: plan the upgrade"
    ]


def test_full_backup_is_verified_and_dry_run_creates_nothing(
    lab: Lab, maint: Maint, unique: str, tmp_path: Path
) -> None:
    index = f"opskit-test-backup-{unique}"
    backups = tmp_path / "backups"
    maint.configure(f'[maintenance]\nbackup_indices = ["{index}"]\n[backup]\ndir = "{backups}"\n')
    make_index(lab, index, 5)
    try:
        res = result(maint.report("quarterly", "--only", "full_backup", "--dry-run"), "full_backup")
        assert res["status"] == "pass" and not backups.exists()
        assert "snapshot" not in res["data"]

        res = result(maint.report("quarterly", "--only", "full_backup"), "full_backup")
        assert res["status"] == "pass", problems(res)
        snap = res["data"]["snapshot"]
        assert snap["state"] == "SUCCESS" and snap["indices"] == 1
        got = get_json(f"{lab.elasticsearch}/_snapshot/backup/{snap['name']}")["snapshots"][0]
        assert got["indices"] == [index] and got["state"] == "SUCCESS"
        assert (Path(res["data"]["grafana"]["path"]) / "manifest.json").is_file()
    finally:
        delete_indices(lab, index)
        for s in get_json(f"{lab.elasticsearch}/_snapshot/backup/maintenance-*")["snapshots"]:
            if s["indices"] == [index]:
                get_json(f"{lab.elasticsearch}/_snapshot/backup/{s['snapshot']}", method="DELETE")
        shutil.rmtree(backups, ignore_errors=True)


def test_backup_not_running_rule_fires_on_a_stale_success(lab: Lab) -> None:
    """The lab rule OpskitBackupNotRunning: a full_backup whose last success is 200 days
    old goes pending (for: 1h keeps it from firing during the test)."""
    group = f"{lab.pushgateway}/metrics/job/opskit-test-stale/cadence/quarterly/task/full_backup"
    for g in get_json(f"{lab.pushgateway}/api/v1/metrics")["data"]:
        labels = g["labels"]
        if labels.get("task") == "full_backup":  # fresher successes would hide it
            path = "/".join(f"{k}/{v}" for k, v in sorted(labels.items()) if k != "job")
            req = urllib.request.Request(
                f"{lab.pushgateway}/metrics/job/{labels['job']}/{path}", method="DELETE"
            )
            urllib.request.urlopen(req, timeout=10).close()
    stale = time.time() - 200 * 86400
    name = "opskit_task_last_success_timestamp_seconds"
    body = f"# TYPE {name} gauge\n{name} {stale}\n".encode()
    try:
        req = urllib.request.Request(group, data=body, method="PUT")
        urllib.request.urlopen(req, timeout=10).close()
        deadline = time.monotonic() + 60
        state = ""
        while time.monotonic() < deadline:
            groups = get_json(f"{lab.prometheus}/api/v1/rules")["data"]["groups"]
            rule = next(
                r for g in groups for r in g["rules"] if r["name"] == "OpskitBackupNotRunning"
            )
            state = rule["state"]
            if state in ("pending", "firing"):
                break
            time.sleep(1)
        assert state in ("pending", "firing")
    finally:
        urllib.request.urlopen(urllib.request.Request(group, method="DELETE"), timeout=10).close()
