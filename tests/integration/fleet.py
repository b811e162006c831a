"""Start and stop real canopy agents on loopback for integration tests.

Every process started here is remembered by PID and stopped by PID; every
wait is bounded in time. Ports are chosen free on 127.0.0.1 (UDP and TCP).
"""
import json
import os
import signal
import socket
import subprocess
import tempfile
import time

# Fast timers so a test finishes in seconds, not minutes.
FAST = [
    "probe_interval_ms=200", "probe_timeout_ms=100", "gossip_interval_ms=50",
    "pushpull_interval_ms=2000", "suspicion_mult=2", "reconnect_interval_ms=1000",
    "join_retry_max_ms=1000",
]


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1."""
    for _ in range(100):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind(("127.0.0.1", 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port found")


class Fleet:
    def __init__(self, canopy, root=None):
        self.canopy = canopy
        self.root = root or tempfile.mkdtemp(prefix="canopy-test-")
        os.chmod(self.root, 0o755)
        self.keyring = os.path.join(self.root, "keyring")
        key = self.cli_raw(["keygen"]).stdout.strip()
        with open(self.keyring, "w") as f:
            f.write(key + "\n")
        os.chmod(self.keyring, 0o600)
        self.key = key
        self.agents = {}  # name -> dict(proc, port, dir, log)

    def cli_raw(self, args, data_dir=None, user=None, timeout=30):
        cmd = [self.canopy] + args
        if data_dir:
            cmd += ["--data-dir", data_dir]
        if user is not None:
            cmd = ["setpriv", "--reuid=%d" % user, "--regid=%d" % user, "--clear-groups"] + cmd
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def start(self, name, seeds=(), port=None, extra=(), keyring=None, predir_mode=None):
        port = port or (self.agents[name]["port"] if name in self.agents else free_port())
        d = os.path.join(self.root, name)
        if predir_mode is not None:
            os.makedirs(d, exist_ok=True)
            os.chmod(d, predir_mode)
        ring = keyring or os.path.join(self.root, name + ".keyring")
        if not os.path.exists(ring):
            with open(self.keyring) as src, open(ring, "w") as dst:
                dst.write(src.read())
            os.chmod(ring, 0o600)
        args = [self.canopy, "agent", "--name", name, "--bind", "127.0.0.1:%d" % port,
                "--data-dir", d, "--keyring", ring, "--label", "site=test"]
        for s in seeds:
            args += ["--seed", "127.0.0.1:%d" % self.agents[s]["port"]]
        for t in FAST:
            args += ["--set", t]
        args += list(extra)
        log = open(os.path.join(self.root, name + ".log"), "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.agents[name] = {"proc": proc, "port": port, "dir": d, "log": log, "keyring": ring}
        # Bounded wait for the admin socket.
        deadline = time.time() + 10
        while time.time() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("agent %s exited with %s; log:\n%s" % (name, proc.returncode, self.log(name)))
            if os.path.exists(os.path.join(d, "admin.sock")) and self.cli_raw(["info"], d).returncode == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("agent %s did not come up; log:\n%s" % (name, self.log(name)))

    def log(self, name):
        with open(os.path.join(self.root, name + ".log"), "rb") as f:
            return f.read().decode(errors="replace")[-4000:]

    def cli(self, name, args, check=True):
        r = self.cli_raw(args, self.agents[name]["dir"])
        if check and r.returncode != 0:
            raise AssertionError("canopy %s on %s failed (%d): %s" % (args, name, r.returncode, r.stderr))
        return r

    def members(self, name):
        return {m["name"]: m for m in json.loads(self.cli(name, ["members", "--json"]).stdout)}

    def running(self):
        return [n for n, a in self.agents.items() if a["proc"].poll() is None]

    def kill(self, name, sig=signal.SIGKILL):
        a = self.agents[name]
        os.kill(a["proc"].pid, sig)
        a["proc"].wait(timeout=10)

    def wait_for(self, what, pred, timeout=30.0):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            try:
                ok, last = pred()
                if ok:
                    return last
            except (AssertionError, json.JSONDecodeError) as e:
                last = str(e)
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s; last: %s" % (what, last))

    def stop_all(self):
        for name, a in self.agents.items():
            p = a["proc"]
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for name, a in self.agents.items():
            p = a["proc"]
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
            a["log"].close()
