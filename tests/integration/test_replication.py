#!/usr/bin/env python3
"""Integration: signed policy replicating between three real agents.

A write on one agent is readable on the others (announcement + fetch); a
write made on an isolated agent (its peers stopped) reaches them after they
return (digest anti-entropy on push-pull); the audit chains replicate and
`canopy audit --verify` passes on every agent; after one agent's audit
database is altered by hand, its `audit --verify` fails.
Usage: test_replication.py PATH/TO/canopy PATH/TO/audit_tamper
"""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet  # noqa: E402

NAMES = ["r0", "r1", "r2"]


def doc(kind, name, spec):
    return "kind: %s\nname: %s\nspec: %s\n" % (kind, name, spec)


def main():
    canopy = os.path.abspath(sys.argv[1])
    tamper = os.path.abspath(sys.argv[2])
    fleet = Fleet(canopy)
    passed = 0
    try:
        key = os.path.join(fleet.root, "op.key")
        r = fleet.cli_raw(["operator", "keygen", "--out", key])
        assert r.returncode == 0, r.stderr
        trust = os.path.join(fleet.root, "trust")
        with open(key + ".pub") as src, open(trust, "w") as dst:
            dst.write(src.read())
        extra = ["--trust", trust]
        fleet.start("r0", extra=extra)
        for n in NAMES[1:]:
            fleet.start(n, seeds=["r0"], extra=extra)
        fleet.wait_for("3 alive", lambda: (
            len(m := fleet.members("r0")) == 3 and all(x["state"] == "alive" for x in m.values()), m), 30)

        def apply(on, text, fname):
            path = os.path.join(fleet.root, fname)
            with open(path, "w") as f:
                f.write(text)
            return fleet.cli(on, ["policy", "apply", "-f", path, "--key", key])

        def value_on(n, target):
            r = fleet.cli(n, ["policy", "get", target, "--json"], check=False)
            if r.returncode != 0:
                return None
            return json.loads(r.stdout)

        def everywhere(target, pred, names=NAMES):
            def check():
                got = {n: value_on(n, target) for n in names}
                return all(g is not None and pred(g) for g in got.values()), got
            return check

        # 1. a write on r1 is readable on r0 and r2
        apply("r1", doc("config", "telemetry", "{sample_interval_ms: 5000, upload: eu-west}"), "a.yaml")
        t0 = time.time()
        got = fleet.wait_for("config/telemetry on all three", everywhere(
            "config/telemetry", lambda g: g["spec"]["sample_interval_ms"] == 5000), 20)
        print("write on r1 readable everywhere after %.2fs" % (time.time() - t0))
        versions = {g["version"] for g in got.values()}
        assert len(versions) == 1, got
        passed += 1

        # 2. a write on an isolated agent reaches the rest after they return
        for n in ("r1", "r2"):
            fleet.kill(n)
        apply("r0", doc("config", "telemetry", "{sample_interval_ms: 1000, upload: eu-west}"), "b.yaml")
        apply("r0", doc("config", "offline-only", "{x: 1}"), "c.yaml")
        for n in ("r1", "r2"):
            fleet.start(n, seeds=["r0"], extra=extra)
        t0 = time.time()
        fleet.wait_for("the isolated writes on all three", everywhere(
            "config/offline-only", lambda g: g["spec"]["x"] == 1), 30)
        fleet.wait_for("the newer telemetry on all three", everywhere(
            "config/telemetry", lambda g: g["spec"]["sample_interval_ms"] == 1000), 30)
        print("isolated writes repaired %.2fs after the return" % (time.time() - t0))
        passed += 1

        # 3. audit chains replicate and verify everywhere
        def audits():
            out = {}
            for n in NAMES:
                r = fleet.cli(n, ["audit", "--json"], check=False)
                out[n] = len(json.loads(r.stdout)) if r.returncode == 0 else -1
            return all(v == 3 for v in out.values()), out
        fleet.wait_for("3 audit entries on every agent", audits, 60)
        for n in NAMES:
            r = fleet.cli(n, ["audit", "--verify"])
            assert r.returncode == 0, r.stdout
        passed += 1

        # 4. altering one agent's audit database by hand is detected
        fleet.kill("r2")
        t = subprocess.run([tamper, fleet.agents["r2"]["dir"]],
                           capture_output=True, text=True, timeout=30)
        assert t.returncode == 0, t.stderr
        fleet.start("r2", seeds=["r0"], extra=extra)
        r = fleet.cli("r2", ["audit", "--verify"], check=False)
        assert r.returncode != 0, r.stdout
        print("tampered audit refused: %s" % (r.stdout.strip() or r.stderr.strip()).splitlines()[-1])
        passed += 1
    finally:
        fleet.stop_all()
    print("replication: %d checks passed" % passed)
    return 0 if passed == 4 else 1


if __name__ == "__main__":
    sys.exit(main())
