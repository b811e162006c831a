#!/usr/bin/env python3
"""Integration: scheduling and the workload runtime with five real agents.

An operator applies a 3-replica job on one agent; the fleet runs exactly
three instances. SIGKILL of a hosting device (its agent and its workloads)
moves the replica elsewhere soon after detection, still three in all,
and no surviving instance restarts or changes its replica number; when the
device returns, its replica goes back to it and the stand-in stops. An agent killed alone
re-adopts its still-running workload after a restart (same pid). `plan`
shows moves without applying; `logs` shows the workload's output.

Every workload is a `sleep` started by the agents; the test learns each
one's pid from `canopy jobs --json` and kills any that survive at the end
by PID. Usage: test_jobs.py PATH/TO/canopy
"""
import json
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet  # noqa: E402

NAMES = ["n0", "n1", "n2", "n3", "n4"]
JOB = """kind: job
name: echo-sleep
spec:
  replicas: 3
  command: ["/bin/sh", "-c", "echo started $CANOPY_JOB/$CANOPY_REPLICA on $CANOPY_NODE; exec sleep 600"]
  restart: {policy: always, backoff_ms: [200, 2000]}
"""
PLANNED = """kind: job
name: planned-only
spec:
  replicas: 2
  command: ["/bin/sleep", "600"]
"""

seen_pids = set()


def instances(fleet, name):
    """This agent's live instances of echo-sleep: {replica: pid}."""
    r = fleet.cli(name, ["jobs", "--json"], check=False)
    if r.returncode != 0:
        return None
    out = {}
    for i in json.loads(r.stdout)["instances"]:
        if i["job"] == "echo-sleep" and i["pid"] > 0 and i["state"] in ("running", "healthy", "starting"):
            out[i["replica"]] = i["pid"]
            seen_pids.add(i["pid"])
    return out


def fleet_instances(fleet, names):
    total = {}
    for n in names:
        inst = instances(fleet, n)
        if inst is None:
            return None
        for rep, pid in inst.items():
            total.setdefault(rep, []).append((n, pid))
    return total


