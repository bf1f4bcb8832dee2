"""Gunicorn settings for the email-service (bind and workers come from the command line)."""

from __future__ import annotations

from typing import Any

from prometheus_flask_exporter.multiprocess import GunicornInternalPrometheusMetrics

from emailsvc.config import LOG_FORMAT

worker_class = "gthread"
threads = 4
timeout = 60
graceful_timeout = 10
accesslog = None
errorlog = "-"
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"lab": {"format": LOG_FORMAT}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "lab",
            "stream": "ext://sys.stderr",
        }
    },
    "root": {"level": "INFO", "handlers": ["stderr"]},
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "WARNING", "handlers": ["stderr"], "propagate": False},
    },
}


def child_exit(server: Any, worker: Any) -> None:
    GunicornInternalPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
