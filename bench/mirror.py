#!/usr/bin/env python3
"""Mirrors: how soon a change reaches them, and what a publish costs with a long history.

    python3 bench/mirror.py target/release/candor      (bench/mirror.sh builds and calls this)

For each size (MIRROR_SIZES, default "10,10000" past incidents, seeded straight into a fresh
SQLite database as bench/pages.py does), `candor serve` runs with two mirrors: a directory and a
bucket on a local S3-compatible server (moto in server mode, started here). After the full
publish at start (timed: it writes every document once, so it grows with history by nature),
MIRROR_CHANGES (default 50) updates are posted one after another to an open incident through
the v1 API; for each, from just before the POST until the words show:

- on the live page `GET /` (the anchor, measured in the same loop);
- in the directory's `index.html`;
- in the bucket's `index.html` (read with boto3, as a CDN would fetch it).

Each is polled every 2 ms (the bucket every 5 ms). Reported: p50 and p99 of each, and the CPU
time of the Candor process per change (rebuilding the live page and publishing to both mirrors).
Each size also runs once without mirrors (the anchor, same seed and loop), so the publishing
cost is the CPU per change with mirrors minus without. Loopback only; every loop is bounded. The
last line is that overhead as a ratio (with / without) for the largest history and the smallest:
the target is that it does not grow with history.
"""

import importlib.util
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("pages", os.path.join(REPO, "bench", "pages.py"))
pages = importlib.util.module_from_spec(spec)
spec.loader.exec_module(pages)

SIZES = [int(x) for x in os.environ.get("MIRROR_SIZES", "10,10000").split(",")]
CHANGES = int(os.environ.get("MIRROR_CHANGES", "50"))


def log(msg):
    print(f"[mirror] {msg}", file=sys.stderr, flush=True)


def start_moto():
    import boto3

    port = pages.free_port()
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                      aws_access_key_id="bench", aws_secret_access_key="bench")
    for _ in range(300):
        try:
            s3.create_bucket(Bucket="status")
            return moto, port, s3
        except Exception:  # not up yet
            time.sleep(0.1)
    raise SystemExit("moto did not start")


def s3_index(s3, prefix):
    try:
        return s3.get_object(Bucket="status", Key=f"{prefix}index.html")["Body"].read()
    except Exception:
        return b""


def wait(what, test, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if test():
                return
        except OSError:  # not listening yet
            pass
        time.sleep(0.005)
    raise SystemExit(f"{what}: not within {seconds} s")


def run(candor, n, s3, s3_port, mirrors=True):
    tmp = tempfile.mkdtemp(prefix="candor-mirror-bench.")
    conf = pages.write_config(tmp)
    mirror, prefix = os.path.join(tmp, "mirror"), f"n{n}/"
    with open(conf) as f:
        text = f.read()
    if mirrors:
        text = text.replace("  targets: []\n", (
            "  targets:\n"
            f"    - {{ name: disk, kind: directory, path: \"{mirror}\" }}\n"
            f"    - {{ name: s3, kind: s3, bucket: status, prefix: \"{prefix}\", "
            f"endpoint: \"http://127.0.0.1:{s3_port}\", access_key_id: bench, secret_access_key: bench }}\n"), 1)
    with open(conf, "w") as f:
        f.write(text)
    env = dict(os.environ, RUST_LOG="warn")
    for k in ("DATABASE_URL", "CANDOR_LISTEN", "CANDOR_CONFIG"):
        env.pop(k, None)
    token = subprocess.run([candor, "--config", conf, "token", "create", "--name", "bench"],
                           env=env, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    pages.seed(os.path.join(tmp, "candor.db"), n, int(time.time() * 1000))
    port = pages.free_port()
    t0 = time.monotonic()
    p = subprocess.Popen([candor, "--config", conf, "serve", "--listen", f"127.0.0.1:{port}"],
                         env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "err"), "w"))
    try:
        beat = os.path.join(mirror, "heartbeat.json")
        if mirrors:
            wait("the full publish at start", lambda: os.path.exists(beat) and s3_index(s3, prefix), 600)
        else:
            wait("start-up", lambda: pages.get(port, "/")[0] == 200, 600)
        full = time.monotonic() - t0
        inc = pages.post(port, token, "/api/v1/incidents", {
            "title": "Checkout errors", "impact": "minor", "message": "Some checkouts fail.",
            "components": {"web": "partial_outage"}, "next_update_in": "24h"})["id"]
        if mirrors:
            wait("the first change on the mirrors",
                 lambda: b"Checkout errors" in s3_index(s3, prefix)
                 and b"Checkout errors" in open(os.path.join(mirror, "index.html"), "rb").read(), 120)
        else:
            time.sleep(1)
        cpu0 = pages.proc_cpu(p.pid)
        live, disk, bucket = [], [], []
        for k in range(CHANGES):
            words = f"Progress note {k} {random.randrange(10**9)}"
            needle = words.encode()
            t = time.monotonic()
            pages.post(port, token, f"/api/v1/incidents/{inc}/updates", {"message": words})
            seen = {} if mirrors else {"disk": 0.0, "s3": 0.0}
            deadline = t + 60
            while len(seen) < 3 and time.monotonic() < deadline:
                now = time.monotonic()
                if "live" not in seen and needle in pages.get(port, "/")[1]:
                    seen["live"] = now
                if "disk" not in seen and mirrors:
                    try:
                        with open(os.path.join(mirror, "index.html"), "rb") as f:
                            if needle in f.read():
                                seen["disk"] = now
                    except OSError:
                        pass
                if "s3" not in seen and needle in s3_index(s3, prefix):
                    seen["s3"] = now
                time.sleep(0.002)
            if len(seen) < 3:
                raise SystemExit(f"change {k} did not reach {set(['live', 'disk', 's3']) - set(seen)}")
            live.append((seen["live"] - t) * 1000)
            if not mirrors:
                continue
            disk.append((seen["disk"] - t) * 1000)
            bucket.append((seen["s3"] - t) * 1000)
        cpu = (pages.proc_cpu(p.pid) - cpu0) / CHANGES * 1000
        if not mirrors:
            return {"n": n, "cpu_ms": cpu, "live": (statistics.median(live), pages.pct(live, 0.99))}
        return {"n": n, "full_s": full, "cpu_ms": cpu,
                "live": (statistics.median(live), pages.pct(live, 0.99)),
                "disk": (statistics.median(disk), pages.pct(disk, 0.99)),
                "s3": (statistics.median(bucket), pages.pct(bucket, 0.99))}
    finally:
        pages.stop(p, tmp)


