#!/usr/bin/env python3
"""Integration: signed, replicated policy through the CLI of a real agent.

One agent on 127.0.0.1 (replication between agents is added on top of the
same helpers): operator keygen, the --trust file (and refusing a bad one,
and the no-trust warning), a multi-document YAML apply, get/list/history
and their JSON, --dry-run writing nothing, refusals (unsigned, unknown key,
out of a role's scope, a YAML error naming file:line: field), rollback,
delete, audit and audit --verify, which must fail after a byte of the audit
log is flipped on disk, and the offline rule (a replica last up more than
the tombstone ttl ago forgets its documents if it has a seed).

Usage: test_policy.py PATH/TO/canopy PATH/TO/audit_tamper PATH/TO/policy_aged
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fleet import Fleet  # noqa: E402


# ---- reusable helpers --------------------------------------------------------

def operator_keygen(fleet, path):
    """A new operator key pair at path (secret) and path.pub; returns the
    public key text."""
    r = fleet.cli_raw(["operator", "keygen", "--out", path])
    assert r.returncode == 0, r.stderr
    assert os.stat(path).st_mode & 0o777 == 0o600, oct(os.stat(path).st_mode)
    with open(path + ".pub") as f:
        pub = f.read()
    assert pub.endswith("\n") and len(pub.strip()) == 44 and "\n" not in pub.strip(), repr(pub)
    return pub.strip()


def write_trust(path, pubs):
    """A --trust file: one base64 public key per line, with a label."""
    with open(path, "w") as f:
        f.write("# root operators\n")
        for i, p in enumerate(pubs):
            f.write("%s root-%d\n" % (p, i))
    return path


def write_yaml(fleet, name, text):
    path = os.path.join(fleet.root, name)
    with open(path, "w") as f:
        f.write(textwrap.dedent(text))
    return path


def policy(fleet, agent, args, key=None, check=True, env_key=None, stdin=None):
    """Run `canopy policy ARGS` against agent; key = --key FILE, env_key =
    CANOPY_OPERATOR_KEY, stdin = text for `-f -`."""
    cmd = [fleet.canopy, "policy"] + args + ["--data-dir", fleet.agents[agent]["dir"]]
    if key:
        cmd += ["--key", key]
    env = dict(os.environ)
    env.pop("CANOPY_OPERATOR_KEY", None)
    if env_key:
        env["CANOPY_OPERATOR_KEY"] = env_key
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env, input=stdin)
    if check and r.returncode != 0:
        raise AssertionError("canopy policy %s on %s failed (%d): %s%s" %
                             (args, agent, r.returncode, r.stdout, r.stderr))
    return r


def apply(fleet, agent, path, key, dry_run=False, check=True):
    return policy(fleet, agent, ["apply", "-f", path] + (["--dry-run"] if dry_run else []),
                  key=key, check=check)


def get_json(fleet, agent, target, version=None):
    args = ["get", target, "--json"] + (["--version", str(version)] if version else [])
    return json.loads(policy(fleet, agent, args).stdout)


def list_json(fleet, agent, kind=None):
    args = ["list", "--json"] + (["--kind", kind] if kind else [])
    return {"%s/%s" % (d["kind"], d["name"]): d for d in json.loads(policy(fleet, agent, args).stdout)}


def history_json(fleet, agent, target):
    return json.loads(policy(fleet, agent, ["history", target, "--json"]).stdout)


def audit_json(fleet, agent):
    return json.loads(fleet.cli(agent, ["audit", "--json"]).stdout)


def refused(r, *needles):
    """A refusal: exit 1 and every needle in stderr."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    for n in needles:
        assert n in r.stderr, (n, r.stderr)


def start_policy_agent(fleet, name, trust, seeds=()):
    fleet.start(name, seeds=seeds, extra=["--trust", trust])


# ---- the test ------------------------------------------------------------------

