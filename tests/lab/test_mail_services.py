"""The lab's mail services are the real thing: Postfix with kumina's postfix_exporter holding
a real queue, Dovecot with its OpenMetrics stats, read by the lab's Prometheus. The mail
traffic generator is paused for this module (and started again), so every count here is
the test's own doing."""

from __future__ import annotations

import imaplib
import json
import smtplib
import sys
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import pytest

from tests.conftest import (
    LAB,
    OFFSET,
    STATE,
    Lab,
    get_json,
    lab_ctl,
    lab_py,
    prom_value,
    wait_for,
)

sys.path.insert(0, str(LAB))
import labcore

SMTP_PORT = labcore.BASE_PORTS["smtp"] + OFFSET
IMAP_PORT = labcore.BASE_PORTS["imap"] + OFFSET
EXPORTER = f"http://127.0.0.1:{labcore.BASE_PORTS['postfix_exporter'] + OFFSET}/metrics"
DOVECOT_STATS = f"http://127.0.0.1:{labcore.BASE_PORTS['dovecot_stats'] + OFFSET}/metrics"
USER = "alice"
PASSWORD = labcore.MAIL_USERS[USER]


def scrape(url: str) -> dict[str, float]:
    """`name{labels}` -> value, as the exporter serves it right now."""
    with urllib.request.urlopen(url, timeout=10) as resp:
        text = resp.read().decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            samples[key] = float(value)
    return samples


def queue(samples: dict[str, float], name: str) -> float:
    return samples[f'postfix_showq_message_size_bytes_count{{queue="{name}"}}']


def in_flight(samples: dict[str, float]) -> float:
    return sum(queue(samples, q) for q in ("maildrop", "incoming", "active"))


def lab_mail(*args: str) -> Any:
    out = lab_py("mail", *args, timeout=60)
    return json.loads(out) if out.strip().startswith("{") else out


@pytest.fixture(scope="module", autouse=True)
def traffic_paused(lab: Lab) -> Iterator[None]:
    lab_ctl("server", "stop", "mail_traffic")
    try:
        yield
    finally:
        lab_ctl("server", "start", "mail_traffic")


def test_sent_mail_grows_the_deferred_queue_by_exactly_n(lab: Lab) -> None:
    quiet = wait_for(lambda: (s := scrape(EXPORTER)) and in_flight(s) == 0 and s, timeout=30)
    assert quiet, "Postfix's queue never settled (mail still in flight)"
    base = queue(quiet, "deferred")
    tag = f"opskit-test-{uuid.uuid4().hex[:10]}"
    n = 4
    try:
        sent = lab_mail("send", str(n), "--domain", labcore.REFUSED_DOMAIN, "--to", tag)
        assert sent["sent"] == n and len(set(sent["queue_ids"])) == n

        def settled() -> bool:
            s = scrape(EXPORTER)
            return in_flight(s) == 0 and queue(s, "deferred") == base + n

        assert wait_for(settled), f"deferred queue is not {base + n}: {scrape(EXPORTER)}"
        showq = STATE / "postfix" / "queue" / "public" / "showq"
        assert scrape(EXPORTER)[f'postfix_up{{path="{showq}"}}'] == 1
        # Postfix itself agrees, and Prometheus has scraped the same number.
        assert lab_mail("queue", "--json")["deferred"] == base + n
        expr = 'postfix_showq_message_size_bytes_count{job="postfix",queue="deferred"}'
        assert wait_for(lambda: prom_value(lab, expr) == base + n), prom_value(lab, expr)
    finally:
        lab_mail("purge", "--recipient", tag)
    assert wait_for(lambda: queue(scrape(EXPORTER), "deferred") == base, timeout=15)


