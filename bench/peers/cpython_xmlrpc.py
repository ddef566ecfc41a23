"""Times CPython's xmlrpc.client.loads (what the official XenAPI module decodes with) on one file.

Usage: python3 cpython_xmlrpc.py FILE RUNS MIN_SECS EXPECT
Prints one JSON line shaped like xo_bench::Measurement.
"""
import json
import platform
import sys
import time
import xmlrpc.client


def status_kb(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def decode(data):
    # XenAPI.py's ServerProxy uses the defaults: no use_datetime, no use_builtin_types.
    (envelope,), _method = xmlrpc.client.loads(data)
    return len(envelope["Value"])


def main():
    path, runs, min_secs, expect = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    rss_start = status_kb("VmRSS")
    with open(path, "rb") as f:
        data = f.read()
    rss_loaded = status_kb("VmRSS")
    count = decode(data)  # warm-up; the high-water mark after it is one decode's peak
    hwm = status_kb("VmHWM")
    if count != expect:
        sys.exit(f"cpython: decoded {count} records, expected {expect}")
    times, cpu_times = [], []
    started = time.perf_counter()
    while len(times) < runs or time.perf_counter() - started < min_secs:
        t, cpu = time.perf_counter(), time.process_time()
        decode(data)
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - cpu)
    print(json.dumps({
        "contender": "CPython xmlrpc.client.loads",
        "runtime": f"{platform.python_implementation()} {platform.python_version()}",
        "bytes": len(data), "records": count, "times": times, "cpu_times": cpu_times,
        "rss_start_kb": rss_start, "rss_loaded_kb": rss_loaded, "hwm_kb": hwm,
    }))


main()
