"""The official Python XenAPI module (PyPI `XenAPI`) against the simulator.

Environment: SIM_URL, SIM_USER, SIM_PASSWORD; SSL_CERT_FILE when SIM_URL is https.
Run by `xo-core/tests/simulator_peers.rs` (see tests/peers/README.md). Exits non-zero on failure.
"""

import os
import sys
import time

import XenAPI


def main():
    url, user, password = os.environ["SIM_URL"], os.environ["SIM_USER"], os.environ["SIM_PASSWORD"]
    session = XenAPI.Session(url)
    session.xenapi.login_with_password(user, password, "1.0", "xo-rs peer test")
    x = session.xenapi

    # The Rust driver arms one SESSION_INVALID for VM.get_all: XenAPI logs in again and retries.
    vms = x.VM.get_all()
    assert len(vms) > 0, vms

    records = x.VM.get_all_records()
    assert set(records) == set(vms)
    by_name = {r["name_label"]: (ref, r) for ref, r in records.items()}
    web_ref, web = by_name["web-01"]
    # Ints arrive as strings in xapi's XML-RPC, datetimes as xmlrpc DateTime.
    assert isinstance(web["domid"], str) and int(web["domid"]) > 0, web["domid"]
    assert web["power_state"] == "Running"
    metrics = x.VM_metrics.get_record(web["metrics"])
    assert type(metrics["start_time"]).__name__ == "DateTime", type(metrics["start_time"])
    gm = x.VM_guest_metrics.get_record(web["guest_metrics"])
    assert "0/ip" in gm["networks"], gm["networks"]

    # Errors are XenAPI.Failure with xapi's details.
    try:
        x.VM.get_record("OpaqueRef:does-not-exist")
        raise AssertionError("expected HANDLE_INVALID")
    except XenAPI.Failure as f:
        assert f.details[0] == "HANDLE_INVALID", f.details

    # Start a halted VM asynchronously and follow its task.
    vm_ref, vm = by_name["build-01"]
    assert vm["power_state"] == "Halted"
    token = getattr(x.event, "from")(["vm"], "", 0.0)["token"]
    task = x.Async.VM.start(vm_ref, False, False)
    deadline = time.time() + 20
    while x.task.get_status(task) == "pending":
        assert time.time() < deadline, "task never finished"
        time.sleep(0.05)
    assert x.task.get_status(task) == "success", x.task.get_record(task)
    assert x.task.get_result(task) == ""
    x.task.destroy(task)
    assert x.VM.get_power_state(vm_ref) == "Running"
    try:
        x.VM.start(vm_ref, False, False)
        raise AssertionError("expected VM_BAD_POWER_STATE")
    except XenAPI.Failure as f:
        assert f.details == ["VM_BAD_POWER_STATE", vm_ref, "halted", "running"], f.details

    # Events: the start shows up as a mod on the VM.
    batch = getattr(x.event, "from")(["vm"], token, 5.0)
    mods = [e for e in batch["events"] if e["ref"] == vm_ref]
    assert mods and mods[-1]["operation"] == "mod" and mods[-1]["class"] == "vm", batch["events"][:3]
    assert mods[-1]["snapshot"]["power_state"] == "Running"
    # xapi's only tagged ints (<i4>): Python sees real ints here.
    assert batch["valid_ref_counts"]["vm"] == len(x.VM.get_all()), batch["valid_ref_counts"]

    # Async clone: the result is an XML-RPC fragment holding the new ref.
    x.VM.hard_shutdown(vm_ref)
    task = x.Async.VM.clone(vm_ref, "py-clone")
    while x.task.get_status(task) == "pending":
        time.sleep(0.05)
    result = x.task.get_result(task)
    clone = x.VM.get_by_name_label("py-clone")[0]
    assert result == "<value>%s</value>" % clone, result

    session.xenapi.session.logout()
    print("python XenAPI peer: ok")


def test_xenapi_peer():
    """pytest entry point (same environment variables)."""
    main()


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # report and fail
        print("python XenAPI peer: FAILED: %r" % (e,), file=sys.stderr)
        raise
