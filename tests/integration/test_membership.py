#!/usr/bin/env python3
"""Integration: five real agents on 127.0.0.1.

Checks join convergence, SIGKILL detected as failed everywhere, graceful
leave seen as left, restart rejoining alive with a higher incarnation,
fleet-wide key rotation, `monitor` events, and the admin socket refusing
another uid. Usage: test_membership.py PATH/TO/canopy
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet, free_port  # noqa: E402

NAMES = ["n0", "n1", "n2", "n3", "n4"]


def all_see(fleet, observers, predicate):
    def check():
        views = {o: fleet.members(o) for o in observers}
        bad = {o: {n: (m["state"], m["incarnation"]) for n, m in v.items()}
               for o, v in views.items() if not predicate(v)}
        return (not bad, bad)
    return check


def main():
    canopy = os.path.abspath(sys.argv[1])
    fleet = Fleet(canopy)
    passed = 0
    try:
        metrics_port = free_port()
        fleet.start("n0", extra=["--metrics", "127.0.0.1:%d" % metrics_port])
        for n in NAMES[1:]:
            fleet.start(n, seeds=["n0"])

        # 1. join convergence
        t0 = time.time()
        fleet.wait_for("5 alive members everywhere",
                       all_see(fleet, NAMES, lambda v: len(v) == 5 and
                               all(m["state"] == "alive" for m in v.values())), 30)
        print("converged in %.2fs" % (time.time() - t0))
        # the metrics plane on loopback: Prometheus text
        page = fleet.wait_for("metrics page with 5 alive members", lambda: (
            'canopy_members{state="alive"} 5' in (p := urllib.request.urlopen(
                "http://127.0.0.1:%d/metrics" % metrics_port, timeout=5).read().decode()), p), 10)
        assert "canopy_probes_total" in page, page
        m = fleet.members("n1")["n0"]
        for field in ("name", "addr", "state", "incarnation", "labels", "capacity", "health"):
            assert field in m, field
        assert m["labels"] == {"site": "test"}, m["labels"]
        assert m["capacity"]["cpus"] >= 1 and m["capacity"]["arch"], m["capacity"]
        passed += 1

        # 2. monitor sees the failure; SIGKILL detected as failed by all
        mon = subprocess.Popen([canopy, "monitor", "--json", "--count", "50",
                                "--data-dir", fleet.agents["n0"]["dir"]],
                               stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)
        inc_before = fleet.members("n0")["n4"]["incarnation"]
        fleet.kill("n4")
        t0 = time.time()
        observers = NAMES[:4]
        fleet.wait_for("n4 failed everywhere",
                       all_see(fleet, observers, lambda v: v["n4"]["state"] == "failed"), 30)
        print("SIGKILL detected by all in %.2fs" % (time.time() - t0))
        passed += 1

        # 3. restart rejoins alive with a higher incarnation
        fleet.start("n4", seeds=["n0"])
        fleet.wait_for("n4 alive again with a higher incarnation",
                       all_see(fleet, NAMES, lambda v: v["n4"]["state"] == "alive" and
                               v["n4"]["incarnation"] > inc_before), 30)
        passed += 1
        mon.terminate()
        out, _ = mon.communicate(timeout=10)
        events = [json.loads(line) for line in out.splitlines() if line.strip()]
        kinds = {(e["event"], e["name"]) for e in events}
        assert ("failed", "n4") in kinds or ("suspect", "n4") in kinds, kinds
        assert ("alive", "n4") in kinds or ("join", "n4") in kinds, kinds
        passed += 1

        # 4. graceful leave: seen as left, and the agent exits by itself
        r = fleet.cli("n3", ["leave"])
        assert "leaving" in r.stdout, r.stdout
        fleet.agents["n3"]["proc"].wait(timeout=15)
        observers = ["n0", "n1", "n2", "n4"]
        fleet.wait_for("n3 left everywhere",
                       all_see(fleet, observers, lambda v: v["n3"]["state"] == "left"), 30)
        passed += 1

        # 5. key rotation across the fleet, with n1 offline during it: when
        #    it returns it catches up (new key installed and made primary)
        #    from a member that still shares the old key with it.
        fleet.kill("n1")
        fleet.wait_for("n1 failed",
                       all_see(fleet, ["n0", "n2", "n4"], lambda v: v["n1"]["state"] == "failed"), 30)
        new_key = fleet.cli_raw(["keygen"]).stdout.strip()
        old_key = fleet.key
        for op in ("install", "use"):
            res = json.loads(fleet.cli("n0", ["keys", op, new_key, "--json"]).stdout)
            assert res["ok"] == res["members"] == 3, res
        fleet.start("n1", seeds=["n0"])

        def n1_caught_up():
            with open(fleet.agents["n1"]["keyring"]) as f:
                lines = [x for x in f.read().split("\n") if x and not x.startswith("#")]
            return (lines[:1] == [new_key], lines)
        fleet.wait_for("n1 to adopt the new primary", n1_caught_up, 30)
        fleet.wait_for("n1 alive everywhere after catching up",
                       all_see(fleet, observers, lambda v: v["n1"]["state"] == "alive"), 30)
        res = json.loads(fleet.cli("n0", ["keys", "remove", old_key, "--json"]).stdout)
        assert res["ok"] == res["members"] == 4, res
        res = json.loads(fleet.cli("n2", ["keys", "list", "--json"]).stdout)
        assert len(res["keys"]) == 1 and res["keys"][0]["members"] == 4 and \
            res["keys"][0]["primary_on"] == 4, res
        for n in observers:
            with open(fleet.agents[n]["keyring"]) as f:
                lines = [x for x in f.read().split("\n") if x and not x.startswith("#")]
            assert lines == [new_key], (n, lines)
        # still talking after the old key is gone: a new failure is detected
        fleet.kill("n2")
        fleet.wait_for("n2 failed after rotation",
                       all_see(fleet, ["n0", "n1", "n4"], lambda v: v["n2"]["state"] == "failed"), 30)
        passed += 1

        # 5b. an agent whose ring shares no key with the fleet any more
        #     cannot join, and both sides say why.
        stale_ring = os.path.join(fleet.root, "stale.keyring")
        with open(stale_ring, "w") as f:
            f.write(old_key + "\n")
        fleet.start("stale", seeds=["n0"], keyring=stale_ring)
        fleet.wait_for("the stale agent to explain its failed join",
                       lambda: ("may not share a key" in fleet.log("stale"), fleet.log("stale")), 20)
        info = json.loads(fleet.cli("n0", ["info", "--json"]).stdout)
        assert info["stats"]["unknown_key_id"] > 0, info["stats"]
        assert "one of the two key rings is out of date" in fleet.log("n0")
        assert len(fleet.members("stale")) == 1
        fleet.kill("stale", signal.SIGTERM)
        passed += 1

        # 5c. a malformed key ring stops an agent at start, saying why
        bad_ring = os.path.join(fleet.root, "bad.keyring")
        with open(bad_ring, "w") as f:
            f.write("# comment\nnot-a-key\n")
        r = subprocess.run([canopy, "agent", "--name", "bad", "--bind", "127.0.0.1:1",
                            "--data-dir", os.path.join(fleet.root, "bad"), "--keyring", bad_ring],
                           capture_output=True, text=True, timeout=10)
        assert r.returncode != 0 and "line 2" in r.stderr, (r.returncode, r.stderr)
        passed += 1

        # 6. another uid is refused: by the socket mode, and by the agent's
        #    uid check when the socket mode would let it through.
        if os.geteuid() != 0:
            raise AssertionError("the uid check needs root to run a client as another uid")
        r = fleet.cli_raw(["members"], fleet.agents["n0"]["dir"], user=65534)
        assert r.returncode != 0, r.stdout
        open_ring = os.path.join(fleet.root, "open.keyring")
        shutil.copy(fleet.agents["n0"]["keyring"], open_ring)
        fleet.start("open", seeds=["n0"], keyring=open_ring,
                    extra=["--admin-mode", "0666"], predir_mode=0o755)
        r = fleet.cli_raw(["members"], fleet.agents["open"]["dir"], user=65534)
        assert r.returncode == 1 and "permission denied" in r.stderr, (r.returncode, r.stderr)
        r = fleet.cli_raw(["members"], fleet.agents["open"]["dir"])
        assert r.returncode == 0, r.stderr
        passed += 1

        # 7. SIGTERM is a graceful leave too
        fleet.kill("n4", signal.SIGTERM)
        assert fleet.agents["n4"]["proc"].returncode == 0, fleet.agents["n4"]["proc"].returncode
        fleet.wait_for("n4 left after SIGTERM",
                       all_see(fleet, ["n0", "n1"], lambda v: v["n4"]["state"] == "left"), 30)
        passed += 1

        # 8. a CLI call with no agent says so and fails
        r = fleet.cli_raw(["members"], os.path.join(fleet.root, "nobody-here"))
        assert r.returncode == 3 and "no agent running" in r.stderr, (r.returncode, r.stderr)
        passed += 1
    except Exception:
        for n in fleet.agents:
            print("---- log of %s ----\n%s" % (n, fleet.log(n)))
        raise
    finally:
        fleet.stop_all()
    shutil.rmtree(fleet.root, ignore_errors=True)
    print("membership: %d passed, 0 failed" % passed)


if __name__ == "__main__":
    main()
