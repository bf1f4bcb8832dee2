"""Lab services: mail. The lab's own Postfix (config, queue and data directories under the
lab's state, `postfix -c DIR start-fg`) with kumina's prometheus-postfix-exporter reading
its showq socket and its log; Dovecot (IMAP and POP3, `dovecot -F`) with its OpenMetrics
stats listener; a relay that accepts and never answers; and a bounded mail traffic
generator. Mail to MAIL_DOMAIN is delivered into Maildirs that Dovecot serves; mail to
REFUSED_DOMAIN and BLACKHOLE_DOMAIN is deferred and builds a real queue.

`lab.py mail send|queue|flush|purge|login` drive it by hand (and the tests).
Standard library only."""

from __future__ import annotations

import argparse
import imaplib
import json
import poplib
import pwd
import shutil
import smtplib
import subprocess
import sys
import uuid
from email.message import EmailMessage
from pathlib import Path

from labcore import (
    BLACKHOLE_DOMAIN,
    LAB,
    MAIL_DOMAIN,
    MAIL_USERS,
    REFUSED_DOMAIN,
    Server,
    offset,
    port,
    render,
    state_dir,
)
from mail_traffic import pop3_login

DEBIAN_PACKAGES: dict[str, str] = {
    "postfix": "/usr/sbin/postfix",
    "dovecot-core": "/usr/sbin/dovecot",
    "dovecot-imapd": "/usr/lib/dovecot/imap",
    "dovecot-pop3d": "/usr/lib/dovecot/pop3",
    "prometheus-postfix-exporter": "/usr/bin/prometheus-postfix-exporter",
}
CONFIG = LAB / "config" / "mail"
MAIL_USER = "mail"  # owns the Maildirs (Postfix virtual(8) and Dovecot's userdb); in base-passwd
QUEUE_CAP = 300  # the traffic generator adds no deferred mail above this many queued messages


def postfix_conf() -> Path:
    return state_dir() / "postfix" / "conf"


def postfix_queue() -> Path:
    return state_dir() / "postfix" / "queue"


def mail_root() -> Path:
    return state_dir() / "mail"


def _ids() -> tuple[int, int]:
    entry = pwd.getpwnam(MAIL_USER)
    return entry.pw_uid, entry.pw_gid


def _extra() -> dict[str, str]:
    uid, gid = _ids()
    return {
        "MAIL_DOMAIN": MAIL_DOMAIN,
        "REFUSED_DOMAIN": REFUSED_DOMAIN,
        "BLACKHOLE_DOMAIN": BLACKHOLE_DOMAIN,
        "MAIL_UID": str(uid),
        "MAIL_GID": str(gid),
        "OFFSET": str(offset()),
    }


def _maildirs() -> None:
    """One Maildir per lab user, owned by the mail user, shared by Postfix and Dovecot."""
    uid, gid = _ids()
    root = mail_root()
    root.mkdir(parents=True, exist_ok=True)
    shutil.chown(root, uid, gid)
    for user in MAIL_USERS:
        for sub in ("", "Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"):
            path = root / user / sub
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, uid, gid)


# --------------------------------------------------------------------------- postfix


def prepare_postfix() -> None:
    conf = postfix_conf()
    extra = _extra()
    render(CONFIG / "main.cf.in", conf / "main.cf", extra)
    render(CONFIG / "master.cf.in", conf / "master.cf", extra)
    (conf / "vmailbox").write_text(
        "".join(f"{user}@{MAIL_DOMAIN} {user}/Maildir/\n" for user in MAIL_USERS)
    )
    (conf / "transport").write_text(
        f"{REFUSED_DOMAIN} smtp:[127.0.0.1]:{port('relay_refused')}\n"
        f"{BLACKHOLE_DOMAIN} smtp:[127.0.0.1]:{port('relay_blackhole')}\n"
    )
    for sub in ("queue", "data"):
        (state_dir() / "postfix" / sub).mkdir(parents=True, exist_ok=True)
    shutil.chown(state_dir() / "postfix" / "data", "postfix", "postfix")
    _maildirs()
    # Creates the queue's subdirectories with Postfix's own owners and modes.
    subprocess.run(
        ["/usr/sbin/postfix", "-c", str(conf), "set-permissions"],
        check=True,
        capture_output=True,
    )
    check = subprocess.run(
        ["/usr/sbin/postfix", "-c", str(conf), "check"], capture_output=True, text=True
    )
    if check.returncode != 0:
        sys.exit(f"lab: postfix check failed:\n{check.stderr}")


