#!/usr/bin/env python3
"""A minimal pipelining SMTP client: the anchor for Candor's pipelined fan-out.

    python3 bench/smtp_pipeline.py HOST PORT CONNECTIONS MESSAGES SIZE

Postfix's smtp-source cannot pipeline, so it is no fair anchor for a sender that does. This
client does what RFC 2920 allows and what Candor (and Postfix's own smtp client) do: after EHLO
(which must offer PIPELINING), each message's content goes out in one write together with the
next message's MAIL, RCPT and DATA, and the client then waits for that group's four replies
(250 for the content, 250, 250, 354): one round trip per message. The messages are built once
in memory, the connections are driven by one thread with non-blocking sockets, and every reply
is checked for its code, so the client costs little and the rate is close to what the sink
itself can take. Prints `messages/s`, wall seconds and this process's CPU seconds.
"""

import os
import selectors
import socket
import sys
import time


def main():
    host, port, conns, total, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
        int(sys.argv[4]), int(sys.argv[5])
    header = b"From: status@bench.test\r\nTo: user@bench.test\r\nSubject: bench\r\n\r\n"
    line = b"x" * 78 + b"\r\n"
    body = header + line * max(0, (size - len(header)) // len(line))
    body += b"x" * max(0, size - len(body) - 2) + b"\r\n"
    content = body + b".\r\n"
    envelope = b"MAIL FROM:<status@bench.test>\r\nRCPT TO:<user@bench.test>\r\nDATA\r\n"
    sel = selectors.DefaultSelector()
    share = [total // conns + (1 if i < total % conns else 0) for i in range(conns)]
    state = {}
    t0 = time.monotonic()
    c0 = os.times()
    for i in range(conns):
        s = socket.create_connection((host, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        assert f.readline().startswith(b"220"), "no greeting"
        s.sendall(b"EHLO bench.test\r\n")
        offered = []
        while True:
            r = f.readline()
            offered.append(r[4:].strip().upper())
            if r[3:4] == b" ":
                break
        assert b"PIPELINING" in offered, f"the sink does not offer PIPELINING: {offered}"
        f.close()
        s.setblocking(False)
        # The first group: just the envelope (three replies); later groups: content + envelope.
        s.sendall(envelope)
        state[s] = {"left": share[i], "want": 3, "buf": b"", "sent_content": 0}
        sel.register(s, selectors.EVENT_READ)
    done = 0
    open_conns = conns
    while open_conns:
        for key, _ in sel.select(timeout=30):
            s = key.fileobj
            st = state[s]
            data = s.recv(65536)
            if not data:
                raise SystemExit("the sink closed a connection")
            st["buf"] += data
            lines = st["buf"].split(b"\r\n")
            st["buf"] = lines.pop()
            for r in lines:
                if not (r.startswith(b"250") or r.startswith(b"354")):
                    raise SystemExit(f"unexpected reply: {r[:80]!r}")
                st["want"] -= 1
            if st["want"] > 0:
                continue
            if st["sent_content"]:
                done += 1
                st["left"] -= 1
            if st["left"] == 0:
                sel.unregister(s)
                s.setblocking(True)
                s.sendall(b"QUIT\r\n")
                s.close()
                open_conns -= 1
            elif st["left"] == 1:
                s.sendall(content)
                st["want"], st["sent_content"] = 1, 1
            else:
                s.sendall(content + envelope)
                st["want"], st["sent_content"] = 4, 1
    wall = time.monotonic() - t0
    c1 = os.times()
    cpu = (c1.user - c0.user) + (c1.system - c0.system)
    assert done == total, f"{done} of {total} messages"
    print(f"{total / wall:.0f} messages/s {wall:.2f} s wall {cpu:.2f} s CPU")


if __name__ == "__main__":
    main()
