#!/usr/bin/env python3
"""Instructions per proxied request, counted by valgrind's callgrind: the same for the same
binary and inputs whatever else the machine does, so it can guard against regressions where a
timed benchmark cannot. Compares with bench/instructions-baseline.json (10% tolerance).

    bench/instructions.py             measure and compare (exit 1 on a regression)
    bench/instructions.py --update    measure and write the baseline
    bench/instructions.py --keep      keep the callgrind dump (bench/.work/callgrind.out.1) to annotate
"""
import http.client
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench  # noqa: E402  (configurations and helpers)

REQUESTS = 2000
CONNECTIONS = 4
TOLERANCE = 0.10
BASELINE = bench.BENCH / "instructions-baseline.json"


def run_requests(port, n):
    conns = [http.client.HTTPConnection("127.0.0.1", port) for _ in range(CONNECTIONS)]
    for i in range(n):
        c = conns[i % CONNECTIONS]
        c.request("GET", bench.PATH, headers={"host": "bench"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
    for c in conns:
        c.close()


def main():
    bench.WORK.mkdir(parents=True, exist_ok=True)
    out = bench.WORK / "callgrind.out"
    cfg = bench.sluice_config(bench.WORK)
    up = bench.start_upstream(0)
    proxy = subprocess.Popen(
        ["taskset", "-c", bench.PROXY_CPU, "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no",
         str(bench.TARGET / "sluice"), "run", "--config", str(cfg), "--bind-address", "127.0.0.1",
         "--port-map", f"80={bench.PORTS['sluice']},443={bench.TLS_PORTS['sluice']}", *bench.ADMIN_OFF],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "error"},
    )
    try:
        bench.wait_port(bench.PORTS["sluice"], timeout=120)
        run_requests(bench.PORTS["sluice"], 200)  # warm-up: pools, first allocations
        subprocess.run(["callgrind_control", "--zero", str(proxy.pid)], check=True, capture_output=True)
        run_requests(bench.PORTS["sluice"], REQUESTS)
        subprocess.run(["callgrind_control", "--dump", str(proxy.pid)], check=True, capture_output=True)
        time.sleep(0.5)
    finally:
        proxy.terminate()
        proxy.wait(timeout=60)
        up.stop()
    # The dump asked for after zeroing covers exactly the measured requests.
    measured = bench.WORK / "callgrind.out.1"
    totals = next(int(line.split()[1]) for line in measured.read_text(errors="replace").splitlines()
                  if line.startswith(("summary:", "totals:")))
    if "--keep" not in sys.argv:
        for dump in bench.WORK.glob("callgrind.out*"):
            dump.unlink()
    per_request = totals / REQUESTS
    print(f"instructions per request: {per_request:,.0f}")
    if "--update" in sys.argv:
        BASELINE.write_text(json.dumps({"instructions_per_request": round(per_request)}, indent=2) + "\n")
        print(f"baseline written to {BASELINE.relative_to(bench.ROOT)}")
        return
    if BASELINE.exists():
        base = json.loads(BASELINE.read_text())["instructions_per_request"]
        change = per_request / base - 1
        print(f"baseline {base:,}: {change:+.1%}")
        if change > TOLERANCE:
            sys.exit(f"regression: {change:+.1%} instructions per request (tolerance {TOLERANCE:.0%})")


if __name__ == "__main__":
    main()
