#!/usr/bin/env python3
"""Checks the mails a live `candor serve` sent, as received by tests/smtp/sink.py, with Python's
own `email` package (called by tests/contracts/mail.sh):

  python3 tests/contracts/mail_check.py headers FILE...   # one mail each, in the order sent
  python3 tests/contracts/mail_check.py link FILE PREFIX  # prints the first link starting with PREFIX
  python3 tests/contracts/mail_check.py strip FILE        # the message as sent (without the
                                                          # sink's X-Envelope-To line) on stdout
  python3 tests/contracts/mail_check.py spam FILE         # "SCORE RULE,RULE" from spamassassin's output

`headers` takes the confirmation first, then the incident's mails (first, update, resolution),
then the maintenance window's (notice, cancellation): every one must carry RFC 5322's headers
once each (Date, From, To, Message-ID, Subject, MIME-Version), List-Id (RFC 2919), the
one-click unsubscribe (RFC 8058), Auto-Submitted (RFC 3834) and a text and an HTML part; each
thread keeps one subject, and its later mails name its first in In-Reply-To and References.
"""
import email
import email.policy
import email.utils
import re
import sys

MSG_ID = re.compile(r"^<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+>$")


def load(path):
    raw = open(path, "rb").read()
    if raw.startswith(b"X-Envelope-To:"):
        raw = raw.split(b"\r\n", 1)[1]
    return raw


def parse(path):
    return email.message_from_bytes(load(path), policy=email.policy.default)


def check(path, m, problems):
    def bad(why):
        problems.append(f"{path}: {why}")

    for name in ("Date", "From", "To", "Message-ID", "Subject", "MIME-Version"):
        n = len(m.get_all(name, []))
        if n != 1:
            bad(f"{name} appears {n} times (RFC 5322 wants it once)")
    date = m.get("Date")
    try:
        if email.utils.parsedate_to_datetime(str(date)) is None:
            raise ValueError
    except (TypeError, ValueError):
        bad(f"Date {date!r} is not an RFC 5322 date")
    if m.get("MIME-Version", "").strip() != "1.0":
        bad("MIME-Version is not 1.0")
    mid = str(m.get("Message-ID", "")).strip()
    if not MSG_ID.match(mid):
        bad(f"Message-ID {mid!r} is not <local@domain>")
    list_id = str(m.get("List-Id", ""))
    if not re.search(r"<[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+>\s*$", list_id):
        bad(f"List-Id {list_id!r} is not RFC 2919's <label.namespace>")
    unsub = str(m.get("List-Unsubscribe", ""))
    if not re.fullmatch(r"<https://[^>\s]+>", unsub.strip()):
        bad(f"List-Unsubscribe {unsub!r} has no https URL (RFC 8058)")
    if str(m.get("List-Unsubscribe-Post", "")).strip() != "List-Unsubscribe=One-Click":
        bad("List-Unsubscribe-Post is not List-Unsubscribe=One-Click (RFC 8058)")
    if str(m.get("Auto-Submitted", "")).strip() != "auto-generated":
        bad("Auto-Submitted is not auto-generated (RFC 3834)")
    if m.get_content_type() != "multipart/alternative":
        bad(f"{m.get_content_type()}, not multipart/alternative")
    kinds = [p.get_content_type() for p in m.iter_parts()] if m.is_multipart() else []
    if kinds != ["text/plain", "text/html"]:
        bad(f"parts {kinds}, not a text and an HTML part")
    for p in m.iter_parts() if m.is_multipart() else []:
        if not p.get_content().strip():
            bad(f"the {p.get_content_type()} part is empty")
    return mid


def thread(paths, mails, ids, problems):
    first = mails[0]
    subject = str(first["Subject"])
    if first.get("In-Reply-To") or first.get("References"):
        problems.append(f"{paths[0]}: a thread's first mail replies to something")
    for path, m in zip(paths[1:], mails[1:]):
        if str(m["Subject"]) != subject:
            problems.append(f"{path}: subject {str(m['Subject'])!r} is not the thread's {subject!r}")
        if str(m.get("In-Reply-To", "")).strip() != ids[0]:
            problems.append(f"{path}: In-Reply-To {m.get('In-Reply-To')!r} is not {ids[0]}")
        if ids[0] not in str(m.get("References", "")).split():
            problems.append(f"{path}: References {m.get('References')!r} does not name {ids[0]}")


def headers(paths):
    if len(paths) != 6:
        sys.exit(f"expected 6 mails (confirmation, 3 of an incident, 2 of a window), got {len(paths)}")
    problems = []
    mails = [parse(p) for p in paths]
    ids = [check(p, m, problems) for p, m in zip(paths, mails)]
    if len(set(ids)) != len(ids):
        problems.append(f"Message-IDs repeat: {ids}")
    thread(paths[1:4], mails[1:4], ids[1:4], problems)
    thread(paths[4:6], mails[4:6], ids[4:6], problems)
    for p, m, i in zip(paths, mails, ids):
        print(f"  {p.rsplit('/', 1)[-1]}: {i}  Subject: {m['Subject']}")
    for p in problems:
        print(f"  PROBLEM {p}")
    sys.exit(1 if problems else 0)


def link(path, prefix):
    m = parse(path)
    text = m.get_body(preferencelist=("plain",)).get_content()
    for word in text.split():
        if word.startswith(prefix):
            print(word)
            return
    sys.exit(f"no link starting with {prefix} in {path}")


def spam(path):
    out = email.message_from_bytes(open(path, "rb").read(), policy=email.policy.compat32)
    status = re.sub(r",\s+", ",", " ".join(str(out.get("X-Spam-Status", "")).split()))
    score = re.search(r"score=(-?[0-9.]+)", status)
    tests = re.search(r"tests=(\S*)", status)
    if not score:
        sys.exit(f"no X-Spam-Status score in spamassassin's output: {status!r}")
    print(score.group(1), tests.group(1) if tests else "")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "headers":
        headers(args)
    elif cmd == "link":
        link(*args)
    elif cmd == "strip":
        sys.stdout.buffer.write(load(args[0]))
    elif cmd == "spam":
        spam(*args)
    else:
        sys.exit(f"unknown command {cmd}")
