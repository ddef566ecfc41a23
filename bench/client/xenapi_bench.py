"""Times the official Python XenAPI module against a XAPI endpoint.

Usage: xenapi_bench.py URL USER PASSWORD SMALL_CALLS RECORD_RUNS
Prints one JSON line: {"client", "small_calls_per_s", "get_all_records_ms" (median), "vms"}.
"""
import json
import statistics
import sys
import time

import XenAPI

url, user, password = sys.argv[1], sys.argv[2], sys.argv[3]
small, runs = int(sys.argv[4]), int(sys.argv[5])

session = XenAPI.Session(url, ignore_ssl=True)
session.xenapi.login_with_password(user, password, "1.0", "xo-rs-bench")
try:
    session.xenapi.pool.get_all()  # warm the connection
    t = time.perf_counter()
    for _ in range(small):
        session.xenapi.pool.get_all()
    small_rate = small / (time.perf_counter() - t)

    times, vms = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        records = session.xenapi.VM.get_all_records()
        times.append((time.perf_counter() - t) * 1000)
        vms = len(records)
finally:
    session.xenapi.session.logout()

print(json.dumps({
    "client": "python XenAPI " + getattr(XenAPI, "__version__", ""),
    "small_calls_per_s": small_rate,
    "get_all_records_ms": statistics.median(times),
    "vms": vms,
}))
