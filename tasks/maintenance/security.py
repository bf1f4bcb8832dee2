"""Quarterly security audit of alerting credentials: secrets in plain text in the running
Alertmanager config, default credentials that still work, config and `.env` files that
others can read or that git tracks. Findings name where a secret is, never its value."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from pydantic import SecretStr

from opskit.errors import AuthFailed, BackendUnreachable
from opskit.tasks.maintenance.framework import Outcome, TaskContext, task

# a key ending in one of these holds a credential (smtp_auth_password, bot_token, ...)
SECRET_SUFFIXES = ("password", "secret", "token", "api_key", "_key", "credentials")
SECRET_PARAMS = frozenset(
    {"token", "key", "api_key", "apikey", "access_token", "secret", "sig", "signature", "auth"}
)
# hosts whose URL path itself is the credential (incoming webhooks)
WEBHOOK_HOSTS = (
    "hooks.slack.com",
    "discord.com",
    "discordapp.com",
    "outlook.office.com",
    "webhook.office.com",
    "api.telegram.org",
    "chat.googleapis.com",
)
MASKED = "<secret>"
_LINE = re.compile(r"^(\s*)(?:-\s+)?([A-Za-z_][\w]*):\s*(.*?)\s*$")
DEFAULT_CREDENTIALS = {"grafana": ("admin", "admin"), "elasticsearch": ("elastic", "changeme")}


@dataclass(frozen=True)
class Exposed:
    where: str  # e.g. "receivers[ops-default].url"
    why: str  # what kind of secret, never the value


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def url_secret(value: str) -> str | None:
    """Why a URL carries a credential in plain text, or None."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.password:
        return f"password in the URL of {parts.hostname}"
    names = sorted({k for k, _v in parse_qsl(parts.query) if k.lower() in SECRET_PARAMS})
    if names:
        return f"{'/'.join(names)} parameter in the URL of {parts.hostname}"
    host = parts.hostname.lower()
    if any(host == h or host.endswith("." + h) for h in WEBHOOK_HOSTS) and len(parts.path) > 12:
        return f"incoming-webhook URL of {parts.hostname} (its path is the credential)"
    return None


def scan_config(text: str) -> list[Exposed]:
    """Pure: plain-text secrets in an Alertmanager config as `/api/v2/status` shows it
    (Alertmanager masks its Secret fields as <secret>; URLs of webhooks it does not)."""
    found: list[Exposed] = []
    top = context = "global"
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        indent, key, value = m[1], m[2], _unquote(m[3])
        if not indent and not line.lstrip().startswith("-"):
            top = context = key
        elif key == "name" and value:
            context = f"{top}[{value}]"
        if not value or value == MASKED:
            continue
        where = f"{context}.{key}"
        if key.lower().endswith(SECRET_SUFFIXES):
            found.append(Exposed(where, f"{key} in plain text"))
            continue
        why = url_secret(value)
        if why:
            found.append(Exposed(where, why))
    return found


def git_tracked(path: Path) -> bool:
    """Whether git tracks the file (False when git or a repository is missing)."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(path.parent), "ls-files", "--error-unmatch", path.name],
            capture_output=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return proc.returncode == 0


def file_findings(paths: list[Path], out: Outcome) -> None:
    for path in paths:
        if not path.is_file():
            out.add("warning", str(path), "listed for the audit but does not exist")
            continue
        mode = path.stat().st_mode
        if mode & 0o044:
            who = "everyone" if mode & 0o004 else "its group"
            out.add("critical", str(path), f"readable by {who} (mode {mode & 0o777:o}): chmod 600")
        if git_tracked(path):
            out.add("critical", str(path), "tracked by git: remove it (git rm --cached) and rotate")
        if not mode & 0o044 and not git_tracked(path):
            out.add("info", str(path), f"mode {mode & 0o777:o}, not tracked by git")


async def grafana_defaults(ctx: TaskContext, out: Outcome) -> None:
    from opskit.clients.grafana import GrafanaClient
    from opskit.http import build_http

    user, password = DEFAULT_CREDENTIALS["grafana"]
    cfg = ctx.settings.grafana.model_copy(
        update={"username": user, "password": SecretStr(password), "token": None}
    )
    client = GrafanaClient(build_http("grafana", cfg), retries=0)
    try:
        await client.org()
    except AuthFailed:
        out.add("info", "grafana", f"the default {user}/{password} login is refused")
    else:
        out.add(
            "critical", "grafana", f"the default {user}/{password} login still works: change it"
        )
    finally:
        await client.aclose()


async def elasticsearch_defaults(ctx: TaskContext, out: Outcome) -> None:
    from opskit.clients.elasticsearch import ElasticsearchClient
    from opskit.http import build_elasticsearch

    base = ctx.settings.elasticsearch
    user, password = DEFAULT_CREDENTIALS["elasticsearch"]
    anonymous = base.model_copy(
        update={"username": None, "password": None, "token": None, "api_key": None}
    )
    default = anonymous.model_copy(update={"username": user, "password": SecretStr(password)})
    for cfg, label in ((anonymous, "anonymous"), (default, f"{user}/{password}")):
        client = ElasticsearchClient(build_elasticsearch(cfg), base.url)
        try:
            await client.info()
        except AuthFailed:
            continue
        finally:
            await client.aclose()
        if label == "anonymous":
            out.add("warning", "elasticsearch", "answers without credentials (security is off)")
        else:
            out.add("critical", "elasticsearch", f"the default {label} login still works")
        return
    out.add("info", "elasticsearch", "anonymous and default logins are refused")


@task(
    "quarterly",
    "security_audit",
    "Security audit of alerting credentials",
    "Alertmanager /api/v2/status; Grafana and Elasticsearch logins; config/.env files",
)
async def security_audit(ctx: TaskContext) -> Outcome:
    out = Outcome()
    try:
        status = await ctx.stack.alertmanager.status()
        exposed = scan_config(str((status.get("config") or {}).get("original", "")))
        for e in exposed:
            out.add("critical", f"alertmanager {e.where}", e.why)
        if not exposed:
            out.add("info", "alertmanager", "no plain-text secrets in the running config")
        out.data["alertmanager_exposed"] = [e.where for e in exposed]
    except BackendUnreachable as exc:
        out.unreachable.append("alertmanager")
        out.add("critical", "alertmanager", str(exc))
    for backend, check in (
        ("grafana", grafana_defaults),
        ("elasticsearch", elasticsearch_defaults),
    ):
        try:
            await check(ctx, out)
        except BackendUnreachable as exc:
            out.unreachable.append(backend)
            out.add("critical", backend, str(exc))
    files = [p for p in (ctx.config_path, ctx.env_file) if p is not None]
    file_findings([*files, *ctx.options.audit_files], out)
    return out
