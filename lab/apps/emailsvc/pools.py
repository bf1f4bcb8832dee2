"""Small bounded connection pools (PostgreSQL, SMTP, IMAP) whose use the email-service
exports as multiprocess gauges: email_service_pool_in_use / email_service_pool_size."""

from __future__ import annotations

import imaplib
import smtplib
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, Generic, TypeVar

import psycopg
from prometheus_client import Gauge

from . import config

# livesum: the sum over the live Gunicorn workers, each with a pool of its own, so
# in_use / size is the service's utilisation (a dead worker's values drop out).
POOL_IN_USE = Gauge(
    "email_service_pool_in_use",
    "Connections of the pool checked out right now",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_SIZE = Gauge(
    "email_service_pool_size",
    "Maximum connections of the pool",
    ["pool"],
    multiprocess_mode="livesum",
)
POOL_WAIT = Gauge(
    "email_service_pool_waiting",
    "Requests waiting for a connection of the pool",
    ["pool"],
    multiprocess_mode="livesum",
)


class PoolTimeout(Exception):
    pass


T = TypeVar("T")


class Pool(Generic[T]):
    def __init__(
        self,
        name: str,
        size: int,
        connect: Callable[[], T],
        close: Callable[[T], None],
        alive: Callable[[T], bool],
    ) -> None:
        self.name = name
        self.size = size
        self._connect = connect
        self._close = close
        self._alive = alive
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[tuple[T, float]] = []
        self._lock = threading.Lock()
        POOL_SIZE.labels(pool=name).set(size)
        POOL_IN_USE.labels(pool=name).set(0)
        POOL_WAIT.labels(pool=name).set(0)

    @contextmanager
    def connection(self, timeout: float = 5.0) -> Iterator[T]:
        POOL_WAIT.labels(pool=self.name).inc()
        try:
            if not self._slots.acquire(timeout=timeout):
                raise PoolTimeout(f"{self.name} pool: no connection free in {timeout:.0f}s")
        finally:
            POOL_WAIT.labels(pool=self.name).dec()
        POOL_IN_USE.labels(pool=self.name).inc()
        conn: T | None = None
        try:
            conn = self._take()
            yield conn
        except BaseException:
            if conn is not None:
                self._discard(conn)
                conn = None
            raise
        finally:
            if conn is not None:
                with self._lock:
                    self._idle.append((conn, time.monotonic()))
            POOL_IN_USE.labels(pool=self.name).dec()
            self._slots.release()

    def _take(self) -> T:
        while True:
            with self._lock:
                item = self._idle.pop() if self._idle else None
            if item is None:
                return self._connect()
            conn, since = item
            if time.monotonic() - since < 5 or self._alive(conn):
                return conn
            self._discard(conn)

    def _discard(self, conn: T) -> None:
        with suppress(Exception):
            self._close(conn)


def _pg_connect() -> psycopg.Connection[Any]:
    return psycopg.connect(config.PG_DSN, autocommit=True)


def _pg_alive(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


def _smtp_connect() -> smtplib.SMTP:
    smtp = smtplib.SMTP("127.0.0.1", config.SMTP_PORT, timeout=10)
    smtp.ehlo("email-service.lab")
    return smtp


def _smtp_alive(smtp: smtplib.SMTP) -> bool:
    try:
        return smtp.noop()[0] == 250
    except (smtplib.SMTPException, OSError):
        return False


def _smtp_close(smtp: smtplib.SMTP) -> None:
    smtp.quit()


def _imap_connect() -> imaplib.IMAP4:
    imap = imaplib.IMAP4("127.0.0.1", config.IMAP_PORT, timeout=10)
    user, password = next(iter(sorted(config.MAIL_USERS.items())), ("", ""))
    imap.login(user, password)
    return imap


def _imap_alive(imap: imaplib.IMAP4) -> bool:
    try:
        return imap.noop()[0] == "OK"
    except (imaplib.IMAP4.error, OSError):
        return False


def _imap_close(imap: imaplib.IMAP4) -> None:
    imap.logout()


def make_pools() -> tuple[Pool[psycopg.Connection[Any]], Pool[smtplib.SMTP], Pool[imaplib.IMAP4]]:
    return (
        Pool("db", config.DB_POOL_SIZE, _pg_connect, lambda c: c.close(), _pg_alive),
        Pool("smtp", config.SMTP_POOL_SIZE, _smtp_connect, _smtp_close, _smtp_alive),
        Pool("imap", config.IMAP_POOL_SIZE, _imap_connect, _imap_close, _imap_alive),
    )