def main():
    canopy = os.path.abspath(sys.argv[1])
    tamper = os.path.abspath(sys.argv[2])
    aged = os.path.abspath(sys.argv[3])
    fleet = Fleet(canopy)
    passed = 0
    try:
        root_key = os.path.join(fleet.root, "root.key")
        tenant_key = os.path.join(fleet.root, "tenant.key")
        root_pub = operator_keygen(fleet, root_key)
        tenant_pub = operator_keygen(fleet, tenant_key)
        assert root_pub != tenant_pub
        r = fleet.cli_raw(["operator", "keygen", "--out", root_key])
        assert r.returncode == 1 and "refusing to overwrite" in r.stderr, r.stderr
        trust = write_trust(os.path.join(fleet.root, "trust"), [root_pub])
        passed += 1

        # 1. a bad --trust file: the agent says why and does not start
        bad_trust = os.path.join(fleet.root, "bad-trust")
        with open(bad_trust, "w") as f:
            f.write("# ok\nnot-a-key\n")
        d = os.path.join(fleet.root, "bad")
        p = subprocess.run([canopy, "agent", "--name", "bad", "--bind", "127.0.0.1:1",
                            "--data-dir", d, "--keyring", fleet.keyring, "--trust", bad_trust],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0 and "line 2" in p.stderr and "bad-trust" in p.stderr, p.stderr
        passed += 1

        # 2. no --trust: a warning at start, every write refused with a reason
        fleet.start("lonely")
        assert "no --trust" in fleet.log("lonely"), fleet.log("lonely")
        cfg = write_yaml(fleet, "one.yaml", """\
            kind: config
            name: app-a
            spec: {replicas: 2}
            """)
        refused(apply(fleet, "lonely", cfg, root_key, check=False), "unknown key",
                "without --trust")
        fleet.kill("lonely", signal.SIGTERM)
        passed += 1

        # 3. a multi-document file: a config and a job
        start_policy_agent(fleet, "p0", trust)
        two = write_yaml(fleet, "two.yaml", """\
            # a config and a job
            kind: config
            name: app-a
            spec:
              replicas: 2
              labels: {tier: web}
              ratio: 0.5
            ---
            kind: job
            name: web
            spec:
              replicas: 2
              command: ["/bin/sleep", "100"]
            """)
        r = apply(fleet, "p0", two, root_key)
        assert r.stdout.count("applied ") == 2 and "2 of 2" in r.stdout, r.stdout
        docs = list_json(fleet, "p0")
        assert set(docs) == {"config/app-a", "job/web"}, docs
        info = json.loads(fleet.cli("p0", ["info", "--json"]).stdout)
        root_id = docs["config/app-a"]["key"]
        assert len(root_id) == 16, root_id
        a = get_json(fleet, "p0", "config/app-a")
        for field in ("kind", "name", "version", "time", "writer", "key", "key_base64", "deleted",
                      "body_hash", "spec"):
            assert field in a, (field, a)
        assert a["writer"] == "p0" and a["deleted"] is False and a["key_base64"] == root_pub, a
        assert a["spec"] == {"replicas": 2, "labels": {"tier": "web"}, "ratio": 0.5}, a["spec"]
        job = get_json(fleet, "p0", "job/web")
        assert job["spec"]["replicas"] == 2 and job["spec"]["tenant"] == "default", job
        assert job["spec"]["command"] == ["/bin/sleep", "100"], job
        text = policy(fleet, "p0", ["get", "config/app-a"]).stdout
        assert "writer:   p0" in text and '"replicas": 2' in text, text
        assert list(list_json(fleet, "p0", kind="job")) == ["job/web"]
        h = history_json(fleet, "p0", "config/app-a")
        assert [x["version"] for x in h] == [a["version"]], h
        assert info["policy"]["documents"] == 2 and info["policy"]["root_keys"] == 1, info
        # applying the same documents again (here from stdin, -f -) changes
        # nothing: no new version, no audit entry
        with open(two) as f:
            r = policy(fleet, "p0", ["apply", "-f", "-"], key=root_key, stdin=f.read())
        assert r.stdout.count("unchanged") == 2, r.stdout
        assert len(history_json(fleet, "p0", "config/app-a")) == 1
        assert len(audit_json(fleet, "p0")) == 2
        passed += 1

        # 4. --dry-run: refusals checked, a diff shown, nothing written
        v2 = write_yaml(fleet, "v2.yaml", """\
            kind: config
            name: app-a
            spec:
              replicas: 3
              labels: {tier: web}
              ratio: 0.5
            """)
        audit_before = audit_json(fleet, "p0")
        r = apply(fleet, "p0", v2, root_key, dry_run=True)
        assert '-   "replicas": 2' in r.stdout and '+   "replicas": 3' in r.stdout, r.stdout
        assert '    "ratio": 0.5' in r.stdout and "nothing was written" in r.stdout, r.stdout
        assert get_json(fleet, "p0", "config/app-a") == a
        assert audit_json(fleet, "p0") == audit_before
        assert len(history_json(fleet, "p0", "config/app-a")) == 1
        refused(apply(fleet, "p0", v2, tenant_key, dry_run=True, check=False), "unknown key")
        passed += 1

        # 5. refusals: unsigned, unknown key, outside a role's scope, YAML errors
        refused(policy(fleet, "p0", ["apply", "-f", v2, "--unsigned"], check=False), "unsigned")
        refused(apply(fleet, "p0", v2, tenant_key, check=False), "unknown key")
        role = write_yaml(fleet, "role.yaml", """\
            kind: role
            name: tenant-a-ops
            spec:
              key: %s
              kinds: [config]
              prefixes: [tenant-a/]
            """ % tenant_pub)
        refused(apply(fleet, "p0", role, tenant_key, check=False), "needs a root key")
        apply(fleet, "p0", role, root_key)
        ta = write_yaml(fleet, "ta.yaml", """\
            kind: config
            name: tenant-a/db
            spec: {size: 10}
            """)
        r = policy(fleet, "p0", ["apply", "-f", ta], env_key=tenant_key)
        assert "applied config/tenant-a/db" in r.stdout, r.stdout
        tb = write_yaml(fleet, "tb.yaml", """\
            kind: config
            name: tenant-b/db
            spec: {size: 10}
            """)
        refused(policy(fleet, "p0", ["apply", "-f", tb], env_key=tenant_key, check=False),
                "tb.yaml:1: refused: config/tenant-b/db", "outside the prefixes")
        tj = write_yaml(fleet, "tj.yaml", """\
            kind: job
            name: tenant-a-job
            spec: {replicas: 1, command: [/bin/true]}
            """)
        refused(policy(fleet, "p0", ["apply", "-f", tj], env_key=tenant_key, check=False),
                "kind 'job' not granted")
        r = policy(fleet, "p0", ["apply", "-f", ta], check=False)
        assert r.returncode == 2 and "CANOPY_OPERATOR_KEY" in r.stderr, r.stderr
        bad = write_yaml(fleet, "bad.yaml", """\
            kind: config
            name: fine
            spec: {}
            ---
            kind: config
            name: x
            spec:
              a: 1
            oops: 2
            """)
        refused(apply(fleet, "p0", bad, root_key, check=False), "bad.yaml:9: oops: unknown key")
        badjob = write_yaml(fleet, "badjob.yaml", """\
            kind: job
            name: j
            spec:
              command: [/bin/true]
              replicas: many
            """)
        refused(apply(fleet, "p0", badjob, root_key, check=False), "badjob.yaml:5: spec.replicas")
        assert "config/fine" not in list_json(fleet, "p0"), "a file with an error applies nothing"
        stats = json.loads(fleet.cli("p0", ["info", "--json"]).stdout)["stats"]
        assert stats["policy_refused_perm"] >= 4, stats
        passed += 1

        # 6. a new version, then rollback to the first (a new write of its body)
        apply(fleet, "p0", v2, root_key)
        assert get_json(fleet, "p0", "config/app-a")["spec"]["replicas"] == 3
        r = policy(fleet, "p0", ["rollback", "config/app-a", "--to", str(a["version"])], key=root_key)
        assert "applied config/app-a" in r.stdout, r.stdout
        now = get_json(fleet, "p0", "config/app-a")
        assert now["spec"] == a["spec"] and now["version"] > a["version"], now
        h = history_json(fleet, "p0", "config/app-a")
        assert [x["spec"]["replicas"] for x in h] == [2, 3, 2], h
        assert [x["version"] for x in h] == sorted(x["version"] for x in h), h
        old = get_json(fleet, "p0", "config/app-a", version=h[1]["version"])
        assert old["spec"]["replicas"] == 3, old
        r = policy(fleet, "p0", ["get", "config/app-a", "--version", "12345"], check=False)
        assert r.returncode == 1 and "no version 12345" in r.stderr, r.stderr
        passed += 1

        # 7. delete: a tombstone
        r = policy(fleet, "p0", ["delete", "config/app-a"], key=root_key)
        assert "deleted config/app-a" in r.stdout, r.stdout
        gone = get_json(fleet, "p0", "config/app-a")
        assert gone["deleted"] is True and gone["spec"] is None, gone
        assert list_json(fleet, "p0")["config/app-a"]["deleted"] is True
        assert "(deleted)" in policy(fleet, "p0", ["list"]).stdout
        r = policy(fleet, "p0", ["rollback", "config/app-a", "--to", str(gone["version"])],
                   key=root_key, check=False)
        assert r.returncode == 1 and "is a deletion" in r.stderr, r.stderr
        passed += 1

        # 8. audit: every accepted write, who/what/where/when; verify passes
        entries = audit_json(fleet, "p0")
        # two.yaml (2), role, tenant-a/db, v2, rollback, delete
        assert len(entries) == 7, entries
        assert [e["seq"] for e in entries] == list(range(1, 8)), entries
        assert all(e["node"] == "p0" for e in entries), entries
        whats = ["%s/%s" % (e["kind"], e["name"]) for e in entries]
        assert whats[:2] == ["config/app-a", "job/web"] and whats[-1] == "config/app-a", whats
        assert entries[-1]["deleted"] is True and entries[3]["key"] != root_id, entries
        assert all(e["key"] == root_id for i, e in enumerate(entries) if i != 3), entries
        r = fleet.cli("p0", ["audit", "--verify"])
        assert "audit verified: 7 entries in 1 chain" in r.stdout, r.stdout
        assert "config/tenant-a/db" in fleet.cli("p0", ["audit"]).stdout
        passed += 1

        # 9. flip one byte of an audit entry on disk: verify fails, says where
        fleet.kill("p0", signal.SIGTERM)
        t = subprocess.run([tamper, fleet.agents["p0"]["dir"], "2"], capture_output=True,
                           text=True, timeout=30)
        assert t.returncode == 0 and "tampered p0 seq 3" in t.stdout, (t.stdout, t.stderr)
        start_policy_agent(fleet, "p0", trust)
        r = fleet.cli("p0", ["audit", "--verify"], check=False)
        assert r.returncode == 1 and "audit verification FAILED" in r.stderr, (r.stdout, r.stderr)
        assert "p0" in r.stderr, r.stderr
        v = json.loads(fleet.cli("p0", ["audit", "--verify", "--json"], check=False).stderr)
        assert v["ok"] is False and v["error"], v
        # the documents themselves are intact and still served
        assert get_json(fleet, "p0", "job/web")["spec"]["replicas"] == 2
        passed += 1

        # 10. the offline rule: a replica last up longer ago than the tombstone
        # ttl (7 days) forgets its documents when it has a seed to refetch from
        aged_trust = os.path.join(fleet.root, "aged-trust")
        for name, seeds in (("aged-alone", ()), ("aged-seeded", ("p0",))):
            t = subprocess.run([aged, os.path.join(fleet.root, name), name, "8", "3"],
                               capture_output=True, text=True, timeout=30)
            assert t.returncode == 0, t.stderr
            write_trust(aged_trust, [t.stdout.strip()])
            start_policy_agent(fleet, name, aged_trust, seeds=seeds)
            held = [k for k in list_json(fleet, name) if k.startswith("config/aged-")]
            stats = json.loads(fleet.cli(name, ["info", "--json"]).stdout)["stats"]
            if seeds:
                assert held == [] and stats["policy_wiped"] == 3, (held, stats)
                assert "forgot 3 document(s)" in fleet.log(name), fleet.log(name)
            else:
                assert len(held) == 3 and stats["policy_wiped"] == 0, (held, stats)
                assert "keeps its 3 document(s)" in fleet.log(name), fleet.log(name)
            fleet.kill(name, signal.SIGTERM)
        passed += 1

        # 11. a revoked node: its datagrams are dropped, so it fails here
        fleet.start("rv", seeds=["p0"])
        fleet.wait_for("rv alive at p0", lambda: (
            (m := fleet.members("p0")).get("rv", {}).get("state") == "alive", m), 30)
        revoke = write_yaml(fleet, "revoke.yaml", """\
            kind: revoke
            name: node/rv
            spec: {reason: lost device}
            """)
        apply(fleet, "p0", revoke, root_key)
        fleet.wait_for("rv failed at p0", lambda: (
            fleet.members("p0")["rv"]["state"] == "failed", fleet.members("p0")["rv"]), 30)
        stats = json.loads(fleet.cli("p0", ["info", "--json"]).stdout)["stats"]
        assert stats["revoked_dropped"] > 0, stats
        assert json.loads(fleet.cli("p0", ["info", "--json"]).stdout)["policy"]["revocations"] == 1
        fleet.kill("rv", signal.SIGTERM)
        passed += 1

        print("policy integration: %d checks passed" % passed)
        fleet.stop_all()
        shutil.rmtree(fleet.root, ignore_errors=True)
        return 0
    except Exception:
        for n in fleet.agents:
            print("---- log of %s ----\n%s" % (n, fleet.log(n)))
        raise
    finally:
        fleet.stop_all()


if __name__ == "__main__":
    sys.exit(main())
