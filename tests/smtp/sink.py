#!/usr/bin/env python3
"""A real SMTP server for Candor's email tests (aiosmtpd): every message it accepts is written
to DIR as NNNNNN.eml (the raw message, as received), one per recipient.

  python3 tests/smtp/sink.py DIR PORT [--no-pipelining]

Prints "ready" once it listens on 127.0.0.1:PORT. It offers PIPELINING (RFC 2920) in its EHLO
reply, as Postfix and the big relays do, unless --no-pipelining; either way it counts in
DIR/pipelined the MAIL commands that arrived with the RCPT after them already sent (a client
that pipelines), and in DIR/mail_commands all MAIL commands. A recipient whose local part starts
with "bounce" is refused with 550 (a permanent refusal of one address). If DIR/fail_after holds a number N, it
answers 451 (try again later) to every message once N messages are stored: a mail server
that goes away mid-fan-out. If DIR/hang_after holds N, it does not answer RCPT TO once N
messages are stored (until the file is removed): a fan-out stuck there can be killed mid-way
before any further message was handed over.
"""
import asyncio
import itertools
import os
import sys

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, folder, pipelining):
        self.folder = folder
        self.pipelining = pipelining
        self.seq = itertools.count(1)
        self.stored = 0
        self.mails = 0
        self.pipelined = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        # A pipelining client has sent RCPT (and DATA) before hearing this reply: it is
        # already in the reader's buffer. (asyncio's StreamReader keeps it in `_buffer`.)
        self.mails += 1
        if b"RCPT" in bytes(server._reader._buffer):
            self.pipelined += 1
        for name, value in (("mail_commands", self.mails), ("pipelined", self.pipelined)):
            with open(os.path.join(self.folder, name), "w") as f:
                f.write(str(value))
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("bounce"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        hang_file = os.path.join(self.folder, "hang_after")
        while os.path.exists(hang_file) and self.stored >= int(open(hang_file).read().strip() or "0"):
            await asyncio.sleep(0.05)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        limit_file = os.path.join(self.folder, "fail_after")
        if os.path.exists(limit_file):
            with open(limit_file) as f:
                limit = int(f.read().strip() or "0")
            if self.stored >= limit:
                return "451 4.3.0 try again later"
        for rcpt in envelope.rcpt_tos:
            n = next(self.seq)
            tmp = os.path.join(self.folder, f".{n:06d}.tmp")
            with open(tmp, "wb") as f:
                f.write(f"X-Envelope-To: {rcpt}\r\n".encode())
                f.write(envelope.original_content or envelope.content)
            os.rename(tmp, os.path.join(self.folder, f"{n:06d}.eml"))
            self.stored += 1
        return "250 OK"


def main():
    folder, port = sys.argv[1], int(sys.argv[2])
    pipelining = "--no-pipelining" not in sys.argv[3:]
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Sink(folder, pipelining), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # runs until the test closes our stdin (or is killed)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
