"""OpenTelemetry for the lab's email services: one TracerProvider per process, spans
exported over OTLP/HTTP to the lab's Jaeger (LAB_OTLP_URL, svc_tracing.py) by a
BatchSpanProcessor, so a request never waits for the exporter.

- The email-service (service.name `email-service`, each Gunicorn worker on import of
  web.py): Flask server spans, Celery publish spans, psycopg and Redis client spans.
- The Celery workers (`celery-worker`, in each prefork child on worker_process_init) and
  beat (`celery-beat`): Celery run and publish spans and their psycopg/Redis calls; the
  trace context travels in the task message's headers.

When Jaeger is away, exports fail within EXPORT_TIMEOUT and their spans are dropped:
QuietExporter logs one line when exports start failing, a reminder every REMIND_EVERY
seconds and one when they work again (the OTLP exporter's own per-batch errors are
silenced), so the log shipper sees a bounded number of lines.

Roots are sampled for requests and tasks only (RequestsAndTasks): a Redis or PostgreSQL
call outside any (Celery's broker housekeeping, a pool's liveness check) starts no trace.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import (
    ALWAYS_ON,
    Decision,
    ParentBased,
    Sampler,
    SamplingResult,
)
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

from . import VERSION

log = logging.getLogger("tracing")
OTLP_URL = os.environ.get("LAB_OTLP_URL", "")
EXPORT_TIMEOUT = 2.0  # seconds for one export, retries included
SCHEDULE_DELAY_MS = 1000  # a span reaches Jaeger about a second after it ends
MAX_QUEUE = 2048  # spans waiting for export; past this they are dropped
REMIND_EVERY = 600.0
_ready = False


class QuietExporter(SpanExporter):
    """The OTLP exporter, logging its state changes rather than every failed batch."""

    def __init__(self, inner: SpanExporter, endpoint: str) -> None:
        self._inner = inner
        self._endpoint = endpoint
        self._lock = threading.Lock()
        self._failing_since: float | None = None
        self._last_said = 0.0
        self._dropped = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self._inner.export(spans)
        now = time.monotonic()
        with self._lock:
            if result is SpanExportResult.SUCCESS:
                if self._failing_since is not None:
                    log.info(
                        "trace export to %s works again after %.0fs (%d spans dropped)",
                        self._endpoint,
                        now - self._failing_since,
                        self._dropped,
                    )
                    self._failing_since, self._dropped = None, 0
                return result
            self._dropped += len(spans)
            if self._failing_since is None:
                self._failing_since = self._last_said = now
                log.warning(
                    "trace export to %s failing; spans are dropped until it answers again",
                    self._endpoint,
                )
            elif now - self._last_said >= REMIND_EVERY:
                self._last_said = now
                log.warning(
                    "trace export to %s still failing (%d spans dropped so far)",
                    self._endpoint,
                    self._dropped,
                )
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class RequestsAndTasks(Sampler):
    """A root span is sampled unless it is a client call (CLIENT: Redis, PostgreSQL);
    a span with a parent follows its parent (ParentBased)."""

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        if kind is SpanKind.CLIENT:
            return SamplingResult(Decision.DROP)
        return ALWAYS_ON.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return "RequestsAndTasks"


def setup(service_name: str, instance: str = "") -> bool:
    """Install this process's TracerProvider; False (and nothing done) without
    LAB_OTLP_URL or when already done in this process."""
    global _ready
    if _ready or not OTLP_URL:
        return False
    _ready = True
    # the exporter's own error per failed batch: QuietExporter says it once instead
    for name in ("opentelemetry.exporter.otlp.proto.http", "opentelemetry.exporter.otlp.common"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    resource = Resource.create(
        {
            "service.name": service_name,
            "service.version": VERSION,
            "service.namespace": "emailclient",
            "service.instance.id": instance or f"{socket.gethostname()}-{os.getpid()}",
            "deployment.environment.name": "lab",
        }
    )
    provider = TracerProvider(resource=resource, sampler=ParentBased(root=RequestsAndTasks()))
    endpoint = f"{OTLP_URL.rstrip('/')}/v1/traces"
    exporter = OTLPSpanExporter(endpoint=endpoint, timeout=EXPORT_TIMEOUT)
    provider.add_span_processor(
        BatchSpanProcessor(
            QuietExporter(exporter, endpoint),
            max_queue_size=MAX_QUEUE,
            schedule_delay_millis=SCHEDULE_DELAY_MS,
            export_timeout_millis=int(EXPORT_TIMEOUT * 1000) + 500,
        )
    )
    trace.set_tracer_provider(provider)
    return True


def instrument_clients() -> None:
    """psycopg (every psycopg.connect), Redis (redis-py) and Celery (publish and run)."""
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    PsycopgInstrumentor().instrument(enable_commenter=False)
    RedisInstrumentor().instrument()
    CeleryInstrumentor().instrument()


def record_error(exc: BaseException) -> None:
    """Mark the current span failed with the exception as its event (Flask's error
    handler answers 500 itself, so the instrumentation never sees the exception)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


def annotate(**attributes: str | int | float | bool) -> None:
    """Attributes on the current span (e.g. email.id, searchable in Jaeger)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attributes(attributes)
