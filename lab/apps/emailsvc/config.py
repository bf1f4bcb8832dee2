"""Settings from the environment svc_app.py passes (ports already moved by the offset)."""

from __future__ import annotations

import json
import logging
import os
import sys

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


PG_DSN = _env(
    "LAB_PG_DSN",
    "host=127.0.0.1 port=5432 dbname=emailclient user=email_service connect_timeout=2",
)
BROKER_URL = _env("LAB_BROKER_URL", "redis://127.0.0.1:6379/0")
REDIS_URL = _env("LAB_REDIS_URL", "redis://127.0.0.1:6379/1")
SMTP_PORT = int(_env("LAB_SMTP_PORT", "2525"))
IMAP_PORT = int(_env("LAB_IMAP_PORT", "1143"))
MAIL_DOMAIN = _env("LAB_MAIL_DOMAIN", "emailclient.test")
REFUSED_DOMAIN = _env("LAB_REFUSED_DOMAIN", "refused.test")
BLACKHOLE_DOMAIN = _env("LAB_BLACKHOLE_DOMAIN", "slow.test")
MAIL_USERS: dict[str, str] = json.loads(_env("LAB_MAIL_USERS", "{}") or "{}")
EMAIL_SERVICE_URL = _env("LAB_EMAIL_SERVICE_URL", "http://127.0.0.1:5000")
POSTFIX_EXPORTER_URL = _env("LAB_POSTFIX_EXPORTER_URL", "http://127.0.0.1:9154")
HEALTH_PORT = int(_env("LAB_HEALTH_PORT", "0"))
STATE = _env("LAB_STATE", ".")

# Pool sizes per Gunicorn worker process (the gauges sum them over the live workers).
DB_POOL_SIZE = 4
SMTP_POOL_SIZE = 3
IMAP_POOL_SIZE = 3


def setup_logging(level: int = logging.INFO) -> None:
    """The lab's one log format on stderr: the log shipper reads the level word."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
