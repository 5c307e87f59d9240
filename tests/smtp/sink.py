#!/usr/bin/env python3
"""A real SMTP server for Candor's email tests (aiosmtpd): every message it accepts is written
to DIR as NNNNNN.eml (the raw message, as received), one per recipient.

  python3 tests/smtp/sink.py DIR PORT

Prints "ready" once it listens on 127.0.0.1:PORT. If DIR/fail_after holds a number N, it
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
    def __init__(self, folder):
        self.folder = folder
        self.seq = itertools.count(1)
        self.stored = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
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
    os.makedirs(folder, exist_ok=True)
    controller = Controller(Sink(folder), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # runs until the test closes our stdin (or is killed)
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
