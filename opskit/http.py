"""The one place that builds clients: auth, TLS verification and CA bundle, timeouts.

Every backend module receives a client from here; no other module constructs one.
"""

from __future__ import annotations

import functools
import ssl
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx

from opskit.config import SECRET_KEYS, Backend, ElasticsearchBackend

if TYPE_CHECKING:
    from elasticsearch import AsyncElasticsearch

USER_AGENT = "opskit/0.1"
_SECRET_PARAMS = SECRET_KEYS | {"access_token", "auth", "apikey", "key"}


def mask_url(url: str) -> str:
    """A URL fit for a log line: no userinfo, secret-looking query values masked."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    query = urlencode(
        [(k, "****" if k.lower() in _SECRET_PARAMS else v) for k, v in parse_qsl(parts.query)]
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


class RequestLog:
    """`--debug`: one line per request on stderr (method, URL, status, time), secrets masked."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr

    def write(self, backend: str, method: str, url: str, status: int | str, ms: float) -> None:
        print(f"[{backend}] {method} {mask_url(url)} -> {status} {ms:.0f}ms", file=self.stream)

    def hooks(self, backend: str) -> dict[str, list[Any]]:
        async def on_request(request: httpx.Request) -> None:
            request.extensions["opskit_t0"] = time.perf_counter()

        async def on_response(response: httpx.Response) -> None:
            t0 = response.request.extensions.get("opskit_t0", time.perf_counter())
            ms = (time.perf_counter() - t0) * 1000
            self.write(
                backend,
                response.request.method,
                str(response.request.url),
                response.status_code,
                ms,
            )

        return {"request": [on_request], "response": [on_response]}


_warned_insecure: set[str] = set()


def _verify(name: str, backend: Backend) -> ssl.SSLContext | bool:
    if not backend.verify:
        if name not in _warned_insecure:
            _warned_insecure.add(name)
            print(
                f"opskit: warning: TLS verification is off for {name} (verify = false)",
                file=sys.stderr,
            )
        return False
    return ssl_context(str(backend.ca_bundle) if backend.ca_bundle is not None else None)


@functools.cache
def ssl_context(cafile: str | None = None) -> ssl.SSLContext:
    """One verifying context per CA bundle per process, shared by every client: loading a
    bundle costs ~50 ms, and each client used to load its own (bench/, issue 8)."""
    if cafile is None:
        return httpx.create_ssl_context()  # what `verify=True` builds: certifi's bundle
    return ssl.create_default_context(cafile=cafile)


def _auth_headers(backend: Backend) -> tuple[dict[str, str], httpx.Auth | None]:
    headers = {"User-Agent": USER_AGENT}
    if backend.token is not None:
        headers["Authorization"] = f"Bearer {backend.token.get_secret_value()}"
        return headers, None
    if backend.username and backend.password is not None:
        return headers, httpx.BasicAuth(backend.username, backend.password.get_secret_value())
    return headers, None


def build_http(
    name: str,
    backend: Backend,
    log: RequestLog | None = None,
    extra_headers: dict[str, str] | None = None,
) -> httpx.AsyncClient:
    headers, auth = _auth_headers(backend)
    headers.update(extra_headers or {})
    seconds = backend.timeout.total_seconds()
    return httpx.AsyncClient(
        base_url=backend.url,
        headers=headers,
        auth=auth,
        verify=_verify(name, backend),
        timeout=httpx.Timeout(seconds, connect=min(seconds, 5.0)),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        event_hooks=log.hooks(name) if log else None,
        follow_redirects=False,
    )


def build_health_http(log: RequestLog | None = None) -> httpx.AsyncClient:
    """For the extra services' health endpoints: TLS verified, no credentials."""
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT},
        verify=ssl_context(),
        timeout=httpx.Timeout(5.0),
        event_hooks=log.hooks("health") if log else None,
        follow_redirects=True,
    )


def build_elasticsearch(backend: ElasticsearchBackend) -> AsyncElasticsearch:
    """The official 8.x client on httpx (no aiohttp), with the same auth and TLS rules."""
    from elasticsearch import AsyncElasticsearch

    kwargs: dict[str, Any] = {
        "node_class": "httpxasync",
        "request_timeout": backend.timeout.total_seconds(),
        "max_retries": backend.retries,
        "retry_on_timeout": True,
        "headers": {"User-Agent": USER_AGENT},
    }
    if backend.api_key is not None:
        kwargs["api_key"] = backend.api_key.get_secret_value()
    elif backend.token is not None:
        kwargs["bearer_auth"] = backend.token.get_secret_value()
    elif backend.username and backend.password is not None:
        kwargs["basic_auth"] = (backend.username, backend.password.get_secret_value())
    if backend.url.startswith("https"):
        verify = _verify("elasticsearch", backend)
        if verify is False:
            kwargs["verify_certs"] = False
            kwargs["ssl_show_warn"] = False
            warnings.filterwarnings("ignore", module="elastic_transport")
        elif backend.ca_bundle is not None:
            kwargs["ca_certs"] = str(backend.ca_bundle)
    return AsyncElasticsearch(backend.url, **kwargs)
