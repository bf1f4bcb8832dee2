"""The one place that builds clients: auth, TLS verification and CA bundle, timeouts.

Every backend module receives a client from here; no other module constructs one.
"""

from __future__ import annotations

import functools
import json
import ssl
import sys
import time
import warnings
from typing import TYPE_CHECKING, Any, TextIO, cast
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import httpx

from opskit.config import SECRET_KEYS, Backend, ElasticsearchBackend
from opskit.errors import AuthFailed, BackendTimeout, BackendUnreachable, BadResponse, NotFound

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


def ssl_context(cafile: str | None = None) -> ssl.SSLContext:
    """One verifying context per CA bundle per process, shared by every client: loading a
    bundle costs ~50 ms, and each client used to load its own (bench/, issue 8).
    (`ssl_context()` and `ssl_context(None)` are one cache entry: functools.cache keys
    them apart, which loaded certifi's bundle twice per process.)"""
    return _ssl_context(cafile)


@functools.cache
def _ssl_context(cafile: str | None) -> ssl.SSLContext:
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


def build_elasticsearch(
    backend: ElasticsearchBackend, log: RequestLog | None = None
) -> AsyncElasticsearch:
    """The official 8.x client on httpx (no aiohttp), with the same auth and TLS rules,
    built at its first use (`LazyElasticsearch`: `status` and the TUI's refresh never
    import it)."""
    return cast("AsyncElasticsearch", LazyElasticsearch(backend, log))


def build_official_elasticsearch(backend: ElasticsearchBackend) -> AsyncElasticsearch:
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


# ------------------------------------------------------------------ Elasticsearch, lazily
# Importing the official client costs ~0.2 s (its API namespaces, elastic_transport,
# urllib3), more than everything else `opskit status` imports. Its two read-only GETs,
# cluster health and cat indices, also made by every TUI refresh, go over httpx here with
# the official client's semantics; every other call builds the official client on first
# use and goes through it, as before.

ES = "elasticsearch"
ES_RETRY_STATUS = frozenset({429, 502, 503, 504})  # elastic_transport's retry_on_status
ES_ACCEPT = "application/vnd.elasticsearch+json; compatible-with=8"  # what the client sends


def _es_quote(value: object) -> str:
    """elasticsearch-py's `_quote(_escape(value))`: lists joined with commas, booleans
    lowercase, then percent-encoded with commas and stars kept."""
    if isinstance(value, list | tuple):
        value = ",".join(map(str, value))
    elif isinstance(value, bool):
        value = "true" if value else "false"
    return quote(str(value), ",*")


def _es_target(path: str, index: object, params: dict[str, object]) -> str:
    """The request target the official client builds: `path[/index]?k=v&...` (sorted, as
    its generated API methods order their query)."""
    if index:
        path = f"{path}/{_es_quote(index)}"
    query = "&".join(f"{k}={_es_quote(v)}" for k, v in sorted(params.items()))
    return f"{path}?{query}" if query else path


def _es_reason(body: Any) -> str:
    """The text `ElasticsearchClient.map_error` gives an ApiError: `type: reason`."""
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return f"{error.get('type', '')}: {error.get('reason', '')}"[:200]
        return str(error)[:200]
    return str(body)[:200]


class _Namespace:
    """`es.cluster` / `es.cat`: a few methods here, the rest the official client's."""

    def __init__(self, owner: LazyElasticsearch, name: str, **own: Any) -> None:
        self._owner = owner
        self._name = name
        self.__dict__.update(own)

    def __getattr__(self, attr: str) -> Any:
        return getattr(getattr(self._owner.official, self._name), attr)


