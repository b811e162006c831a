#!/usr/bin/env python3
"""Integration: staged rollouts with automatic revert, five real agents.

A 4-replica job (canary 1, max_parallel 2, healthy_for_ms 1000,
auto_revert) runs version 1 (a sleep). Version 2 exits 1 at once: only the
canary (replica 0, stage 0) tries it, it fails, and every device returns
to version 1 by itself; `rollout status` says reverted on every agent.
Version 3 (a good sleep) then rolls out stage by stage (canary, then two,
then one) to all four replicas, and `rollout status` reaches complete.
An agent restarted after completion keeps version 3; one killed in the
middle of the version 4 rollout resumes it after its restart. Version 5
fails on the canary without auto_revert: the rollout pauses there; version
6 then rolls from version 4 to completion.

Every workload is started by the agents; the test learns each pid from
`canopy jobs --json` and kills any that survive at the end by PID. Every
wait is bounded. Usage: test_rollout.py PATH/TO/canopy
"""
import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet  # noqa: E402

NAMES = ["n0", "n1", "n2", "n3", "n4"]
JOB = """kind: job
name: staged
spec:
  replicas: 4
  command: {command}
  restart: {{policy: always, backoff_ms: [100, 400]}}
  update: {{max_parallel: 2, canary: 1, healthy_for_ms: 1000, auto_revert: {revert}}}
"""
GOOD1 = '["/bin/sh", "-c", "exec sleep 600"]'
BAD2 = '["/bin/sh", "-c", "exit 1"]'
GOOD3 = '["/bin/sh", "-c", "exec sleep 601"]'
GOOD4 = '["/bin/sh", "-c", "exec sleep 602"]'
BAD5 = '["/bin/sh", "-c", "exit 2"]'
GOOD6 = '["/bin/sh", "-c", "exec sleep 603"]'

seen_pids = set()


def instances(fleet, name):
    """This agent's instances of the job: [(replica, version, state, pid)]."""
    r = fleet.cli(name, ["jobs", "--json"], check=False)
    if r.returncode != 0:
        return None
    out = []
    for i in json.loads(r.stdout)["instances"]:
        if i["job"] != "staged":
            continue
        if i["pid"] > 0:
            seen_pids.add(i["pid"])
        out.append((i["replica"], i["version"], i["state"], i["pid"], i["wanted"]))
    return out


def running_versions(fleet):
    """{replica: [version of each live wanted process]} over the fleet."""
    total = {}
    for n in NAMES:
        inst = instances(fleet, n)
        if inst is None:
            return None
        for rep, ver, state, pid, wanted in inst:
            if wanted and pid > 0 and state in ("running", "healthy"):
                total.setdefault(rep, []).append(ver)
    return total


def all_run(fleet, version):
    def check():
        t = running_versions(fleet)
        ok = (t is not None and sorted(t) == [0, 1, 2, 3] and
              all(v == [version] for v in t.values()))
        return ok, t
    return check


def status(fleet, name):
    r = fleet.cli(name, ["rollout", "status", "staged", "--json"], check=False)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


def apply(fleet, keyfile, command, revert="true"):
    path = os.path.join(fleet.root, "staged.yaml")
    with open(path, "w") as f:
        f.write(JOB.format(command=command, revert=revert))
    fleet.cli("n2", ["policy", "apply", "-f", path, "--key", keyfile])


def winner(fleet, previous):
    """The job's document version once every agent has one newer than previous."""
    def check():
        vs = set()
        for n in NAMES:
            jobs = json.loads(fleet.cli(n, ["jobs", "--json"]).stdout)["jobs"]
            vs |= {j["version"] for j in jobs if j["name"] == "staged"}
        ok = len(vs) == 1 and min(vs) > previous
        return ok, vs
    return fleet.wait_for("the new version on every agent", check, 30).pop()


