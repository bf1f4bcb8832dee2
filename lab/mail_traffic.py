#!/usr/bin/env python3
"""The lab's mail traffic: a few messages and logins a minute over loopback, for a bounded
time (OPSKIT_LAB_TRAFFIC_HOURS, default 8; then it idles until the lab stops it).

Each round (every --interval seconds) it submits one message over SMTP: most to the lab's
own users (delivered into Maildirs), the rest to the refused and blackhole relays, which
pile up in Postfix's deferred queue until --queue-cap messages are queued. It also logs in
over IMAP or POP3; about one login in eight uses a wrong password, and for ten minutes of
every hour a misconfigured client retries a wrong password every round, so Dovecot's
authentication-failure rate is elevated by real logins. Standard library only."""

from __future__ import annotations

import argparse
import imaplib
import os
import poplib
import random
import smtplib
import sys
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from labcore import BLACKHOLE_DOMAIN, MAIL_DOMAIN, MAIL_USERS, REFUSED_DOMAIN


def queued(queue_dir: Path) -> int:
    """Messages in the queue, counted as Postfix stores them (one file per message)."""
    total = 0
    for name in ("maildrop", "incoming", "active", "deferred", "hold"):
        total += sum(1 for p in (queue_dir / name).rglob("*") if p.is_file())
    return total


def submit(smtp_port: int, rcpt: str) -> None:
    msg = EmailMessage()
    sender = random.choice(list(MAIL_USERS))
    msg["From"] = f"{sender}@{MAIL_DOMAIN}"
    msg["To"] = rcpt
    msg["Subject"] = f"lab traffic {uuid.uuid4().hex[:8]}"
    msg.set_content("Lab traffic: " + "lorem ipsum " * random.randint(5, 400) + "\n")
    with smtplib.SMTP("127.0.0.1", smtp_port, timeout=30) as smtp:
        smtp.send_message(msg)


def imap_login(imap_port: int, user: str, password: str) -> bool:
    try:
        with imaplib.IMAP4("127.0.0.1", imap_port, timeout=30) as imap:
            imap.login(user, password)
            imap.select("INBOX")
            _, data = imap.search(None, "ALL")
            ids = data[0].split()
            if ids:
                imap.fetch(ids[-1], "(RFC822.HEADER)")
            if len(ids) > 50:  # keep the Maildirs small: expunge the oldest
                for num in ids[:10]:
                    imap.store(num, "+FLAGS", "\\Deleted")
                imap.expunge()
            imap.logout()
        return True
    except imaplib.IMAP4.error:
        return False


def pop3_login(pop3_port: int, user: str, password: str) -> bool:
    try:
        pop = poplib.POP3("127.0.0.1", pop3_port, timeout=30)
        try:
            pop.user(user)
            pop.pass_(password)
            pop.stat()
        finally:
            pop.quit()
        return True
    except poplib.error_proto:
        return False


def one_round(args: argparse.Namespace, started: float) -> None:
    users = list(MAIL_USERS)
    roll = random.random()
    if roll < 0.6 or queued(args.queue_dir) >= args.queue_cap:
        rcpt = f"{random.choice(users)}@{MAIL_DOMAIN}"
    elif roll < 0.8:
        rcpt = f"user{random.randint(1, 50)}@{REFUSED_DOMAIN}"
    else:
        rcpt = f"user{random.randint(1, 50)}@{BLACKHOLE_DOMAIN}"
    submit(args.smtp_port, rcpt)
    user = random.choice(users)
    password = MAIL_USERS[user] if random.random() >= 0.125 else "not-the-password"
    if random.random() < 0.7:
        imap_login(args.imap_port, user, password)
    else:
        pop3_login(args.pop3_port, user, password)
    minute_of_hour = int((time.monotonic() - started) // 60) % 60
    if 30 <= minute_of_hour < 40:  # the misconfigured client's ten bad minutes an hour
        for _ in range(3):
            imap_login(args.imap_port, users[0], "stale-saved-password")


def main() -> None:
    parser = argparse.ArgumentParser(prog="mail_traffic")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--imap-port", type=int, required=True)
    parser.add_argument("--pop3-port", type=int, required=True)
    parser.add_argument("--queue-dir", type=Path, required=True)
    parser.add_argument("--queue-cap", type=int, default=300)
    parser.add_argument("--interval", type=float, default=20.0)
    args = parser.parse_args()
    hours = float(os.environ.get("OPSKIT_LAB_TRAFFIC_HOURS", "8"))
    started = time.monotonic()
    print(f"mail_traffic: a round every {args.interval:.0f}s for {hours:g} h", flush=True)
    while time.monotonic() - started < hours * 3600:
        try:
            one_round(args, started)
        except (OSError, smtplib.SMTPException) as exc:  # a service stopped by a test
            print(f"mail_traffic: round failed: {exc}", flush=True)
        time.sleep(args.interval)
    print("mail_traffic: time is up; idle until the lab stops me", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
