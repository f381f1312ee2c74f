#!/usr/bin/env python3
"""Side-by-side benchmark: sluice, Envoy, nginx and HAProxy doing the same routing (the seed:
prefix /tasks and /users to one upstream pool), plus the direct path to the upstream as the
ceiling. The proxy under test runs alone on CPU 0; the load generator and the upstream share
CPU 1. Results: bench/results/<time>.json and BENCHMARKS.md.

Run through bench/run (which installs and builds first): `bench/run --quick` or `bench/run`.
"""
import argparse
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
WORK = BENCH / ".work"
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"
PROXY_CPU, LOAD_CPU = "0", "1"
UPSTREAM_PORT = 9000
PORTS = {"direct": UPSTREAM_PORT, "sluice": 8081, "envoy": 8082, "nginx": 8083, "haproxy": 8084}
TLS_PORTS = {"sluice": 8443, "envoy": 8444, "nginx": 8445, "haproxy": 8446}
PROXIES = ["sluice", "envoy", "nginx", "haproxy"]
# sluice's readiness, stats and admin ports stay closed: only the data plane is measured.
ADMIN_OFF = ["--ready-address", "off", "--stats-address", "off", "--admin-address", "off"]
ENVOY_ADMIN_PORT = 9902
PATH = "/tasks/1"


def tool(name):
    for candidate in [BENCH / ".tools/bin" / name, BENCH / ".venv/bin" / name, Path("/usr/sbin") / name]:
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        sys.exit(f"bench: {name} not found; run bench/setup")
    return found


def wait_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def tree_pids(pid):
    pids = [pid]
    try:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        for child in out.split():
            pids.extend(tree_pids(int(child)))
    except OSError:
        pass
    return pids


def rss_kib(pid):
    total = 0
    for p in tree_pids(pid):
        try:
            for line in open(f"/proc/{p}/status"):
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid):
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree_pids(pid):
        try:
            fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except OSError:
            pass
    return total / ticks


# ---------------------------------------------------------------- configurations (one description)

def certificate(d):
    """A P-256 self-signed certificate for every proxy's HTTPS listener."""
    cert, key = d / "cert.pem", d / "key.pem"
    if not cert.exists():
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "30", "-subj", "/CN=bench.local",
                        "-addext", "subjectAltName=DNS:bench.local"], check=True, capture_output=True)
        (d / "combined.pem").write_text(cert.read_text() + key.read_text())
    return cert, key


ROUTES = ["/tasks", "/users"]


def sluice_config(d, hosts=1, version=0):
    cfg = d / "sluice"
    cfg.mkdir(parents=True, exist_ok=True)
    cert, key = certificate(d)
    indent = lambda text: "".join(f"    {line}\n" for line in text.splitlines())
    docs = [
        """apiVersion: networking.istio.io/v1
kind: Gateway
metadata: {name: gw, namespace: default}
spec:
  selector: {istio: ingressgateway}
  servers:
    - {port: {number: 80, name: http, protocol: HTTP}, hosts: ["*"]}
    - {port: {number: 443, name: https, protocol: HTTPS}, hosts: ["*"], tls: {mode: SIMPLE, credentialName: bench-cert}}""",
        "apiVersion: v1\nkind: Secret\nmetadata: {name: bench-cert, namespace: istio-system}\nstringData:\n"
        f"  tls.crt: |\n{indent(cert.read_text())}  tls.key: |\n{indent(key.read_text())}",
        f"""apiVersion: networking.istio.io/v1
kind: ServiceEntry
metadata: {{name: demo, namespace: default}}
spec:
  hosts: [demo.default.svc.cluster.local]
  resolution: STATIC
  ports: [{{number: 8000, name: http, protocol: HTTP}}]
  endpoints: [{{address: 127.0.0.1, ports: {{http: {UPSTREAM_PORT}}}}}]""",
        """apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: demo, namespace: default}
spec:
  hosts: ["*"]
  gateways: [gw]
  http:
""" + "".join(f"    - match: [{{uri: {{prefix: {r}}}}}]\n      route: [{{destination: {{host: demo, port: {{number: 8000}}}}}}]\n"
              f"      headers: {{response: {{set: {{x-config-version: \"{version}\"}}}}}}\n" for r in ROUTES),
    ]
    for i in range(hosts - 1):
        docs.append(f"""apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {{name: vs-{i}, namespace: default}}
spec:
  hosts: [svc-{i}.example.com]
  gateways: [gw]
  http:
    - match: [{{uri: {{prefix: /api}}}}]
      route: [{{destination: {{host: demo, port: {{number: 8000}}}}}}]""")
    (cfg / "routes.yaml").write_text("\n---\n".join(docs) + "\n")
    return cfg