def postfix_argv() -> list[str]:
    # postfix -c DIR start-fg, wrapped: SIGTERM becomes `postfix stop` (see postfix_fg.py)
    return [sys.executable, str(LAB / "postfix_fg.py"), str(postfix_conf()), str(postfix_queue())]


def exporter_argv() -> list[str]:
    return [
        "/usr/bin/prometheus-postfix-exporter",
        f"--web.listen-address=127.0.0.1:{port('postfix_exporter')}",
        f"--postfix.showq_path={postfix_queue() / 'public' / 'showq'}",
        f"--postfix.logfile_path={state_dir() / 'logs' / 'postfix.log'}",
    ]


# --------------------------------------------------------------------------- dovecot


def dovecot_conf() -> Path:
    return state_dir() / "dovecot" / "dovecot.conf"


def prepare_dovecot() -> None:
    base = state_dir() / "dovecot"
    for sub in ("run", "lib"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    render(CONFIG / "dovecot.conf.in", dovecot_conf(), _extra())
    users = base / "users"
    users.write_text("".join(f"{user}:{{PLAIN}}{pw}::::::\n" for user, pw in MAIL_USERS.items()))
    users.chmod(0o640)
    shutil.chown(users, "root", "dovecot")
    _maildirs()


def dovecot_argv() -> list[str]:
    return ["/usr/sbin/dovecot", "-F", "-c", str(dovecot_conf())]


# --------------------------------------------------------------------------- helpers


def blackhole_argv() -> list[str]:
    return [sys.executable, str(LAB / "mail_blackhole.py"), "--port", str(port("relay_blackhole"))]


def traffic_argv() -> list[str]:
    return [
        sys.executable,
        str(LAB / "mail_traffic.py"),
        "--smtp-port",
        str(port("smtp")),
        "--imap-port",
        str(port("imap")),
        "--pop3-port",
        str(port("pop3")),
        "--queue-dir",
        str(postfix_queue()),
        "--queue-cap",
        str(QUEUE_CAP),
    ]


class ProcessServer(Server):
    """A server without a port of its own (the traffic generator): healthy while its process
    runs. Its http_port is relay_refused, where nothing may listen anyway, so lab.start()'s
    free-port check doubles as the check that the refusing relay really refuses."""

    def healthy(self) -> bool:
        return self.pid() is not None


SERVERS: list[Server] = [
    Server("relay_blackhole", "tcp", "relay_blackhole", argv=blackhole_argv),
    Server("postfix", "tcp", "smtp", argv=postfix_argv, prepare=prepare_postfix),
    Server("postfix_exporter", "/metrics", "postfix_exporter", argv=exporter_argv),
    Server(
        "dovecot",
        "/metrics",
        "dovecot_stats",
        argv=dovecot_argv,
        prepare=prepare_dovecot,
        other_ports=["imap", "pop3"],
    ),
    ProcessServer("mail_traffic", "pid", "relay_refused", argv=traffic_argv),
]


# --------------------------------------------------------------------------- lab.py mail


def send(count: int, domain: str, user: str, subject: str = "") -> list[str]:
    """Submit `count` messages over SMTP; returns Postfix's queue ids."""
    ids: list[str] = []
    with smtplib.SMTP("127.0.0.1", port("smtp"), timeout=30) as smtp:
        smtp.ehlo("lab.localhost")
        for _ in range(count):
            msg = EmailMessage()
            msg["From"] = f"lab-sender@{MAIL_DOMAIN}"
            msg["To"] = f"{user}@{domain}"
            msg["Subject"] = subject or f"opskit lab message {uuid.uuid4().hex[:12]}"
            msg["Message-ID"] = f"<{uuid.uuid4().hex}@{MAIL_DOMAIN}>"
            msg.set_content("Sent by lab.py mail send.\n")
            smtp.mail(msg["From"])
            code, reply = smtp.rcpt(msg["To"])
            if code != 250:
                sys.exit(f"lab: RCPT {msg['To']} refused: {code} {reply.decode()}")
            code, reply = smtp.data(msg.as_bytes())
            if code != 250:
                sys.exit(f"lab: DATA refused: {code} {reply.decode()}")
            ids.append(reply.decode().rsplit(" ", 1)[-1])
    return ids


def queue_entries() -> list[dict[str, object]]:
    proc = subprocess.run(
        ["/usr/sbin/postqueue", "-c", str(postfix_conf()), "-j"],
        capture_output=True,
        text=True,
        check=True,
    )
    return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]


