#!/usr/bin/env python3
"""A fault-injecting HTTP proxy on loopback, for the reliability tests.

    python lab/faultproxy.py --upstream http://127.0.0.1:9090 [--port 0]

Forwards every request to the upstream server (a real lab server) until told otherwise:

    POST /__fault  {"mode": "...", "delay": seconds}

Optional keys: `path` (only requests whose path contains it get the fault; the others are
forwarded), `method` (likewise, e.g. "POST"), `after` (let that many matching requests
through first: a server that fails half-way through a job).

modes: `none` (forward), `status` (answer with `status`, default 500, and a JSON error
body), `slow` (wait `delay` seconds, then forward), `malformed` (200 with a body that is not
JSON), `truncated` (the upstream's answer cut in half), `shape` (200 with valid JSON of an
unexpected shape), `disconnect` (read the request, close the connection without an answer:
a server dying mid-session). `GET /__fault` returns the current fault, with `seen`: how
many requests it has matched. Prints
`faultproxy listening on http://127.0.0.1:PORT` once ready. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from urllib.parse import urlsplit

FAULT: dict[str, object] = {"mode": "none"}
SEEN = {"matching": 0}
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    body = b""
    if int(headers.get("content-length", "0")):
        body = await reader.readexactly(int(headers["content-length"]))
    return method, target, headers, body


def response(
    status: int, body: bytes, ctype: str = "application/json", extra: dict[str, str] | None = None
) -> bytes:
    head = [
        f"HTTP/1.1 {status} Fault",
        f"Content-Type: {ctype}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        "X-Elastic-Product: Elasticsearch",
    ]
    head += [f"{k}: {v}" for k, v in (extra or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


async def forward(
    upstream: tuple[str, int], method: str, target: str, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection(*upstream)
    out = {k: v for k, v in headers.items() if k not in HOP}
    out["host"] = f"{upstream[0]}:{upstream[1]}"
    out["connection"] = "close"
    out["content-length"] = str(len(body))
    out["accept-encoding"] = "identity"  # so "truncated" cuts JSON, not a gzip stream
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in out.items())
    writer.write(head.encode("latin-1") + b"\r\n" + body)
    await writer.drain()
    raw = await reader.read()
    writer.close()
    head_raw, _, payload = raw.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    resp_headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        resp_headers[k.strip().lower()] = v.strip()
    if resp_headers.get("transfer-encoding", "").lower() == "chunked":
        payload = dechunk(payload)
    return status, resp_headers, payload


def dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += rest[:size]
        data = rest[size + 2 :]
    return out


def _applies(method: str, target: str) -> bool:
    """Whether the current fault hits this request (path/method filters, `after`)."""
    if str(FAULT.get("path", "")) not in target:
        return False
    if FAULT.get("method") and str(FAULT["method"]).upper() != method.upper():
        return False
    SEEN["matching"] += 1
    return SEEN["matching"] > int(str(FAULT.get("after", 0)))


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, upstream: tuple[str, int]
) -> None:
    try:
        method, target, headers, body = await read_request(reader)
    except (asyncio.IncompleteReadError, ValueError, ConnectionError):
        writer.close()
        return
    try:
        if target.startswith("/__fault"):
            if method == "POST":
                FAULT.clear()
                FAULT.update(json.loads(body or b"{}"))
                SEEN["matching"] = 0
            # the fault, and how many requests it has matched so far
            writer.write(response(200, json.dumps({**FAULT, "seen": SEEN["matching"]}).encode()))
            return
        mode = FAULT.get("mode", "none")
        if not _applies(method, target):
            mode = "none"
        if mode == "disconnect":
            return
        if mode == "status":
            code = int(str(FAULT.get("status", 500)))
            err = {"status": "error", "error": f"injected {code}", "message": f"injected {code}"}
            writer.write(response(code, json.dumps(err).encode()))
            return
        if mode == "malformed":
            writer.write(response(200, b"<html>this is not json</html>"))
            return
        if mode == "shape":
            writer.write(response(200, json.dumps({"unexpected": [1, 2, 3]}).encode()))
            return
        if mode == "slow":
            await asyncio.sleep(float(str(FAULT.get("delay", 30))))
        status, resp_headers, payload = await forward(upstream, method, target, headers, body)
        if mode == "truncated":
            payload = payload[: max(len(payload) // 2, 1)]
        ctype = resp_headers.get("content-type", "application/json")
        keep = {
            k: v for k, v in resp_headers.items() if k.startswith("x-") and k != "x-elastic-product"
        }
        writer.write(response(status, payload, ctype, keep))
    except (ConnectionError, OSError) as exc:
        writer.write(response(502, json.dumps({"error": f"upstream: {exc}"}).encode()))
    finally:
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    parts = urlsplit(args.upstream)
    upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
    server = await asyncio.start_server(lambda r, w: handle(r, w, upstream), "127.0.0.1", args.port)
    port = server.sockets[0].getsockname()[1]
    print(f"faultproxy listening on http://127.0.0.1:{port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
