#!/usr/bin/env python3
"""Loopback-only load for bench/slowloris.sh: a well-behaved client that times `GET /`, and an
attacker that holds idle and slowloris connections open. Standard library only.

  slowloris.py measure PORT N            -> prints "p50_ms p99_ms errors"
  slowloris.py attack PORT IDLE SLOW SECONDS MEASURE_N
      holds IDLE idle connections and SLOW slowloris connections (a header line every 2 s,
      never finishing the head), reopening any the server closes; once they are all open,
      measures like `measure`, prints the same line, and stops (at most SECONDS in all).
"""
import asyncio
import sys
import time

HOST = "127.0.0.1"
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n"


async def one_request(port):
    started = time.perf_counter()
    reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 10)
    try:
        writer.write(REQUEST)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    if not data.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(data[:60])
    return time.perf_counter() - started


async def measure(port, n):
    lat, errors = [], 0
    for _ in range(n):
        try:
            lat.append(await one_request(port))
        except Exception:  # a refused or timed-out request counts as 10 s
            errors += 1
            lat.append(10.0)
        await asyncio.sleep(0.005)
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    return p(0.50), p(0.99), errors


class Counter:
    open = 0
    reopened = 0


async def idle(port, stop, c):
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        c.open += 1
        closed = asyncio.ensure_future(reader.read())
        done = asyncio.ensure_future(stop.wait())
        await asyncio.wait([closed, done], return_when=asyncio.FIRST_COMPLETED)
        for f in (closed, done):
            f.cancel()
        writer.close()
        c.open -= 1
        c.reopened += 1


async def slow(port, stop, c):
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            await asyncio.sleep(0.2)
            continue
        c.open += 1
        try:
            writer.write(b"GET / HTTP/1.1\r\nHost: bench\r\n")
            i = 0
            while not stop.is_set():
                await writer.drain()
                try:
                    await asyncio.wait_for(stop.wait(), 2)
                except asyncio.TimeoutError:
                    pass
                if reader.at_eof():
                    break
                writer.write(b"X-Trickle-%d: y\r\n" % i)
                i += 1
        except OSError:
            pass
        writer.close()
        c.open -= 1
        c.reopened += 1


async def attack(port, n_idle, n_slow, seconds, measure_n):
    stop = asyncio.Event()
    c = Counter()
    tasks = []
    started = time.monotonic()
    for i in range(n_idle + n_slow):
        tasks.append(asyncio.ensure_future((idle if i < n_idle else slow)(port, stop, c)))
        if i % 250 == 249:
            await asyncio.sleep(0.05)  # ramp, so the listen backlog is not simply overrun
    while c.open < (n_idle + n_slow) * 0.98 and time.monotonic() - started < seconds / 2:
        await asyncio.sleep(0.1)
    print(f"attack connections open: {c.open} of {n_idle + n_slow}", file=sys.stderr)
    result = await asyncio.wait_for(measure(port, measure_n), seconds)
    print(f"attack connections open at the end: {c.open}; reopened after the server closed them: {c.reopened}", file=sys.stderr)
    stop.set()
    await asyncio.wait(tasks, timeout=5)
    return result


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "measure":
        r = asyncio.run(measure(port, int(sys.argv[3])))
    else:
        r = asyncio.run(attack(port, int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6])))
    print(f"{r[0]:.2f} {r[1]:.2f} {r[2]}")


if __name__ == "__main__":
    main()