class LazyElasticsearch:
    """Stands in for `AsyncElasticsearch` in `ElasticsearchClient` (`es`): `cluster.health`
    and `cat.indices` over httpx, the same request (path, query, Accept, auth, timeout)
    with the same retries (connection errors, timeouts, 429/502/503/504, `retries` more
    times), product check and error texts; anything else through the official client,
    imported and built at its first use."""

    def __init__(self, backend: ElasticsearchBackend, log: RequestLog | None = None) -> None:
        self.backend = backend
        self.log = log
        self._official: AsyncElasticsearch | None = None
        self._http: httpx.AsyncClient | None = None
        self._verified = False
        self.cluster = _Namespace(self, "cluster", health=self._cluster_health)
        self.cat = _Namespace(self, "cat", indices=self._cat_indices)

    @property
    def official(self) -> AsyncElasticsearch:
        if self._official is None:
            self._official = build_official_elasticsearch(self.backend)
        return self._official

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            raise AttributeError(attr)
        return getattr(self.official, attr)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._official is not None:
            await self._official.close()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = self._build_http()
        return self._http

    def _build_http(self) -> httpx.AsyncClient:
        b = self.backend
        headers = {"User-Agent": USER_AGENT, "Accept": ES_ACCEPT}
        auth: httpx.Auth | None = None
        if b.api_key is not None:
            headers["Authorization"] = f"ApiKey {b.api_key.get_secret_value()}"
        elif b.token is not None:
            headers["Authorization"] = f"Bearer {b.token.get_secret_value()}"
        elif b.username and b.password is not None:
            auth = httpx.BasicAuth(b.username, b.password.get_secret_value())
        # as build_official_elasticsearch: the verify = false warning only for https
        verify = _verify(ES, b) if b.url.startswith("https") else ssl_context()
        return httpx.AsyncClient(
            base_url=b.url,
            headers=headers,
            auth=auth,
            verify=verify,
            timeout=httpx.Timeout(b.timeout.total_seconds()),
            event_hooks=self.log.hooks(ES) if self.log else None,
            follow_redirects=False,
        )

    async def _cluster_health(self, *, index: object = None, **params: object) -> Any:
        return await self._get(_es_target("/_cluster/health", index, params))

    async def _cat_indices(self, *, index: object = None, **params: object) -> Any:
        return await self._get(_es_target("/_cat/indices", index, params))

    async def _get(self, target: str) -> Any:
        url = self.backend.url
        retries = self.backend.retries
        for attempt in range(retries + 1):
            last = attempt == retries
            try:
                response = await self.http.get(target)
            except httpx.TimeoutException as exc:
                if last:
                    raise BackendTimeout(ES, f"no answer from {url} in time") from exc
                continue
            except httpx.TransportError as exc:
                if last:
                    raise BackendUnreachable(ES, f"{url}: {_es_transport_reason(exc)}") from exc
                continue
            except httpx.DecodingError as exc:
                raise BadResponse(ES, "response is not valid JSON") from exc
            if response.status_code in ES_RETRY_STATUS and not last:
                continue
            return self._decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _decode(self, response: httpx.Response) -> Any:
        status = response.status_code
        if not 200 <= status < 299:  # the official client's test, and its messages
            try:
                body: Any = json.loads(response.content)
            except ValueError:
                body = response.text
            if status == 401:
                raise AuthFailed(ES, "401 Unauthorized: credentials missing or wrong")
            if status == 403:
                raise AuthFailed(ES, "403 Forbidden: these credentials lack permission")
            if status == 404:
                raise NotFound(ES, f"404 Not Found: {_es_reason(body)}")
            raise BadResponse(ES, f"HTTP {status}: {_es_reason(body)}")
        if not self._verified:
            if response.headers.get("x-elastic-product", "") != "Elasticsearch":
                raise BadResponse(ES, f"{self.backend.url} does not answer as Elasticsearch")
            self._verified = True
        try:
            return json.loads(response.content)
        except ValueError:
            raise BadResponse(ES, "response is not valid JSON") from None


def _es_transport_reason(exc: httpx.TransportError) -> str:
    """As `map_error` words elastic_transport's TlsError and ConnectionError."""
    from opskit.clients.base import describe_transport_error

    cause: BaseException | None = exc
    for _ in range(10):  # the chain httpx raises: ConnectError from ssl.SSLError, ...
        if cause is None:
            break
        if isinstance(cause, ssl.SSLError):
            return f"TLS error: {str(exc)[:160]}"
        cause = cause.__cause__ or cause.__context__
    return describe_transport_error(exc)[:160]
