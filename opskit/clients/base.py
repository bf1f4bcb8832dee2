"""What every httpx-based backend shares: error mapping and retries for idempotent GETs."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import socket
import ssl
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import httpx

from opskit.errors import (
    AuthFailed,
    BackendError,
    BackendTimeout,
    BackendUnreachable,
    BadResponse,
    NotFound,
)

T = TypeVar("T")
RETRY_STATUS = frozenset({502, 503, 504})
LARGE_BODY = 256 * 1024
Params = Mapping[str, Any] | list[tuple[str, Any]] | None


def _root_causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def describe_transport_error(exc: BaseException) -> str:
    """A short, secret-free reason for a transport failure."""
    for cause in _root_causes(exc):
        if isinstance(cause, socket.gaierror):
            return "host name does not resolve"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"TLS certificate not trusted: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {cause.reason or cause}"
        if isinstance(cause, ConnectionRefusedError) or (
            isinstance(cause, OSError) and cause.errno == errno.ECONNREFUSED
        ):
            return "connection refused"
    if not str(exc) and isinstance(exc, httpx.ReadError | httpx.RemoteProtocolError):
        # a server going away mid-answer (stopping, restarting): httpx says only ReadError
        return f"connection closed by the server mid-answer ({type(exc).__name__})"
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    if "certificate" in lowered or "ssl" in lowered:
        return f"TLS error: {text.splitlines()[0][:200]}"
    if "connection refused" in lowered or "all connection attempts failed" in lowered:
        return "connection refused"
    if "name or service not known" in lowered or "name resolution" in lowered:
        return "host name does not resolve"
    return text.splitlines()[0][:200]


def parse_time(value: object) -> datetime | None:
    """RFC 3339 timestamps as the APIs send them; Go's zero time becomes None."""
    if not value or not isinstance(value, str) or value.startswith("0001-01-01"):
        return None
    try:  # fast path (3.11 reads "Z" and truncates nanoseconds): 2,000 targets a refresh
        parsed = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    text = value.replace("Z", "+00:00")
    # Go sends nanoseconds; Python takes at most microseconds.
    if "." in text:
        head, _, rest = text.partition(".")
        frac = "".join(ch for ch in rest if ch.isdigit())
        tz = rest[len(frac) :]
        text = f"{head}.{frac[:6]}{tz}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"bad timestamp {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def str_dict(value: dict[Any, Any]) -> dict[str, str]:
    """A JSON object of strings (labels, annotations) as it is, when it is one: no copy
    per target or alert of a large refresh; anything else with keys and values as str."""
    for k, v in value.items():
        if type(v) is not str or type(k) is not str:
            return {str(k): str(v) for k, v in value.items()}
    return value


def _digest(content: bytes) -> bytes:
    return hashlib.blake2b(content, digest_size=16).digest()


async def off_loop(parse: Callable[[str, Callable[[], T]], T], what: str, fn: Callable[[], T]) -> T:
    """Parse big answers (thousands of targets, alerts, indices) in a worker thread, so the
    TUI's event loop keeps answering keys while a large refresh is parsed."""
    return await asyncio.to_thread(parse, what, fn)


class HttpBackend:
    """A backend reached over HTTP with JSON answers."""

    name = "backend"

    def __init__(self, http: httpx.AsyncClient, retries: int = 2) -> None:
        self.http = http
        self.retries = retries
        # (path + query) -> (digest of the last large body, the records parsed from it)
        self._unchanged: dict[str, tuple[bytes, Any]] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    async def get_json(self, path: str, params: Params = None) -> Any:
        """GET with retry and backoff on connection errors, timeouts and 502/503/504.
        A large body is decoded in a worker thread so a live UI keeps answering keys."""
        response = await self._get(path, params)
        if len(response.content) > LARGE_BODY:
            return await asyncio.to_thread(self.decode, response)
        return self.decode(response)

    async def get_records(
        self, path: str, params: Params, what: str, build: Callable[[Any], T]
    ) -> T:
        """GET and parse into records, as `get_json` + `parse`; a large body that is byte
        for byte the one of the last call (alerts and indices between two polls, targets
        between two scrapes) gives the last call's records again without decoding or
        parsing it. Nothing in opskit changes a parsed record, so sharing them is safe.
        Bodies are compared by a BLAKE2b digest computed in a thread (hashlib releases the
        GIL), so neither the body nor its decoding is kept."""
        response = await self._get(path, params)
        if len(response.content) <= LARGE_BODY or response.status_code >= 300:
            body = self.decode(response)
            return self.parse(what, lambda: build(body))
        key = f"{path}?{params!r}"
        digest = await asyncio.to_thread(_digest, response.content)
        last = self._unchanged.get(key)
        if last is not None and last[0] == digest:
            return cast(T, last[1])
        body = await asyncio.to_thread(self.decode, response)
        records = await off_loop(self.parse, what, lambda: build(body))
        self._unchanged[key] = (digest, records)
        return records

    async def get_ok(self, path: str) -> None:
        """GET a plain-text health endpoint; raise unless it answers 2xx."""
        response = await self._get(path, None)
        if response.status_code >= 300:
            self.decode(response)
            raise BadResponse(self.name, f"HTTP {response.status_code} from {path}")

    async def _get(self, path: str, params: Params) -> httpx.Response:
        delay = 0.2
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = await self.http.get(path, params=params)
            except httpx.DecodingError as exc:
                raise self.undecodable(exc) from exc
            except httpx.TransportError as exc:
                if last:
                    raise self.transport_error(exc) from exc
            else:
                if response.status_code not in RETRY_STATUS or last:
                    return response
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise AssertionError("unreachable")  # pragma: no cover

    async def send(
        self, method: str, path: str, json_body: Any = None, params: Params = None
    ) -> Any:
        """A non-idempotent request: never retried."""
        try:
            response = await self.http.request(method, path, json=json_body, params=params)
        except httpx.DecodingError as exc:
            raise self.undecodable(exc) from exc
        except httpx.TransportError as exc:
            raise self.transport_error(exc) from exc
        return self.decode(response)

    def undecodable(self, exc: httpx.DecodingError) -> BackendError:
        return BadResponse(self.name, f"response body could not be decoded: {exc}"[:200])

    def transport_error(self, exc: httpx.TransportError) -> BackendError:
        where = str(self.http.base_url).rstrip("/")
        if isinstance(exc, httpx.TimeoutException):
            seconds = self.http.timeout.read
            return BackendTimeout(self.name, f"no answer from {where} within {seconds:g}s")
        return BackendUnreachable(self.name, f"{where}: {describe_transport_error(exc)}")

    def decode(self, response: httpx.Response) -> Any:
        status = response.status_code
        if status == 401:
            raise AuthFailed(self.name, "401 Unauthorized: credentials missing or wrong")
        if status == 403:
            raise AuthFailed(self.name, "403 Forbidden: these credentials lack permission")
        if status == 404:
            raise NotFound(self.name, f"404 Not Found: {response.request.url.path}")
        if status >= 400:
            raise BadResponse(self.name, f"HTTP {status}: {self.error_text(response)}")
        if not response.content:
            return None
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            snippet = response.text[:80].replace("\n", " ")
            raise BadResponse(
                self.name, f"HTTP {status} with a body that is not JSON: {snippet!r}"
            ) from None

    @staticmethod
    def error_text(response: httpx.Response) -> str:
        try:
            body = response.json()
        except ValueError:
            return response.text[:120].strip() or response.reason_phrase
        if isinstance(body, dict):
            for key in ("error", "message"):
                if isinstance(body.get(key), str):
                    return str(body[key])[:200]
        return response.reason_phrase

    def parse(self, what: str, fn: Callable[[], T]) -> T:
        """Run a parser; a response of an unexpected shape becomes BadResponse."""
        try:
            return fn()
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise BadResponse(self.name, f"unexpected {what} response: {exc!r}"[:200]) from None