def queue_counts() -> dict[str, int]:
    counts = {q: 0 for q in ("maildrop", "incoming", "active", "deferred", "hold")}
    for entry in queue_entries():
        name = str(entry.get("queue_name", "unknown"))
        counts[name] = counts.get(name, 0) + 1
    return counts


def login(protocol: str, user: str, password: str) -> bool:
    """One login over IMAP or POP3; True when the server accepted the password."""
    try:
        if protocol == "pop3":
            return pop3_login(port("pop3"), user, password)
        with imaplib.IMAP4("127.0.0.1", port("imap"), timeout=30) as imap:
            imap.login(user, password)
            imap.select("INBOX", readonly=True)
            imap.logout()
        return True
    except (imaplib.IMAP4.error, poplib.error_proto):
        return False


def _cmd_send(args: argparse.Namespace) -> None:
    ids = send(args.count, args.domain, args.to, args.subject)
    print(json.dumps({"sent": len(ids), "domain": args.domain, "queue_ids": ids}))


def _cmd_queue(args: argparse.Namespace) -> None:
    counts = queue_counts()
    if args.json:
        print(json.dumps(counts))
    else:
        for name, n in counts.items():
            print(f"{name:<9} {n}")
        print(f"{'total':<9} {sum(counts.values())}")


def _cmd_flush(_: argparse.Namespace) -> None:
    subprocess.run(["/usr/sbin/postqueue", "-c", str(postfix_conf()), "-f"], check=True)


def _cmd_purge(args: argparse.Namespace) -> None:
    conf = str(postfix_conf())
    if args.recipient:
        ids = [
            str(e["queue_id"])
            for e in queue_entries()
            if any(args.recipient in str(r.get("address", "")) for r in e.get("recipients", []))  # type: ignore[attr-defined]
        ]
        if ids:
            subprocess.run(
                ["/usr/sbin/postsuper", "-c", conf, "-d", "-"],
                input="\n".join(ids) + "\n",
                text=True,
                check=True,
            )
        print(json.dumps({"deleted": len(ids)}))
        return
    which = [] if args.queue == "ALL" else [args.queue]
    subprocess.run(["/usr/sbin/postsuper", "-c", conf, "-d", "ALL", *which], check=True)


def _cmd_login(args: argparse.Namespace) -> None:
    user = args.user
    ok = sum(login(args.protocol, user, MAIL_USERS[user]) for _ in range(args.ok))
    failed = sum(not login(args.protocol, user, "wrong-password") for _ in range(args.fail))
    print(json.dumps({"protocol": args.protocol, "ok": ok, "failed": failed}))


def add_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p_mail = sub.add_parser("mail", help="drive the lab's Postfix and Dovecot")
    mail = p_mail.add_subparsers(dest="mail_cmd", required=True)
    p_send = mail.add_parser("send", help="submit N messages over SMTP now")
    p_send.add_argument("count", type=int)
    p_send.add_argument(
        "--domain",
        default=REFUSED_DOMAIN,
        help=f"{REFUSED_DOMAIN} / {BLACKHOLE_DOMAIN}: deferred; {MAIL_DOMAIN}: delivered",
    )
    p_send.add_argument("--to", default="lab", help="the recipient's local part")
    p_send.add_argument("--subject", default="")
    p_send.set_defaults(fn=_cmd_send)
    p_queue = mail.add_parser("queue", help="the queue counts as Postfix sees them")
    p_queue.add_argument("--json", action="store_true")
    p_queue.set_defaults(fn=_cmd_queue)
    mail.add_parser("flush", help="retry deferred mail now").set_defaults(fn=_cmd_flush)
    p_purge = mail.add_parser("purge", help="delete queued mail (postsuper -d)")
    p_purge.add_argument("--queue", default="deferred", help="deferred (default) or ALL")
    p_purge.add_argument("--recipient", default="", help="only mail to addresses containing this")
    p_purge.set_defaults(fn=_cmd_purge)
    p_login = mail.add_parser("login", help="IMAP/POP3 logins, some with a wrong password")
    p_login.add_argument("--fail", type=int, default=0)
    p_login.add_argument("--ok", type=int, default=0)
    p_login.add_argument("--user", default=next(iter(MAIL_USERS)), choices=list(MAIL_USERS))
    p_login.add_argument("--protocol", default="imap", choices=["imap", "pop3"])
    p_login.set_defaults(fn=_cmd_login)
