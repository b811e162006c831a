#!/usr/bin/env python3
"""Run canopy-sim and check its summary.json (meson test suite 'sim').

usage: sim_check.py EXE SCENARIO [sim flags...] [--check PATH OP VALUE]...
                    [--determinism] [--expect-exit N] [--stderr-has TEXT]

--check       dotted path into summary.json, OP one of == != <= < >= >;
              VALUE is JSON, or @PATH for another field of the summary
--determinism run twice; the digest and every summary field except the
              wall-clock ones must be equal.
--lifeguard-better  also run with --lifeguard off; Lifeguard on must make
              strictly fewer false-positive declarations than off.
--expect-exit expected exit status (default 0); with --stderr-has, the text
              that stderr must contain (parse errors name file:line:field).
Any failure prints the command line, so the seed is there to replay.
"""
import json
import operator
import subprocess
import sys
import tempfile

WALL = {"wall_seconds", "virtual_to_wall", "events_per_s", "max_rss_kb"}
OPS = {"==": operator.eq, "!=": operator.ne, "<=": operator.le, "<": operator.lt,
       ">=": operator.ge, ">": operator.gt}


def run(exe, args, out):
    cmd = [exe] + args + ["--out", out, "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    return cmd, p


def lookup(d, path):
    for part in path.split("."):
        d = d[int(part)] if isinstance(d, list) else d[part]
    return d


def main(argv):
    exe, args = argv[1], []
    checks, determinism, want_exit, stderr_has = [], False, 0, None
    lifeguard_better = False
    i = 2
    while i < len(argv):
        a = argv[i]
        if a == "--check":
            checks.append((argv[i + 1], argv[i + 2], argv[i + 3]))
            i += 4
        elif a == "--determinism":
            determinism = True
            i += 1
        elif a == "--lifeguard-better":
            lifeguard_better = True
            i += 1
        elif a == "--expect-exit":
            want_exit = int(argv[i + 1])
            i += 2
        elif a == "--stderr-has":
            stderr_has = argv[i + 1]
            i += 2
        else:
            args.append(a)
            i += 1
    with tempfile.TemporaryDirectory() as tmp:
        cmd, p = run(exe, args, tmp + "/a")
        if p.returncode != want_exit:
            print("FAIL: exit %d, wanted %d: %s\n%s" % (p.returncode, want_exit, " ".join(cmd),
                                                       p.stderr))
            return 1
        if stderr_has is not None:
            if stderr_has not in p.stderr:
                print("FAIL: stderr lacks %r: %s\n%s" % (stderr_has, " ".join(cmd), p.stderr))
                return 1
            return 0
        with open(tmp + "/a/summary.json") as f:
            s = json.load(f)
        bad = 0
        for path, op, val in checks:
            got = lookup(s, path)
            want = lookup(s, val[1:]) if val.startswith("@") else json.loads(val)
            if not OPS[op](got, want):
                print("FAIL: %s = %r, wanted %s %r (%s)" % (path, got, op, want, " ".join(cmd)))
                bad += 1
        if determinism:
            cmd2, p2 = run(exe, args, tmp + "/b")
            with open(tmp + "/b/summary.json") as f:
                s2 = json.load(f)
            a = {k: v for k, v in s.items() if k not in WALL}
            b = {k: v for k, v in s2.items() if k not in WALL}
            if a != b or p2.returncode != p.returncode:
                diff = [k for k in set(a) | set(b) if a.get(k) != b.get(k)]
                print("FAIL: two runs differ in %s (%s)" % (diff, " ".join(cmd)))
                bad += 1
            for name in ("members.csv", "events.csv", "bytes.csv"):
                with open(tmp + "/a/" + name) as fa, open(tmp + "/b/" + name) as fb:
                    if fa.read() != fb.read():
                        print("FAIL: %s differs between runs (%s)" % (name, " ".join(cmd)))
                        bad += 1
        if lifeguard_better:
            cmd3, p3 = run(exe, args + ["--lifeguard", "off"], tmp + "/off")
            with open(tmp + "/off/summary.json") as f:
                off = json.load(f)
            on_n, off_n = s["false_positive_declarations"], off["false_positive_declarations"]
            print("false-positive declarations: lifeguard on %d, off %d" % (on_n, off_n))
            if not (s["lifeguard"] and not off["lifeguard"] and on_n < off_n):
                print("FAIL: Lifeguard did not reduce false positives (%s)" % " ".join(cmd3))
                bad += 1
        print("digest %s, %s" % (s["digest"], " ".join(cmd)))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
