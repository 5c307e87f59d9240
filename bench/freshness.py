#!/usr/bin/env python3
"""Change -> page across instances on PostgreSQL: two `candor serve` processes share one database;
updates are posted to the first and the time until each instance's `/` shows them is measured.

    python3 bench/freshness.py target/release/candor POSTGRES_URL   (bench/freshness.sh calls this)

POSTGRES_URL names a server and a database the script may connect to and create databases from
(`postgres://user:pass@127.0.0.1:5432/postgres`); a fresh database `candor_fresh_<pid>` is created
for the run and dropped after it.

Instance A takes the writes; instance B only reads the same database. Each instance rebuilds its
pages when told of a change: A by its own commit, B by PostgreSQL's `NOTIFY candor_changes`,
with `status_page.refresh` polling (500 ms as shipped) as the fallback. For each of
FRESH_CHANGES (default 50) updates posted one after another to an open incident through A's v1
API, the loop takes the time from just before the POST until `GET /` shows the update's words,
on A (the anchor: the same change, the same loop) and on B (polled alternately, every 2 ms).

All traffic goes to 127.0.0.1 only; every loop is bounded. Last line:
`cross-instance change -> page p99: B ms (same instance: A ms); ratio B/A: R`.
"""

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pages import free_port, get, pct, post, write_config  # noqa: E402

CHANGES = int(os.environ.get("FRESH_CHANGES", "50"))
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"[freshness] {msg}", file=sys.stderr, flush=True)


def psql(url, sql):
    env = dict(os.environ, PGOPTIONS="--client-min-messages=warning")
    subprocess.run(["psql", url, "-v", "ON_ERROR_STOP=1", "-qc", sql], check=True, env=env,
                   stdout=subprocess.DEVNULL)


def with_db(url, name):
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


def start(candor, conf, env, tmp, tag):
    port = free_port()
    err = open(os.path.join(tmp, f"err-{tag}"), "w")
    p = subprocess.Popen([candor, "--config", conf, "serve", "--listen", f"127.0.0.1:{port}"],
                         env=env, stdout=subprocess.DEVNULL, stderr=err)
    for _ in range(1500):
        try:
            if get(port, "/readyz")[0] == 200:
                return p, port
        except OSError:
            pass
        if p.poll() is not None:
            raise SystemExit(open(os.path.join(tmp, f"err-{tag}")).read())
        time.sleep(0.02)
    raise SystemExit(f"instance {tag} not ready after 30 s")


def stop(p):
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()


def main():
    candor, admin_url = sys.argv[1], sys.argv[2]
    name = f"candor_fresh_{os.getpid()}"
    psql(admin_url, f"DROP DATABASE IF EXISTS {name}")
    psql(admin_url, f"CREATE DATABASE {name}")
    db_url = with_db(admin_url, name)
    tmp = tempfile.mkdtemp(prefix="candor-freshness-bench.")
    env = dict(os.environ, RUST_LOG="warn")
    for k in ("DATABASE_URL", "CANDOR_LISTEN", "CANDOR_CONFIG"):
        env.pop(k, None)
    procs = []
    try:
        conf_a = write_config(tmp, db_url, "-a")
        conf_b = write_config(tmp, db_url, "-b")
        subprocess.run([candor, "--config", conf_a, "migrate"], env=env, check=True,
                       capture_output=True)
        token = subprocess.run([candor, "--config", conf_a, "token", "create", "--name", "bench"],
                               env=env, check=True, capture_output=True,
                               text=True).stdout.strip().splitlines()[-1]
        a, port_a = start(candor, conf_a, env, tmp, "a")
        procs.append(a)
        b, port_b = start(candor, conf_b, env, tmp, "b")
        procs.append(b)
        inc = post(port_a, token, "/api/v1/incidents", {
            "title": "Checkout errors", "impact": "minor", "message": "Some checkouts fail.",
            "components": {"web": "partial_outage"}, "next_update_in": "24h"})["id"]
        time.sleep(1)
        lat = {"a": [], "b": []}
        for k in range(CHANGES):
            words = f"Progress note {k} {random.randrange(10**9)}".encode()
            t = time.monotonic()
            post(port_a, token, f"/api/v1/incidents/{inc}/updates", {"message": words.decode()})
            seen = {}
            for _ in range(5000):
                for tag, port in (("a", port_a), ("b", port_b)):
                    if tag not in seen and words in get(port, "/")[1]:
                        seen[tag] = (time.monotonic() - t) * 1000
                if len(seen) == 2:
                    break
                time.sleep(0.002)
            else:
                raise SystemExit(f"change {k} never reached both pages (seen: {sorted(seen)})")
            lat["a"].append(seen["a"])
            lat["b"].append(seen["b"])
        load = os.getloadavg()[0]
        print(f"change -> page across instances on PostgreSQL: {os.cpu_count()} CPUs, {CHANGES} "
              f"changes, 1-minute load at the end {load:.2f}")
        print("| instance | p50 ms | p99 ms | max ms |")
        print("| --- | --- | --- | --- |")
        for tag, what in (("a", "A (took the write)"), ("b", "B (told by NOTIFY)")):
            xs = lat[tag]
            print(f"| {what} | {statistics.median(xs):.0f} | {pct(xs, 0.99):.0f} | {max(xs):.0f} |")
        pa, pb = pct(lat["a"], 0.99), pct(lat["b"], 0.99)
        print(f"cross-instance change -> page p99: {pb:.0f} ms (same instance: {pa:.0f} ms); "
              f"ratio B/A: {pb / max(pa, 1e-3):.2f}")
    finally:
        for p in procs:
            stop(p)
        subprocess.run(["rm", "-rf", tmp])
        psql(admin_url, f"DROP DATABASE IF EXISTS {name}")


if __name__ == "__main__":
    main()