def main():
    candor = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "target/release/candor")
    moto, s3_port, s3 = start_moto()
    try:
        load = os.getloadavg()[0]
        rows = []
        for n in SIZES:
            log(f"{n} past incidents ...")
            rows.append(run(candor, n, s3, s3_port))
            log(f"{n} past incidents, no mirrors (the anchor) ...")
            rows[-1]["anchor"] = run(candor, n, s3, s3_port, mirrors=False)
    finally:
        moto.terminate()
        moto.wait(10)
    print(f"mirrors: {os.cpu_count()} CPUs, {CHANGES} changes per size, 1-minute load "
          f"{load:.2f} before and {os.getloadavg()[0]:.2f} after")
    print("| past incidents | full publish at start s | change→live p50 / p99 ms | change→directory p50 / p99 ms "
          "| change→S3 (moto) p50 / p99 ms | CPU per change ms | without mirrors ms | publishing ms |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['n']} | {r['full_s']:.1f} | {r['live'][0]:.0f} / {r['live'][1]:.0f} | "
              f"{r['disk'][0]:.0f} / {r['disk'][1]:.0f} | {r['s3'][0]:.0f} / {r['s3'][1]:.0f} | "
              f"{r['cpu_ms']:.1f} | {r['anchor']['cpu_ms']:.1f} | {r['cpu_ms'] - r['anchor']['cpu_ms']:.1f} |")
    for r in rows:
        print(f"{r['n']} past incidents: directory p99 / live p99 = {r['disk'][1] / max(r['live'][1], 1e-3):.2f}, "
              f"S3 p99 / live p99 = {r['s3'][1] / max(r['live'][1], 1e-3):.2f}")
    small, large = rows[0], rows[-1]
    over = lambda r: r["cpu_ms"] / max(r["anchor"]["cpu_ms"], 1e-3)
    print(f"publishing CPU per change (with mirrors minus without): {large['n']} past incidents "
          f"{large['cpu_ms'] - large['anchor']['cpu_ms']:.1f} ms, {small['n']}: "
          f"{small['cpu_ms'] - small['anchor']['cpu_ms']:.1f} ms")
    print(f"CPU per change with mirrors / without, {large['n']} vs {small['n']} past incidents: "
          f"{over(large):.2f} vs {over(small):.2f}")

if __name__ == "__main__":
    main()
