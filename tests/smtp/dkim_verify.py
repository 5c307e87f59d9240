#!/usr/bin/env python3
"""Verifies a message's DKIM signature with dkimpy against a public key given on the command
line (instead of DNS): exit 0 when it verifies.

  python3 tests/smtp/dkim_verify.py MESSAGE_FILE PUBLIC_KEY_DER_FILE
"""
import base64
import sys

import dkim

message = open(sys.argv[1], "rb").read()
# The sink stores its own X-Envelope-To line first: not part of the message.
message = message.split(b"\r\n", 1)[1] if message.startswith(b"X-Envelope-To:") else message
key = base64.b64encode(open(sys.argv[2], "rb").read())
record = b"v=DKIM1; k=rsa; p=" + key
ok = dkim.verify(message, dnsfunc=lambda name, timeout=5: record)
print("verified" if ok else "NOT verified")
sys.exit(0 if ok else 1)