def envoy_routes(d, version=0):
    """Envoy's routes, served by RDS from a file as istiod serves them over xDS: a reload is a new
    file moved into place (Envoy watches the directory). `version` becomes a response header so
    every reload is a real change."""
    routes = "".join(
        f"""
    - match: {{prefix: "{r}"}}
      route: {{cluster: upstream}}"""
        for r in ROUTES
    )
    rds = d / "envoy-rds"
    rds.mkdir(parents=True, exist_ok=True)
    tmp = rds / "routes.yaml.tmp"
    tmp.write_text(f"""resources:
- "@type": type.googleapis.com/envoy.config.route.v3.RouteConfiguration
  name: routes
  virtual_hosts:
  - name: all
    domains: ["*"]
    response_headers_to_add:
    - header: {{key: x-config-version, value: "{version}"}}
    routes:{routes}
""")
    tmp.rename(rds / "routes.yaml")
    return rds / "routes.yaml"


def envoy_config(d):
    cert, key = certificate(d)
    rds = envoy_routes(d)
    # The same HTTP connection manager serves the plaintext and the TLS listener.
    hcm = lambda stat_prefix: f"""
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: {stat_prefix}
          codec_type: AUTO
          rds:
            route_config_name: routes
            config_source:
              resource_api_version: V3
              path_config_source: {{path: "{rds}", watched_directory: {{path: "{rds.parent}"}}}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}"""
    text = f"""node: {{id: bench, cluster: bench}}
admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {ENVOY_ADMIN_PORT}}}}}
static_resources:
  listeners:
  - name: http
    address: {{socket_address: {{address: 127.0.0.1, port_value: {PORTS['envoy']}}}}}
    filter_chains:
    - filters:{hcm("ingress")}
  - name: https
    address: {{socket_address: {{address: 127.0.0.1, port_value: {TLS_PORTS['envoy']}}}}}
    filter_chains:
    - transport_socket:
        name: envoy.transport_sockets.tls
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
          common_tls_context:
            alpn_protocols: ["h2", "http/1.1"]
            tls_certificates:
            - certificate_chain: {{filename: "{cert}"}}
              private_key: {{filename: "{key}"}}
      filters:{hcm("ingress_tls")}
  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 10s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {UPSTREAM_PORT}}}}}}}
"""
    path = d / "envoy.yaml"
    path.write_text(text)
    return path


def nginx_config(d, version=0):
    cert, key = certificate(d)
    prefix = d / "nginx"
    (prefix / "logs").mkdir(parents=True, exist_ok=True)
    locations = "".join(
        f"""
        location {r} {{
            proxy_pass http://upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}"""
        for r in ROUTES
    )
    text = f"""worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log error;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    upstream upstream {{
        server 127.0.0.1:{UPSTREAM_PORT};
        keepalive 256;
    }}
    server {{
        listen 127.0.0.1:{PORTS['nginx']} http2 reuseport;
        listen 127.0.0.1:{PORTS['nginx'] + 100};
        listen 127.0.0.1:{TLS_PORTS['nginx']} ssl;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        keepalive_requests 1000000;
        add_header x-config-version {version};{locations}
        location / {{ return 404; }}
    }}
}}
"""
    path = prefix / "nginx.conf"
    path.write_text(text)
    return prefix, path


