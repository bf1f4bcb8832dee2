"""Known secrets configured for every backend: no command (text, --json, --debug), report,
backup or TUI screen ever shows one."""

from __future__ import annotations

from pathlib import Path

import pytest

from opskit.config import load
from opskit.screens.app import create_app
from tests.conftest import GRAFANA_TOKEN, Lab

SECRETS = {
    "OPSKIT_PROMETHEUS_TOKEN": "prom-Token-9f8e7d",
    "OPSKIT_ALERTMANAGER_PASSWORD": "am-Passw0rd-5a4b",
    "OPSKIT_ELASTICSEARCH_API_KEY": "es-ApiKey-1c2d3e",
    "OPSKIT_PUSHGATEWAY_TOKEN": "pgw-Token-7h6g",
    "OPSKIT_GRAFANA_TOKEN": GRAFANA_TOKEN,  # the lab double's real token: it must work too
}
COMMANDS = [
    ["status"],
    ["health"],
    ["targets"],
    ["alerts"],
    ["rules"],
    ["indices"],
    ["cluster"],
    ["queues"],
    ["config", "show"],
    ["context", "show"],
    ["silence", "list"],
    ["snapshots", "list"],
    ["retention", "plan"],
    ["retention", "prometheus"],
    ["doctor", "--only", "alerts"],
    ["backups", "list"],
]


def secret_env(lab: Lab) -> dict[str, str]:
    env = lab.env(**SECRETS, OPSKIT_ALERTMANAGER_USERNAME="am-user")  # a name, not a secret
    env.pop("GRAFANA_USER")
    env.pop("GRAFANA_PASSWORD")
    return env


def assert_clean(text: str, where: str) -> None:
    for name, secret in SECRETS.items():
        assert secret not in text, f"{name} leaked in {where}"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_commands_never_print_secrets(lab: Lab, command: list[str]) -> None:
    env = secret_env(lab)
    for extra in ([], ["--json"]):
        proc = lab.opskit("--debug", *command, *extra, env=env, timeout=120)
        # --debug adds tracebacks for expected errors; they must be clean as well
        assert_clean(proc.stdout + proc.stderr, f"{' '.join(command)} {' '.join(extra)}")


def test_reports_and_backups_hold_no_secrets(lab: Lab, tmp_path: Path) -> None:
    env = secret_env(lab)
    report = tmp_path / "weekly.md"
    run = lab.opskit(
        "--debug", "maintenance", "weekly", "--report", str(report), env=env, timeout=300
    )
    assert report.exists(), run.stderr
    assert_clean(run.stdout + run.stderr + report.read_text(), "maintenance report")
    backup = lab.opskit("--debug", "backup", "grafana", "--out", str(tmp_path / "b"), env=env)
    assert backup.returncode == 0, backup.stderr  # the token authenticates
    assert_clean(backup.stdout + backup.stderr, "backup output")
    for path in (tmp_path / "b").rglob("*"):
        if path.is_file():
            assert_clean(path.read_text(errors="replace"), str(path))


async def test_tui_never_shows_secrets(lab: Lab) -> None:
    settings = load(environ=secret_env(lab)).settings
    app = create_app(settings, refresh=1.0)
    async with app.run_test(size=(160, 45)) as pilot:
        await pilot.pause(3)
        for key in ("1", "2", "3", "4", "5", "6"):
            await pilot.press(key)
            await pilot.pause(0.3)
            assert_clean(app.export_screenshot(), f"screen {key}")
        for src in app.state.sources.values():
            assert_clean(str(src.error or ""), f"error of {src.name}")


def test_restore_secrets_never_shown(lab: Lab, tmp_path: Path) -> None:
    """`restore grafana --secrets FILE` and OPSKIT_GRAFANA_DS_SECRET_*: the values reach
    Grafana and nothing else (plan, result, --debug log, errors)."""
    import json

    from tests.conftest import GRAFANA_PASSWORD, GRAFANA_USER, get_json

    auth = (GRAFANA_USER, GRAFANA_PASSWORD)
    backup = lab.opskit("backup", "grafana", "--out", str(tmp_path / "b"), "--json")
    assert backup.returncode in (0, 1), backup.stderr
    path = json.loads(backup.stdout)["path"]
    ds_file = Path(path) / "orgs" / "1" / "datasources.json"
    sources = json.loads(ds_file.read_text())
    uid = sources[0]["uid"]
    file_secret, env_secret = "file-Secret-8d7c6b", "env-Secret-5e4f3a"
    secrets = tmp_path / "secrets.json"
    secrets.write_text(json.dumps({uid: {"basicAuthPassword": file_secret}}))
    org = get_json(f"{lab.grafana}/api/orgs", auth, "POST", {"name": "opskit-secret-test"})
    try:
        field = "httpHeaderValue1"
        var = f"OPSKIT_GRAFANA_DS_SECRET_{uid.upper().replace('-', '_')}_{field.upper()}"
        env = lab.env(**{var: env_secret})
        args = ("--debug", "restore", "grafana", path, "--only", "datasources",
                "--org-id", str(org["orgId"]), "--secrets", str(secrets))  # fmt: skip
        for extra in (["--dry-run"], ["--yes"], ["--yes", "--json"]):
            proc = lab.opskit(*args, *extra, env=env)
            assert proc.returncode in (0, 1), proc.stderr
            text = proc.stdout + proc.stderr
            assert file_secret not in text and env_secret not in text, extra
        bad = tmp_path / "bad.toml"
        bad.write_text(f'x = "{file_secret}\n')  # unparsable: the error must not echo it
        proc = lab.opskit(*args[:-1], str(bad), "--dry-run", env=env)
        assert proc.returncode != 0 and file_secret not in proc.stdout + proc.stderr
    finally:
        get_json(f"{lab.grafana}/api/orgs/{org['orgId']}", auth, "DELETE")