def exactly_three(fleet, names):
    def check():
        t = fleet_instances(fleet, names)
        ok = t is not None and sorted(t) == [0, 1, 2] and all(len(v) == 1 for v in t.values())
        return ok, t
    return check


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


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

        # 1. plan shows where a job would run and changes nothing
        pfile = os.path.join(fleet.root, "planned.yaml")
        with open(pfile, "w") as f:
            f.write(PLANNED)
        r = fleet.cli("n1", ["plan", "-f", pfile])
        assert "planned-only" in r.stdout and "2 to start" in r.stdout, r.stdout
        r = fleet.cli("n1", ["plan", "-f", pfile, "--json"])
        plan = json.loads(r.stdout)
        assert plan["started"] == 2 and len(plan["moves"]) == 2, plan
        jobs = json.loads(fleet.cli("n1", ["jobs", "--json"]).stdout)["jobs"]
        assert all(j["name"] != "planned-only" for j in jobs), jobs
        passed += 1

        # 2. a 3-replica job runs exactly three instances in the fleet
        jfile = os.path.join(fleet.root, "job.yaml")
        with open(jfile, "w") as f:
            f.write(JOB)
        fleet.cli("n2", ["policy", "apply", "-f", jfile, "--key", keyfile])
        t0 = time.time()
        placed = fleet.wait_for("exactly 3 instances", exactly_three(fleet, NAMES), 30)
        print("3 replicas running %.2fs after apply: %s" % (time.time() - t0, placed))
        # every agent computes the same placement (once each has the job:
        # the agents that host it may have it before the others)
        def agree():
            where = []
            for n in NAMES:
                r = fleet.cli(n, ["job", "status", "echo-sleep", "--json"], check=False)
                if r.returncode != 0:
                    return False, "%s: %s" % (n, r.stdout.strip())
                where.append([x["member"] for x in json.loads(r.stdout)["replicas"]])
            return all(w == where[0] for w in where), where
        fleet.wait_for("the same placement on every agent", agree, 20)
        # every agent speaks protocol version 2: the newest placement rule
        rule = json.loads(fleet.cli("n1", ["jobs", "--json"]).stdout)["placement_rule"]
        assert rule == 2, rule
        passed += 1

        # 2b. every agent shows every replica's state: its own from the
        # runtime, the others' from the hosts' gossiped workload reports
        hosts = sorted(v[0][0] for v in placed.values())
        outsider = next(n for n in NAMES if n not in hosts)
        def reported():
            bad = []
            for n in (outsider, hosts[0]):
                st = json.loads(fleet.cli(n, ["job", "status", "echo-sleep", "--json"]).stdout)
                for rep in st["replicas"]:
                    want_src = "local" if rep["member"] == n else "gossip"
                    if (rep.get("source") != want_src or rep.get("state") != "running" or
                            rep.get("running_version") != st["version"] or
                            rep.get("restarts") != 0):
                        bad.append((n, rep))
            return not bad, bad
        t0 = time.time()
        fleet.wait_for("replica states reported everywhere", reported, 20)
        print("remote replica states shown %.2fs after the placement agreed" % (time.time() - t0))
        passed += 1

        # 3. logs of a hosting agent show the workload's output
        host = placed[0][0][0]
        r = fleet.cli(host, ["logs", "echo-sleep"])
        assert "started echo-sleep/" in r.stdout and ("on " + host) in r.stdout, r.stdout
        passed += 1

        # 4. SIGKILL of a hosting device: the replica runs elsewhere
        victim = placed[1][0][0] if placed[1][0][0] != "n0" else placed[2][0][0]
        victim_pids = list(instances(fleet, victim).values())
        fleet.kill(victim)
        for pid in victim_pids:          # the device is gone: its workloads too
            os.killpg(pid, signal.SIGKILL)
        rest = [n for n in NAMES if n != victim]
        t0 = time.time()
        moved = fleet.wait_for("3 instances on the other 4", exactly_three(fleet, rest), 60)
        print("replica moved %.2fs after SIGKILL of %s: %s" % (time.time() - t0, victim, moved))
        # only the victim's replica moved, under its own number: the
        # survivors kept number and process (placement's stable base)
        victim_reps = [rep for rep, v in placed.items() if v[0][0] == victim]
        for rep, v in placed.items():
            if rep in victim_reps:
                assert moved[rep][0][0] != victim, (rep, moved)
            else:
                assert moved[rep] == v, ("survivor restarted or renumbered", rep, placed, moved)
        # job status names the stand-in: the replica holds the victim's place
        # (every agent re-places once a second: poll until this one has)
        def stand_in_named():
            st = json.loads(fleet.cli(rest[0], ["job", "status", "echo-sleep", "--json"]).stdout)
            return all(r.get("stand_in_for") == (victim if r["replica"] in victim_reps else None)
                       for r in st["replicas"]), st
        fleet.wait_for("job status naming the stand-in", stand_in_named, 20)
        passed += 1

        # 5. the device returns: still exactly three (the extra one stops),
        # and its replica goes back to it under the same number
        fleet.start(victim, seeds=["n0"], extra=extra)
        def back_home():
            ok, t = exactly_three(fleet, NAMES)()
            return ok and all(t[rep][0][0] == victim for rep in victim_reps), t
        home = fleet.wait_for("3 instances on all 5, the returned device's back", back_home, 60)
        for rep, v in placed.items():
            if rep not in victim_reps:
                assert home[rep] == v, ("survivor restarted by the return", rep, placed, home)
        def no_stand_in():
            st = json.loads(fleet.cli(rest[0], ["job", "status", "echo-sleep", "--json"]).stdout)
            return all("stand_in_for" not in r for r in st["replicas"]), st
        fleet.wait_for("no stand-in once the device is back", no_stand_in, 20)
        passed += 1

        # 6. an agent killed alone re-adopts its running workload
        placed = fleet_instances(fleet, NAMES)
        host, pid = placed[0][0]
        fleet.kill(host)
        assert alive(pid), "the workload died with its agent"
        fleet.start(host, seeds=["n0"], extra=extra)
        inst = json.loads(fleet.cli(host, ["jobs", "--json"]).stdout)["instances"]
        mine = [i for i in inst if i["job"] == "echo-sleep" and i["pid"] == pid]
        assert mine and mine[0]["adopted"], inst
        fleet.wait_for("3 instances after re-adoption", exactly_three(fleet, NAMES), 60)
        passed += 1
    finally:
        fleet.stop_all()
        # Workloads of agents that were killed, or that outlived their
        # agent's stop, are stopped here by PID (process group).
        for pid in sorted(seen_pids):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
    print("jobs: %d checks passed" % passed)
    return 0 if passed == 7 else 1


if __name__ == "__main__":
    sys.exit(main())