def haproxy_config(d, version=0):
    certificate(d)
    acls = "\n".join(f"    acl r{i} path_beg {r}\n    use_backend upstream if r{i}" for i, r in enumerate(ROUTES))
    text = f"""global
    nbthread 1
    maxconn 8000
defaults
    mode http
    timeout connect 10s
    timeout client 60s
    timeout server 60s
    option http-keep-alive
    http-reuse always
frontend fe
    bind 127.0.0.1:{PORTS['haproxy']} proto h2
    bind 127.0.0.1:{PORTS['haproxy'] + 100}
    bind 127.0.0.1:{TLS_PORTS['haproxy']} ssl crt {d / "combined.pem"}
    http-response set-header x-config-version {version}
{acls}
    default_backend notfound
backend notfound
    http-request return status 404
backend upstream
    server s1 127.0.0.1:{UPSTREAM_PORT}
"""
    path = d / "haproxy.cfg"
    path.write_text(text)
    return path


# ---------------------------------------------------------------- processes

class Running:
    def __init__(self, name, argv, port, env=None):
        self.name, self.port = name, port
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=open(WORK / f"{name}.log", "w"),
            env={**os.environ, **(env or {})}, start_new_session=True,
        )
        wait_port(port)
        time.sleep(0.3)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


def pinned(cpu, argv):
    return ["taskset", "-c", cpu] + argv


def start_upstream(body_bytes):
    return Running("upstream", pinned(LOAD_CPU, [str(TARGET / "examples" / "bench-upstream"), "--listen",
                   f"127.0.0.1:{UPSTREAM_PORT}", "--body-bytes", str(body_bytes), "--threads", "1"]), UPSTREAM_PORT)


def start_proxy(name, sluice_dir=None):
    if name == "direct":
        return None
    if name == "sluice":
        cfg = sluice_dir or sluice_config(WORK)
        return Running(name, pinned(PROXY_CPU, [str(TARGET / "sluice"), "run", "--config", str(cfg),
                       "--bind-address", "127.0.0.1", "--port-map", f"80={PORTS['sluice']},443={TLS_PORTS['sluice']}",
                       *ADMIN_OFF]),
                       PORTS[name], env={"RUST_LOG": "warn,sluice::run=info"})
    if name == "envoy":
        return Running(name, pinned(PROXY_CPU, [tool("envoy"), "-c", str(envoy_config(WORK)), "--concurrency", "1",
                       "--log-level", "error", "--disable-hot-restart"]), PORTS[name])
    if name == "nginx":
        prefix, conf = nginx_config(WORK)
        return Running(name, pinned(PROXY_CPU, [tool("nginx"), "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"]),
                       PORTS[name])
    if name == "haproxy":
        return Running(name, pinned(PROXY_CPU, [tool("haproxy"), "-W", "-f", str(haproxy_config(WORK))]), PORTS[name])
    raise ValueError(name)


def http1_port(name):
    """nginx and HAProxy serve h2c with prior knowledge on their main port, HTTP/1.1 on +100."""
    return PORTS[name] + 100 if name in ("nginx", "haproxy") else PORTS[name]


# ---------------------------------------------------------------- load generators

def wrk_failures(out):
    """Requests wrk counts as failed: non-2xx/3xx answers and socket errors."""
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return (int(errors.group(1)) if errors else 0) + (sum(map(int, sock.groups())) if sock else 0)


def wrk(port, conns, seconds):
    out = subprocess.run(pinned(LOAD_CPU, [tool("wrk"), "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
                         f"http://127.0.0.1:{port}{PATH}"]), capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    failed = wrk_failures(out)

    def pct(p):
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return None
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale
    return {"rps": rps, "requests": total, "failed": failed, "p50_ms": pct(50), "p99_ms": pct(99)}


def h2load(port, seconds):
    out = subprocess.run(pinned(LOAD_CPU, [tool("h2load"), "-c", "16", "-m", "32", "-t", "1", "-D", str(seconds),
                         f"http://127.0.0.1:{port}{PATH}"]), capture_output=True, text=True).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"(\d+) succeeded, (\d+) failed", out)
    return {"rps": float(m.group(1)) if m else 0.0, "failed": int(ok.group(2)) if ok else None}


def oha(port, rate, seconds):
    out = subprocess.run(pinned(LOAD_CPU, [tool("oha"), "-z", f"{seconds}s", "-q", str(rate), "-c", "16",
                         "--latency-correction", "--no-tui", "--output-format", "json",
                         f"http://127.0.0.1:{port}{PATH}"]), capture_output=True, text=True).stdout
    data = json.loads(out)
    lp = data["latencyPercentiles"]
    return {k: lp[src] * 1000 for k, src in [("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")]}