def main():
    canopy = os.path.abspath(sys.argv[1])
    fleet = Fleet(canopy)
    passed = 0
    try:
        keyfile = os.path.join(fleet.root, "operator.key")
        r = fleet.cli_raw(["operator", "keygen", "--out", keyfile])
        assert r.returncode == 0, r.stderr
        trust = os.path.join(fleet.root, "trust")
        with open(keyfile + ".pub") as src, open(trust, "w") as dst:
            dst.write(src.read())
        extra = ["--trust", trust]
        fleet.start("n0", extra=extra)
        for n in NAMES[1:]:
            fleet.start(n, seeds=["n0"], extra=extra)
        fleet.wait_for("5 alive members", lambda: (
            len(m := fleet.members("n0")) == 5 and all(x["state"] == "alive" for x in m.values()), m), 30)

        # 1. version 1 (no earlier version) runs everywhere at once
        apply(fleet, keyfile, GOOD1)
        v1 = winner(fleet, 0)
        fleet.wait_for("4 replicas at v1", all_run(fleet, v1), 30)
        st = status(fleet, "n1")
        assert st["state"] == "complete" and st["previous"] == 0, st
        passed += 1

        # 2. version 2 fails on the canary: the fleet returns to v1 by itself
        apply(fleet, keyfile, BAD2)
        v2 = winner(fleet, v1)
        t0 = time.time()
        tried_v2 = set()

        def reverted():
            t = running_versions(fleet)
            for n in NAMES:
                for rep, ver, _state, _pid, wanted in instances(fleet, n) or []:
                    if ver == v2:
                        tried_v2.add(rep)
            sts = [status(fleet, n) for n in NAMES]
            ok = (all(s is not None and s["state"] == "reverted" and s["version"] == v2 and
                      s["previous"] == v1 for s in sts) and
                  t is not None and sorted(t) == [0, 1, 2, 3] and
                  all(v == [v1] for v in t.values()))
            return ok, (t, [s and s["state"] for s in sts])
        fleet.wait_for("revert to v1 everywhere", reverted, 60)
        print("v2 reverted %.2fs after apply; replicas that tried v2: %s" %
              (time.time() - t0, sorted(tried_v2)))
        assert tried_v2 <= {0}, tried_v2  # only the canary ever ran v2
        st = status(fleet, "n4")
        assert all(r["version"] == v1 for r in st["replicas"]), st
        r = fleet.cli("n3", ["rollout", "status", "staged"])
        assert "reverted" in r.stdout, r.stdout
        passed += 1

        # 3. version 3 rolls out stage by stage (from v1, skipping reverted v2)
        apply(fleet, keyfile, GOOD3)
        v3 = winner(fleet, v2)
        t0 = time.time()
        stages_seen = []
        mixed = [False]

        def complete():
            s = status(fleet, "n0")
            if s is None:
                return False, None
            assert s["version"] == v3 and s["previous"] == v1, s
            assert s["state"] != "reverted", s
            if not stages_seen or stages_seen[-1] != s["stage"]:
                stages_seen.append(s["stage"])
            t = running_versions(fleet)
            if t and any(v3 in v for v in t.values()) and any(v1 in v for v in t.values()):
                mixed[0] = True
            ok = s["state"] == "complete" and all_run(fleet, v3)()[0]
            return ok, (s["state"], s["stage"], t)
        fleet.wait_for("v3 complete on all 4 replicas", complete, 120)
        print("v3 complete %.2fs after apply; stages seen: %s" % (time.time() - t0, stages_seen))
        assert stages_seen == sorted(stages_seen), stages_seen  # never goes back
        assert mixed[0], "never saw v1 and v3 side by side: not staged"
        assert len(stages_seen) >= 2, stages_seen
        def everyone_complete():  # gossip brings the last report to all
            sts = [status(fleet, n) for n in NAMES]
            return all(s is not None and s["state"] == "complete" and
                       s["stage"] == s["stages"] == 3 for s in sts), sts
        sts = fleet.wait_for("complete on every agent", everyone_complete, 30)
        r = fleet.cli("n2", ["rollout", "status", "staged"])
        assert "complete" in r.stdout, r.stdout
        passed += 1

        # 4. an agent restarted after completion keeps v3 (its store says
        # complete): nothing goes back to v1
        host3 = sts[0]["replicas"][3]["member"]
        fleet.kill(host3)
        fleet.start(host3, seeds=["n0" if host3 != "n0" else "n1"], extra=extra)
        fleet.wait_for("5 alive members after the restart", lambda: (
            len(m := fleet.members(host3)) == 5 and all(x["state"] == "alive" for x in m.values()), m), 30)
        s = fleet.wait_for("its first placement", lambda: (
            (x := status(fleet, host3)) is not None, x), 15)
        assert s["state"] == "complete" and s["version"] == v3, s
        fleet.wait_for("4 replicas at v3 after the restart", all_run(fleet, v3), 30)
        passed += 1

        # 5. an agent killed in the middle of a rollout resumes it after
        # its restart (its store and the fleet's reports), to completion
        apply(fleet, keyfile, GOOD4)
        v4 = winner(fleet, v3)
        t0 = time.time()
        fleet.wait_for("v4 past the canary", lambda: (
            (s := status(fleet, "n0")) is not None and s["stage"] >= 1, s), 60)
        victim = status(fleet, "n0")["replicas"][3]["member"]  # the last stage's host
        fleet.kill(victim)
        fleet.start(victim, seeds=["n0" if victim != "n0" else "n1"], extra=extra)

        def all_complete_v4():
            sts = [status(fleet, n) for n in NAMES]
            ok = (all(s is not None and s["version"] == v4 and s["state"] == "complete"
                      for s in sts) and all_run(fleet, v4)()[0])
            return ok, [s and (s["state"], s["stage"]) for s in sts]
        fleet.wait_for("v4 complete after a restart mid-rollout", all_complete_v4, 120)
        print("v4 complete %.2fs after apply, %s restarted mid-rollout" % (time.time() - t0, victim))
        passed += 1

        # 6. without auto_revert a failing canary pauses the rollout: the
        # other replicas stay at v4; a fixed version 6 then rolls from v4
        # (not from the paused v5) to completion
        apply(fleet, keyfile, BAD5, revert="false")
        v5 = winner(fleet, v4)

        def paused():
            sts = [status(fleet, n) for n in NAMES]
            t = running_versions(fleet)
            ok = (all(s is not None and s["version"] == v5 and s["state"] == "paused" and
                      s["stage"] == 0 for s in sts) and
                  t is not None and all(t.get(r) == [v4] for r in (1, 2, 3)))
            return ok, ([s and (s["state"], s["stage"]) for s in sts], t)
        fleet.wait_for("v5 paused at the canary", paused, 60)
        time.sleep(3)  # several placement ticks: still paused, nothing advanced
        ok, last = paused()
        assert ok, last
        apply(fleet, keyfile, GOOD6)
        v6 = winner(fleet, v5)
        t0 = time.time()

        def v6_complete():
            sts = [status(fleet, n) for n in NAMES]
            ok = (all(s is not None and s["version"] == v6 and s["previous"] == v4 and
                      s["state"] == "complete" for s in sts) and all_run(fleet, v6)()[0])
            return ok, [s and (s["state"], s["previous"]) for s in sts]
        fleet.wait_for("v6 complete from v4", v6_complete, 120)
        print("v5 paused; v6 complete %.2fs after apply" % (time.time() - t0))
        passed += 1
    finally:
        fleet.stop_all()
        for pid in sorted(seen_pids):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    print("rollout: %d checks passed" % passed)
    return 0 if passed == 6 else 1


if __name__ == "__main__":
    sys.exit(main())
