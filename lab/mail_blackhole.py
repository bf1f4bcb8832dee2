#!/usr/bin/env python3
"""A relay that accepts TCP connections and never answers: Postfix's smtp client waits for
a greeting until smtp_helo_timeout and defers the mail. Connections are dropped after
--hold seconds; at most --max are held at once. Loopback only, standard library only."""

from __future__ import annotations

import argparse
import selectors
import socket
import time


def main() -> None:
    parser = argparse.ArgumentParser(prog="mail_blackhole")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--hold", type=float, default=60.0)
    parser.add_argument("--max", type=int, default=64)
    args = parser.parse_args()
    listener = socket.create_server(("127.0.0.1", args.port), reuse_port=False)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    held: dict[socket.socket, float] = {}
    print(f"mail_blackhole: listening on 127.0.0.1:{args.port}", flush=True)
    while True:
        for key, _ in sel.select(timeout=1.0):
            if key.fileobj is listener:
                conn, peer = listener.accept()
                if len(held) >= args.max:
                    oldest = min(held, key=held.__getitem__)
                    oldest.close()
                    del held[oldest]
                held[conn] = time.monotonic()
                print(f"mail_blackhole: holding {peer[0]}:{peer[1]} (never answering)", flush=True)
        now = time.monotonic()
        for conn, since in list(held.items()):
            if now - since > args.hold:
                conn.close()
                del held[conn]


if __name__ == "__main__":
    main()
