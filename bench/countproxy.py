"""A pass-through HTTP/1.1 proxy on loopback that counts requests (keep-alive kept, so it
does not change how a client uses its connections). Runs in a thread of the bench."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter
from urllib.parse import urlsplit


def shape(path: str) -> str:
    """A path with its index names folded, so requests group by endpoint."""
    segs = path.split("/")
    return "/".join(_fold(s) if any(c in s for c in "-,*.") else s for s in segs)


def _fold(seg: str) -> str:
    return "{indices}" if "," in seg else "{index}"


async def _read_head(reader: asyncio.StreamReader) -> tuple[bytes, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    return head, headers


async def _read_body(
    reader: asyncio.StreamReader, headers: dict[str, str], until_eof: bool
) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        out = bytearray()
        while True:
            line = await reader.readuntil(b"\r\n")
            out += line
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = await reader.readuntil(b"\r\n")
                    out += trailer
                    if trailer == b"\r\n":
                        return bytes(out)
            out += await reader.readexactly(size + 2)
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"]))
    return await reader.read() if until_eof else b""


class CountingProxy:
    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.counts: Counter[str] = Counter()
        self.loop = asyncio.new_event_loop()
        self.url = ""
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> str:
        self._thread.start()
        self._ready.wait(10)
        return self.url

    def reset(self) -> None:
        self.counts.clear()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0, limit=1 << 24)
        )
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._ready.set()
        self.loop.run_forever()
        server.close()

    async def _client(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        ureader, uwriter = await asyncio.open_connection(self.host, self.port, limit=1 << 24)
        try:
            while True:
                try:
                    head, headers = await _read_head(creader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                body = await _read_body(creader, headers, until_eof=False)
                method, target = head.split(b" ", 2)[:2]
                path = urlsplit(target.decode("latin-1")).path
                self.counts[f"{method.decode()} {shape(path)}"] += 1
                uwriter.write(head + body)
                await uwriter.drain()
                rhead, rheaders = await _read_head(ureader)
                status = int(rhead.split(b" ", 2)[1])
                no_body = method == b"HEAD" or status in (204, 304) or 100 <= status < 200
                rbody = b"" if no_body else await _read_body(ureader, rheaders, until_eof=True)
                cwriter.write(rhead + rbody)
                await cwriter.drain()
                if rheaders.get("connection", "").lower() == "close":
                    return
        finally:
            for w in (uwriter, cwriter):
                w.close()
                with contextlib.suppress(Exception):
                    await w.wait_closed()
