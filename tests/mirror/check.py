#!/usr/bin/env python3
"""The mirror, served as users serve it: Candor publishes to a directory, nginx serves that
directory with dist/nginx-mirror.conf, and every document nginx answers is compared byte for
byte (and by content type, and gzip-decoded) with the one the live Candor answers. Then Candor
stops, the heartbeat is made 14 minutes old, and tests/e2e/mirror.mjs looks at the banner in
Chromium (screenshots in tests/e2e/out/mirror-*.png).

    python3 tests/mirror/check.py BIN

Run by tests/mirror/run.sh (which installs what it needs). Loopback only; every wait is bounded.
Last line: `N passed, M failed`.
"""

import datetime
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = sys.argv[1]
passed = failed = 0


def ok(name):
    global passed
    passed += 1
    print(f"PASS  {name}", flush=True)


def bad(name, detail=""):
    global failed
    failed += 1
    print(f"FAIL  {name}" + (f"\n      {detail}" if detail else ""), flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, headers=None):
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def call(base, token, method, path, body):
    req = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def wait_for(what, test, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if test():
                return True
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    bad(f"waiting for {what}", f"not within {seconds} s")
    return False


def norm_type(v):
    return (v or "").replace(" ", "").lower()


def nginx_conf(mirror, port, tmp):
    """dist/nginx-mirror.conf as shipped, on a loopback port without TLS."""
    with open(os.path.join(ROOT, "dist/nginx-mirror.conf")) as f:
        text = f.read()
    # Drop the port-80 redirect server; keep the maps and the site's server block.
    blocks = re.split(r"\nserver \{", text)
    head, servers = blocks[0], ["server {" + b for b in blocks[1:]]
    site = next(s for s in servers if "gzip_static" in s)
    site = re.sub(r"\n\s*listen [^\n]*;", "", site)
    site = re.sub(r"\n\s*ssl_[^\n]*;", "", site)
    site = re.sub(r"\n\s*add_header Strict-Transport-Security[^\n]*;", "", site)
    site = re.sub(r"root [^;]*;", f"root {mirror};", site)
    site = site.replace("server {", f"server {{\n    listen 127.0.0.1:{port};", 1)
    return f"""worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx.error.log;
events {{ worker_connections 256; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
{head}
{site}
}}
"""


def main():
    tmp = tempfile.mkdtemp(prefix="candor-mirror-")
    os.chmod(tmp, 0o755)  # nginx's workers (another user when run as root) read the mirror
    mirror = os.path.join(tmp, "mirror")
    port, nginx_port = free_port(), free_port()
    base, nbase = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{nginx_port}"
    with open(os.path.join(ROOT, "config/candor.yaml")) as f:
        conf = f.read()
    conf = conf.replace('url: "sqlite://data/candor.db"', f'url: "sqlite://{tmp}/candor.db"')
    conf = conf.replace('listen: "127.0.0.1:8080"', f'listen: "127.0.0.1:{port}"')
    conf = conf.replace('templates_dir: "templates"', f'templates_dir: "{ROOT}/templates"')
    conf = conf.replace("  targets: []\n", f"  targets:\n    - {{ name: disk, kind: directory, path: \"{mirror}\" }}\n", 1)
    cfg = os.path.join(tmp, "candor.yaml")
    with open(cfg, "w") as f:
        f.write(conf)
    out = subprocess.run([BIN, "--config", cfg, "token", "create", "--name", "mirror-check"],
                         capture_output=True, text=True, check=True)
    token = out.stdout.strip().splitlines()[-1].strip()
    log = open(os.path.join(tmp, "candor.log"), "w")
    server = subprocess.Popen([BIN, "--config", cfg, "serve"], stdout=log, stderr=log)
    nginx = None
    try:
        if not wait_for("Candor to start", lambda: get(base + "/readyz")[0] == 200):
            return
        a = call(base, token, "POST", "/api/v1/incidents", {
            "title": "Checkout errors", "impact": "major", "status": "investigating",
            "components": {"api": "partial_outage"}, "eta_in": "1h",
            "message": "Payments fail for some customers. We're sorry & on it."})
        call(base, token, "POST", f"/api/v1/incidents/{a['id']}/updates", {
            "message": "A bad deploy; rolling back.", "status": "identified"})
        b = call(base, token, "POST", "/api/v1/incidents", {
            "title": "Slow dashboard", "impact": "minor", "status": "investigating",
            "components": {"web": "degraded_performance"}, "message": "Pages load slowly."})
        call(base, token, "POST", f"/api/v1/incidents/{b['id']}/resolve", {
            "message": "Fixed: a cache node was replaced."})

        def current():
            live = json.loads(get(base + "/heartbeat.json")[2])["revision"]
            with open(os.path.join(mirror, "heartbeat.json")) as f:
                return json.load(f)["revision"] == live and live > 0
        if not wait_for("the mirror to hold the last change", current):
            return
        ok("the mirror holds the last change (heartbeat revision = live revision)")

        with open(os.path.join(tmp, "nginx.conf"), "w") as f:
            f.write(nginx_conf(mirror, nginx_port, tmp))
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(tmp, "nginx.conf"), "-g", "daemon off;"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if not wait_for("nginx to start", lambda: get(nbase + "/")[0] == 200):
            try:
                print("nginx answers", get(nbase + "/")[0])
            except OSError as e:
                print("nginx does not answer:", e)
                if nginx.poll() is not None:
                    print(nginx.stderr.read().decode())
            with open(os.path.join(tmp, "nginx.error.log")) as f:
                print(f.read()[-2000:])
            return

        keys = []
        for dirpath, _, names in os.walk(mirror):
            for n in names:
                k = os.path.relpath(os.path.join(dirpath, n), mirror)
                if not k.endswith((".gz", ".br")) and k != "heartbeat.json":
                    keys.append(k)
        paths = sorted("/" if k == "index.html" else "/" + k for k in keys)
        month = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m")
        must = ["/", "/feed.atom", "/feed.rss", "/maintenance.ics", "/api/v2/summary.json",
                f"/incidents/{a['id']}", f"/incidents/{b['id']}", f"/history/{month}",
                "/assets/heartbeat.js"]
        missing = [p for p in must if p not in paths]
        if missing:
            bad("the mirror has every kind of document", f"missing {missing}")
        else:
            ok(f"the mirror has every kind of document ({len(paths)} documents)")

        diffs = []
        for p in paths:
            ls, lh, lb = get(base + p)
            ms, mh, mb = get(nbase + p)
            if (ls, ms) != (200, 200):
                diffs.append(f"{p}: live {ls}, mirror {ms}")
            elif lb != mb:
                diffs.append(f"{p}: bytes differ ({len(lb)} live, {len(mb)} mirror)")
            elif norm_type(lh.get("content-type")) != norm_type(mh.get("content-type")):
                diffs.append(f"{p}: Content-Type {lh.get('content-type')} live, {mh.get('content-type')} mirror")
            if len(lb) >= 512:
                gs, gh, gb = get(nbase + p, {"Accept-Encoding": "gzip"})
                if gh.get("content-encoding") != "gzip" or gzip.decompress(gb) != lb:
                    diffs.append(f"{p}: nginx's gzip answer is not the live document compressed")
        if diffs:
            bad("every document on the mirror is the live one", "\n      ".join(diffs))
        else:
            ok(f"every document nginx serves from the mirror is the live one, byte for byte, with its content type ({len(paths)} documents, gzip too)")

        hs, hh, hb = get(nbase + "/heartbeat.json")
        if hs == 200 and hh.get("cache-control") == "no-cache":
            ok("the heartbeat is served with Cache-Control: no-cache")
        else:
            bad("the heartbeat is served with Cache-Control: no-cache", f"{hs} {hh}")

        # Candor stops; its mirror stays, and says how old it is.
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=14)
        with open(os.path.join(mirror, "heartbeat.json"), "w") as f:
            json.dump({"updated_at": old.strftime("%Y-%m-%dT%H:%M:%SZ"), "revision": 1}, f)
        shots = os.path.join(ROOT, "tests/e2e/out")
        os.makedirs(shots, exist_ok=True)
        results = os.path.join(tmp, "results")
        env = dict(os.environ, E2E_BASE=nbase, E2E_SHOTS=shots, E2E_RESULTS=results,
                   E2E_MIRROR_DIR=mirror)
        r = subprocess.run(["node", os.path.join(ROOT, "tests/e2e/mirror.mjs")], env=env, timeout=180)
        try:
            with open(results) as f:
                p, fl = (int(x) for x in f.read().split())
        except (OSError, ValueError):
            p, fl = 0, 1
        global passed, failed
        passed += p
        failed += fl + (0 if r.returncode == 0 else 1)
    finally:
        if server.poll() is None:
            server.kill()
        if nginx is not None and nginx.poll() is None:
            nginx.terminate()
            nginx.wait(timeout=10)
        log.close()
        if failed:
            with open(os.path.join(tmp, "candor.log")) as f:
                print("--- last lines of Candor's log ---\n" + "".join(f.readlines()[-20:]))
        shutil.rmtree(tmp, ignore_errors=True)


main()
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