def test_delivered_message_is_fetched_over_imap(lab: Lab) -> None:
    before = scrape(EXPORTER)
    subject = f"opskit test {uuid.uuid4().hex}"
    msg = EmailMessage()
    msg["From"] = f"bob@{labcore.MAIL_DOMAIN}"
    msg["To"] = f"{USER}@{labcore.MAIL_DOMAIN}"
    msg["Subject"] = subject
    msg.set_content("delivered by Postfix, read through Dovecot\n")
    with smtplib.SMTP("127.0.0.1", SMTP_PORT, timeout=30) as smtp:
        smtp.send_message(msg)

    with imaplib.IMAP4("127.0.0.1", IMAP_PORT, timeout=30) as imap:
        imap.login(USER, PASSWORD)

        def find() -> list[bytes]:
            imap.select("INBOX")
            _, data = imap.search(None, "SUBJECT", f'"{subject}"')
            return list(data[0].split())

        found = wait_for(find, timeout=15)
        assert len(found) == 1, f"{subject!r} not in {USER}'s INBOX"
        _, parts = imap.fetch(found[0], "(RFC822)")
        raw = parts[0][1] if isinstance(parts[0], tuple) else b""
        assert f"Subject: {subject}".encode() in raw
        assert b"by mail." + labcore.MAIL_DOMAIN.encode() in raw  # Postfix's Received: line
        imap.store(found[0], "+FLAGS", "\\Deleted")
        imap.expunge()
    # The exporter read Postfix's log: one more SMTP connection, one more message removed
    # from the queue after delivery.
    after = wait_for(
        lambda: (
            (s := scrape(EXPORTER))["postfix_qmgr_messages_removed_total"]
            > before["postfix_qmgr_messages_removed_total"]
            and s
        )
    )
    assert after, "postfix_qmgr_messages_removed_total did not grow"
    assert after["postfix_smtpd_connects_total"] >= before["postfix_smtpd_connects_total"] + 1


def _fail_login(_: int) -> bool:
    try:
        with imaplib.IMAP4("127.0.0.1", IMAP_PORT, timeout=30) as imap:
            imap.login(USER, "certainly-not-the-password")
    except imaplib.IMAP4.error:
        return True
    return False


def test_failed_logins_raise_dovecots_auth_failure_counter(lab: Lab) -> None:
    before = scrape(DOVECOT_STATS)
    n = 3
    # concurrently: Dovecot delays each failure (auth penalty) by 2 s and more
    with ThreadPoolExecutor(n) as pool:
        assert all(pool.map(_fail_login, range(n)))
    after = scrape(DOVECOT_STATS)
    assert after["dovecot_auth_failures_total"] == before["dovecot_auth_failures_total"] + n
    imap_key = 'dovecot_auth_by_service_total{service="imap"}'
    assert after[imap_key] == before.get(imap_key, 0) + n
    # and Prometheus sees it through the dovecot job
    expr = 'dovecot_auth_failures_total{job="dovecot"}'
    target = after["dovecot_auth_failures_total"]
    assert wait_for(lambda: (prom_value(lab, expr) or 0) >= target), prom_value(lab, expr)


def test_stopping_dovecot_fails_its_probes_and_starting_it_brings_them_back(lab: Lab) -> None:
    up = 'up{job="dovecot"}'
    probe = 'min(probe_success{job="blackbox-tcp",service="dovecot"})'
    assert prom_value(lab, up) == 1
    probed = prom_value(lab, probe) is not None
    lab_ctl("server", "stop", "dovecot")
    try:
        with pytest.raises(OSError):
            imaplib.IMAP4("127.0.0.1", IMAP_PORT, timeout=5)
        assert wait_for(lambda: prom_value(lab, up) == 0, timeout=25), "up stayed 1"
        if probed:
            assert wait_for(lambda: prom_value(lab, probe) == 0, timeout=25), "probe stayed 1"
    finally:
        lab_ctl("server", "start", "dovecot")
    assert wait_for(lambda: prom_value(lab, up) == 1, timeout=25)
    if probed:
        assert wait_for(lambda: prom_value(lab, probe) == 1, timeout=25)
    with imaplib.IMAP4("127.0.0.1", IMAP_PORT, timeout=10) as imap:
        imap.login(USER, PASSWORD)


def test_email_server_rules_are_loaded_against_real_series(lab: Lab) -> None:
    groups = get_json(f"{lab.prometheus}/api/v1/rules")["data"]["groups"]
    rules = {r["name"]: r for g in groups if g["name"] == "email-server" for r in g["rules"]}
    assert set(rules) == {"PostfixDown", "MailQueueHigh", "DovecotDown", "ImapConnectionErrorsHigh"}
    assert all(r["health"] == "ok" for r in rules.values())
    # the series the rules read exist (no rule silently watches a name nobody exports)
    assert prom_value(lab, 'sum(postfix_showq_message_size_bytes_count{job="postfix"})') is not None
    assert prom_value(lab, 'postfix_up{job="postfix", path=~".*showq.*"}') == 1
    assert prom_value(lab, 'dovecot_auth_failures_total{job="dovecot"}') is not None
    assert prom_value(lab, 'dovecot_auth_successes_total{job="dovecot"}') is not None