def https_keepalive(port, seconds):
    out = subprocess.run(pinned(LOAD_CPU, [tool("wrk"), "-t1", "-c64", f"-d{seconds}s",
                         f"https://127.0.0.1:{port}{PATH}"]), capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return float(m.group(1)) if m else None


def handshakes(port, seconds):
    """New TLS connection per request (oha --disable-keepalive): handshakes per second."""
    out = subprocess.run(pinned(LOAD_CPU, [tool("oha"), "-z", f"{seconds}s", "-c", "16", "--disable-keepalive",
                         "--insecure", "--no-tui", "--output-format", "json", f"https://127.0.0.1:{port}{PATH}"]),
                         capture_output=True, text=True).stdout
    data = json.loads(out)
    return data["summary"]["requestsPerSec"]


def hold_connections(port, n):
    """Opens n keep-alive connections, one request each, and keeps them open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n * 2 + 256)), hard))
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(f"GET {PATH} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        socks.append(s)
    for s in socks:
        s.settimeout(5)
        try:
            s.recv(65536)
        except OSError:
            pass
    return socks


# ---------------------------------------------------------------- scenarios

def median(runs, key):
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def measure(name, args, results):
    """Every per-proxy scenario for one proxy (or the direct path)."""
    r = results.setdefault(name, {})
    reps, secs = args.reps, args.seconds
    for body in args.bodies:
        up = start_upstream(body)
        proxy = start_proxy(name)
        try:
            if proxy and body == args.bodies[0]:
                r["rss_idle_kib"] = rss_kib(proxy.proc.pid)
            for conns in args.conns:
                runs = []
                for _ in range(reps):
                    before = cpu_seconds(proxy.proc.pid) if proxy else 0
                    w = wrk(http1_port(name), conns, secs)
                    if proxy:
                        w["cpu_s_per_100k"] = (cpu_seconds(proxy.proc.pid) - before) / max(w["requests"], 1) * 100_000
                    runs.append(w)
                key = f"h1_c{conns}_b{body}"
                r[key] = {k: median(runs, k) for k in ["rps", "p50_ms", "p99_ms", "cpu_s_per_100k", "failed"]}
                print(f"  {name:8} {key:16} {r[key]['rps']:>10.0f} rps  p99 {r[key]['p99_ms']} ms", flush=True)
            if body == args.bodies[0]:
                r["h2c_c16_m32"] = {"rps": median([h2load(PORTS[name], secs) for _ in range(reps)], "rps")}
                print(f"  {name:8} h2c              {r['h2c_c16_m32']['rps']:>10.0f} rps", flush=True)
                for rate in args.rates:
                    r[f"fixed_{rate}rps"] = oha(http1_port(name), rate, secs)
                    print(f"  {name:8} fixed {rate:5} rps  {r[f'fixed_{rate}rps']}", flush=True)
                if proxy:
                    r["https_c64_rps"] = https_keepalive(TLS_PORTS[name], secs)
                    r["tls_handshakes_per_s"] = handshakes(TLS_PORTS[name], secs)
                    print(f"  {name:8} https            {r['https_c64_rps']} rps, {r['tls_handshakes_per_s']:.0f} handshakes/s", flush=True)
                    socks = hold_connections(http1_port(name), 1000)
                    time.sleep(0.5)
                    r["rss_1000_conns_kib"] = rss_kib(proxy.proc.pid)
                    for s in socks:
                        s.close()
        finally:
            if proxy:
                proxy.stop()
            up.stop()


def config_scale(args, results):
    """sluice with 10,000 VirtualServices: compile time, RSS and rps."""
    d = WORK / "scale"
    cfg = sluice_config(d, hosts=10_000)
    t = time.time()
    subprocess.run([str(TARGET / "sluice"), "validate", str(cfg)], capture_output=True)
    validate_s = time.time() - t
    up = start_upstream(0)
    t = time.time()
    proxy = start_proxy("sluice", sluice_dir=cfg)
    startup_s = time.time() - t
    try:
        results["sluice"]["scale_10k_vs"] = {
            "validate_s": validate_s, "startup_to_listening_s": startup_s,
            "rss_kib": rss_kib(proxy.proc.pid), "rps_c64": wrk(PORTS["sluice"], 64, args.seconds)["rps"],
        }
        print(f"  sluice   10k VS           {results['sluice']['scale_10k_vs']}", flush=True)
    finally:
        proxy.stop()
        up.stop()


def reload(name, proxy, version):
    """Changes the configuration (`version` becomes a response header, so every reload is a real
    change) and tells the proxy the way its users do."""
    if name == "sluice":
        sluice_config(WORK, version=version)
        os.kill(proxy.proc.pid, signal.SIGHUP)   # re-read, recompile, swap (the file watch sees it too)
    elif name == "envoy":
        envoy_routes(WORK, version)              # RDS from a watched file, as istiod pushes routes
    elif name == "nginx":
        nginx_config(WORK, version)
        os.kill(proxy.proc.pid, signal.SIGHUP)   # master starts new workers, old ones drain
    elif name == "haproxy":
        haproxy_config(WORK, version)
        os.kill(proxy.proc.pid, signal.SIGUSR2)  # master-worker mode (-W): new worker, old one drains


def config_version(port):
    """The x-config-version a proxy answers with now."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(f"GET {PATH} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    m = re.search(rb"(?i)\r\nx-config-version: *(\d+)", data)
    return int(m.group(1)) if m else None


RELOADS = 50


def reloads_under_load(name, args, results):
    """50 configuration changes while wrk runs: failed requests, and whether the last change is
    what the proxy serves afterwards."""
    up = start_upstream(0)
    proxy = start_proxy(name)
    try:
        seconds = max(args.seconds, 6)
        load = subprocess.Popen(pinned(LOAD_CPU, [tool("wrk"), "-t1", "-c32", f"-d{seconds}s",
                                f"http://127.0.0.1:{http1_port(name)}{PATH}"]), stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        for version in range(1, RELOADS + 1):
            reload(name, proxy, version)
            time.sleep((seconds - 1.5) / RELOADS)
        out = load.communicate()[0]
        failed = wrk_failures(out)
        total = int(re.search(r"(\d+) requests in", out).group(1))
        # A proxy may still be starting its last worker: it gets a few seconds to serve the last version.
        deadline = time.time() + 5
        while config_version(http1_port(name)) != RELOADS and time.time() < deadline:
            time.sleep(0.2)
        r = {"requests": total, "failed": failed, "serves_last_version": config_version(http1_port(name)) == RELOADS}
        results[name]["reloads_50"] = r
        print(f"  {name:8} {RELOADS} reloads       {r}", flush=True)
    finally:
        proxy.stop()
        up.stop()


# ---------------------------------------------------------------- report

def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    versions = {}
    for name, argv in [("envoy", [tool("envoy"), "--version"]), ("nginx", [tool("nginx"), "-v"]),
                       ("haproxy", [tool("haproxy"), "-v"])]:
        p = subprocess.run(argv, capture_output=True, text=True)
        versions[name] = (p.stdout + p.stderr).strip().splitlines()[0][:100]
    return {"cpu": cpu, "cores": os.cpu_count(), "kernel": os.uname().release, "versions": versions}


def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    return f"{a / b:.2f}×" if a and b else "–"


def targets(results):
    """The issue's targets against this run's numbers: measured, not asserted."""
    s, e, n, d = (results.get(k, {}) for k in ("sluice", "envoy", "nginx", "direct"))
    small = [k for k in s if k.startswith("h1_") and not k.endswith("_b102400")]

    def spread(a, b, key):
        values = [a[k][key] / b[k][key] for k in small if a.get(k, {}).get(key) and b.get(k, {}).get(key)]
        return (min(values), max(values)) if values else (None, None)

    def verdict(ok):
        return "–" if ok is None else ("met" if ok else "**missed**")

    cpu_e, cpu_n = spread(s, e, "cpu_s_per_100k"), spread(s, n, "cpu_s_per_100k")
    best = lambda r: max((r[k]["rps"] for k in r if k.startswith("h1_") and r[k].get("rps")), default=None)
    rps = best(s) / best(e) if best(s) and best(e) else None
    f1k, fd = s.get("fixed_1000rps", {}), d.get("fixed_1000rps", {})
    added = f1k["p99_ms"] - fd["p99_ms"] if f1k.get("p99_ms") is not None and fd.get("p99_ms") is not None else None
    idle = s.get("rss_idle_kib", 0) / 1024 or None
    scale = s.get("scale_10k_vs", {}).get("startup_to_listening_s")
    failed = s.get("reloads_50", {}).get("failed")
    rng = lambda lo_hi: "–" if lo_hi[0] is None else f"{lo_hi[0]:.2f}–{lo_hi[1]:.2f}×"
    rows = [
        ("CPU per request ≤ 0.5× Envoy's (0 B and 1 KiB responses)", rng(cpu_e), verdict(cpu_e[1] is not None and cpu_e[1] <= 0.5 if cpu_e[0] else None)),
        ("CPU per request ≤ nginx's (same scenarios)", rng(cpu_n), verdict(cpu_n[1] is not None and cpu_n[1] <= 1.0 if cpu_n[0] else None)),
        ("max rps ≥ 1.5× Envoy's (best HTTP/1.1 point each)", f"{rps:.2f}×" if rps else "–", verdict(rps >= 1.5 if rps else None)),
        ("p99 added over direct at 1,000 rps ≤ 0.3 ms", f"{added:.3f} ms" if added is not None else "–", verdict(added <= 0.3 if added is not None else None)),
        ("RSS idle ≤ 15 MiB", f"{idle:.1f} MiB" if idle else "–", verdict(idle <= 15 if idle else None)),
        ("10,000 VirtualServices compiled (start to listening) < 1 s", f"{scale:.2f} s" if scale else "–", verdict(scale < 1 if scale else None)),
        ("zero failed requests across 50 reloads", fmt(failed), verdict(failed == 0 if failed is not None else None)),
    ] + nginx_targets(s, results.get("nginx", {}), results.get("haproxy", {}), d)
    return (["## Targets (sluice, this run)", "", "| target | measured | |", "|---|---:|---|"]
            + [f"| {t} | {m} | {v} |" for t, m, v in rows] + [""])


def nginx_targets(s, n, h, d):
    """The nginx/HAProxy targets (CPU and memory per connection at 64 and 1,000 connections)."""
    def cpu(r, c):
        return r.get(f"h1_c{c}_b0", {}).get("cpu_s_per_100k")

    def at_most(a, b, limit):
        if not a or not b:
            return "–", "–"
        return f"{a / b:.2f}× ({a * 10:.1f} vs {b * 10:.1f} µs)", ("met" if a / b <= limit else "**missed**")

    rows = []
    for c, limit in [(64, 1.0), (1000, 1.2)]:
        m, v = at_most(cpu(s, c), cpu(n, c), limit)
        rows.append((f"CPU per request at c={c:,} (0 B) ≤ {limit}× nginx's", m, v))
    rs, rn = s.get("h1_c64_b0", {}).get("rps"), n.get("h1_c64_b0", {}).get("rps")
    rows.append(("max rps at c=64 ≥ nginx's", f"{rs / rn:.2f}×" if rs and rn else "–",
                 verdict_of(rs >= rn) if rs and rn else "–"))
    ms, mn = s.get("rss_1000_conns_kib"), n.get("rss_1000_conns_kib")
    rows.append(("RSS with 1,000 open connections ≤ nginx's", f"{ms / 1024:.1f} vs {mn / 1024:.1f} MiB" if ms and mn else "–",
                 verdict_of(ms <= mn) if ms and mn else "–"))
    idle = s.get("rss_idle_kib")
    if ms and idle:
        rows.append(("bytes per open connection (RSS growth / 1,000)", f"{(ms - idle) * 1024 / 1000 / 1024:.1f} KiB", "–"))
    rows.append(("RSS idle ≤ 10 MiB", f"{idle / 1024:.1f} MiB" if idle else "–", verdict_of(idle <= 10 * 1024) if idle else "–"))
    ps, ph = s.get("fixed_1000rps", {}).get("p99_ms"), h.get("fixed_1000rps", {}).get("p99_ms")
    rows.append(("p99 at 1,000 rps ≤ HAProxy's", f"{ps:.3f} vs {ph:.3f} ms" if ps and ph else "–",
                 verdict_of(ps <= ph) if ps and ph else "–"))
    return rows


def verdict_of(ok):
    return "met" if ok else "**missed**"


def markdown(results, meta, args):
    """The report of one run, as BENCHMARKS.md shows it."""
    names = ["sluice", "envoy", "nginx", "haproxy", "direct"]
    lines = [
        "# Benchmarks",
        "",
        f"Produced by `bench/run{' --quick' if args.quick else ''}` on {meta['date']}. "
        f"Machine: {meta['machine']['cpu']}, {meta['machine']['cores']} cores, Linux {meta['machine']['kernel']}. "
        "The proxy runs alone on CPU 0 (`taskset`); load generator (wrk, h2load, oha) and upstream "
        "(`bench-upstream`, an example of sluice-echo: hyper, fixed body) share CPU 1, so the direct path is the ceiling. "
        f"{args.reps} run(s) of {args.seconds} s per point, median kept. Same routing everywhere: prefix "
        "`/tasks` and `/users` to one upstream with keep-alive; access logs off; one worker.",
        "",
        "Versions: " + "; ".join(f"{k}: `{v.split('version:', 1)[-1].strip()}`"
                                 for k, v in meta["machine"]["versions"].items()),
        "",
        *targets(results),
        "## Throughput, HTTP/1.1 keep-alive (requests/s; higher is better)",
        "",
        "| scenario | " + " | ".join(names) + " | sluice/envoy | sluice/nginx | sluice/haproxy |",
        "|---|" + "---:|" * (len(names) + 3),
    ]
    keys = [k for k in results["sluice"] if k.startswith("h1_")]
    for k in keys:
        row = [results.get(n, {}).get(k, {}).get("rps") for n in names]
        lines.append(f"| {k} | " + " | ".join(fmt(v) for v in row) +
                     f" | {ratio(row[0], row[1])} | {ratio(row[0], row[2])} | {ratio(row[0], row[3])} |")
    row = [results.get(n, {}).get("h2c_c16_m32", {}).get("rps") for n in names]
    lines.append("| h2c 16 conns × 32 streams | " + " | ".join(fmt(v) for v in row) +
                 f" | {ratio(row[0], row[1])} | {ratio(row[0], row[2])} | {ratio(row[0], row[3])} |")
    for key, label in [("https_c64_rps", "HTTPS keep-alive, 64 conns"), ("tls_handshakes_per_s", "TLS handshakes/s (new connection per request)")]:
        row = [results.get(n, {}).get(key) for n in names[:4]] + [None]
        lines.append(f"| {label} | " + " | ".join(fmt(v) for v in row) +
                     f" | {ratio(row[0], row[1])} | {ratio(row[0], row[2])} | {ratio(row[0], row[3])} |")
    lines += ["", "`h1_c64_b1024`: 64 connections, 1 KiB responses. HTTPS: TLS 1.3, P-256 certificate; "
              "the direct path has no TLS.", "",
              "## CPU per 100,000 requests (proxy process, seconds; lower is better)", "",
              "| scenario | " + " | ".join(names[:4]) + " |", "|---|" + "---:|" * 4]
    for k in keys:
        row = [results.get(n, {}).get(k, {}).get("cpu_s_per_100k") for n in names[:4]]
        lines.append(f"| {k} | " + " | ".join(fmt(v, 2) for v in row) + " |")
    lines += ["", "## Latency at a fixed rate (oha, latency-corrected; ms)", "",
              "| rate | metric | " + " | ".join(names) + " | sluice added over direct |", "|---|---|" + "---:|" * (len(names) + 1)]
    for rate in args.rates:
        for m in ["p50_ms", "p99_ms", "p999_ms"]:
            row = [results.get(n, {}).get(f"fixed_{rate}rps", {}).get(m) for n in names]
            added = row[0] - row[4] if row[0] is not None and row[4] is not None else None
            lines.append(f"| {rate}/s | {m[:-3]} | " + " | ".join(fmt(v, 3) for v in row) + f" | {fmt(added, 3)} |")
    lines += ["", "## Memory (RSS, MiB)", "", "| state | " + " | ".join(names[:4]) + " |", "|---|" + "---:|" * 4]
    for k, label in [("rss_idle_kib", "idle"), ("rss_1000_conns_kib", "1,000 open connections")]:
        row = [results.get(n, {}).get(k) for n in names[:4]]
        lines.append(f"| {label} | " + " | ".join(fmt(v / 1024 if v else None, 1) for v in row) + " |")
    s = results["sluice"]
    if "scale_10k_vs" in s:
        sc = s["scale_10k_vs"]
        lines += ["", "## sluice only", "",
                  f"- 10,000 VirtualServices: `validate` {sc['validate_s']:.2f} s; start to listening "
                  f"{sc['startup_to_listening_s']:.2f} s; RSS {sc['rss_kib'] / 1024:.1f} MiB; "
                  f"{fmt(sc['rps_c64'])} rps at 64 connections."]
    lines += ["", "## 50 configuration reloads under load (wrk, 32 connections)", "",
              "| | " + " | ".join(names[:4]) + " |", "|---|" + "---:|" * 4]
    for key, label in [("failed", "failed requests"), ("requests", "requests"),
                       ("serves_last_version", "serves the 50th version within 5 s")]:
        row = [results.get(n, {}).get("reloads_50", {}).get(key) for n in names[:4]]
        cell = lambda v: ("yes" if v else "**no**") if isinstance(v, bool) else fmt(v)
        lines.append(f"| {label} | " + " | ".join(cell(v) for v in row) + " |")
    lines.append("")
    lines.append("Each reload is a real change (a new `x-config-version` response header), told the way users "
                 "tell each proxy: sluice gets the file rewritten and SIGHUP (recompile and swap); Envoy gets its "
                 "routes by RDS from a watched file (what istiod pushes over xDS, without a restart); nginx gets "
                 "SIGHUP (new workers); HAProxy SIGUSR2 in master-worker mode (new worker). A \"no\" means the last change "
                 "was dropped: HAProxy's master acts on one SIGUSR2 at a time and merges those that arrive while it "
                 "reloads (its log then shows fewer `Reloading HAProxy` lines than signals sent).")
    lines += [""]
    return "\n".join(lines)


def settings(args):
    """Repetitions and points of a quick or a full run."""
    args.reps, args.seconds = (1, 2) if args.quick else (3, 10)
    args.conns, args.bodies, args.rates = [16, 64, 256, 1000], [0, 1024, 102400], [1000, 5000]
    return args


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one short run per point, fewer points")
    ap.add_argument("--only", nargs="*", default=None, help="proxies to measure (default: all and direct)")
    ap.add_argument("--render", metavar="RESULTS_JSON", help="only write the report of an earlier run next to it")
    args = ap.parse_args()
    if args.render:
        saved = json.loads(Path(args.render).read_text())
        args.quick = saved["meta"]["quick"]
        report = Path(args.render).with_suffix(".md")
        report.write_text(markdown(saved["results"], saved["meta"], settings(args)))
        print(f"bench: wrote {report}")
        return
    settings(args)
    WORK.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.only or (PROXIES + ["direct"]):
        print(f"bench: {name}", flush=True)
        measure(name, args, results)
    if "sluice" in results:
        config_scale(args, results)
    for name in PROXIES:
        if name in results:
            reloads_under_load(name, args, results)
    meta = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(), "quick": args.quick}
    out = BENCH / "results" / time.strftime("%Y%m%dT%H%M%S.json", time.gmtime())
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"meta": meta, "results": results}, indent=2))
    if "sluice" in results and len(results) == 5:
        # Every run keeps its report next to its numbers; BENCHMARKS.md is the latest.
        report = markdown(results, meta, args)
        out.with_suffix(".md").write_text(report)
        (ROOT / "BENCHMARKS.md").write_text(report)
        print(f"bench: wrote {out.relative_to(ROOT)}, its report and BENCHMARKS.md")
    else:
        print(f"bench: wrote {out.relative_to(ROOT)} (a report needs every proxy)")


if __name__ == "__main__":
    main()
