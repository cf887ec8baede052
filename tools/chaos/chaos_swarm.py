"""A swarm of `noloco run` processes behind linkemu, and the faults the chaos harness injects.

Node i really listens on 127.0.1.(i+1):PORT, dials from 127.0.1.(i+1) and is dialed through
linkemu at 127.0.2.(i+1):PORT (docs/linkemu.md), so a partition or a cut link is a topology edit
and a SIGHUP. Every event a node prints (`--json`, docs/events.md) lands in one timeline with the
harness's own fault records, stamped with seconds since the swarm was started. Python stdlib only.
"""
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "linkemu"))
import make_topology  # noqa: E402

ENOSPC_MB = 40  # room for a few tiny-model checkpoints and RocksDB's 16 MiB open floor


def free_port(nodes):
    """A port free on every node's listen and proxy address (the demo's rule)."""
    for _ in range(50):
        s = socket.socket()
        s.bind(("127.0.1.1", 0))
        port = s.getsockname()[1]
        s.close()
        ok = True
        for i in range(nodes):
            for net in ("127.0.1", "127.0.2"):
                t = socket.socket()
                try:
                    t.bind((f"{net}.{i + 1}", port))
                except OSError:
                    ok = False
                finally:
                    t.close()
        if ok:
            return port
    raise RuntimeError("no free port on the swarm's loopback addresses")


class Timeline:
    """Every record of a run, in arrival order, thread-safe."""

    def __init__(self, t0):
        self.t0 = t0
        self.lock = threading.Lock()
        self.records = []
        self.changed = threading.Condition(self.lock)

    def now(self):
        return time.monotonic() - self.t0

    def add(self, rec):
        with self.lock:
            rec["t"] = round(self.now(), 3)
            self.records.append(rec)
            self.changed.notify_all()

    def wait_for(self, pred, timeout):
        """Waits until pred(records) holds (a hang guard, not a measurement)."""
        end = time.monotonic() + timeout
        with self.lock:
            while not pred(self.records):
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 1.0))
            return True

    def snapshot(self):
        with self.lock:
            return list(self.records)


class Node:
    """One node: its folder, its command line, and its current process (None when down)."""

    def __init__(self, swarm, i, db):
        self.swarm, self.i = swarm, i
        self.name = f"node{i}"
        self.bin = swarm.bin  # the attack harness gives hostile nodes another program (docs/attacks.md)
        self.dir = os.path.join(swarm.dir, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.db = db or os.path.join(self.dir, "db")
        self.log = os.path.join(self.dir, "log.txt")
        self.proc = None
        self.launches = 0
        self.reader = None
        self.addr = None
        self.stopped = False  # SIGSTOPped

    def args(self, first):
        s, i = self.swarm, self.i
        a = ["run", "--db", self.db, "--key", os.path.join(self.dir, "key"), "--json", "--threads", "1",
             "--listen", f"/ip4/127.0.1.{i + 1}/tcp/{s.port}", "--dial-from", f"127.0.1.{i + 1}",
             "--announce", f"/ip4/127.0.2.{i + 1}/tcp/{s.port}"] + s.node_flags
        # A first start waits for the whole swarm; a restart for anyone (it resumes from its store).
        a += ["--min-peers", str(s.n - 1 if first else 1)]
        if i == 0:
            a += ["--manifest", s.manifest]
        else:
            a += ["--run-id", s.run_id, "--join", s.addr0]
        return a

    def launch(self):
        first = self.launches == 0
        self.launches += 1
        launch = self.launches
        log = open(self.log, "ab")
        log.write(f"==== launch {launch} at t={self.swarm.timeline.now():.3f}\n".encode())
        log.flush()
        self.proc = subprocess.Popen([self.bin] + self.args(first), stdout=subprocess.PIPE,
                                     stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
                                     env=self.swarm.env)
        log.close()
        self.swarm.timeline.add({"kind": "launch", "node": self.i, "launch": launch, "pid": self.proc.pid})
        self.reader = threading.Thread(target=self._read, args=(self.proc, launch), daemon=True)
        self.reader.start()

    def _read(self, proc, launch):
        first = True
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            if first and not line.startswith("{"):
                self.addr = line
                first = False
                continue
            first = False
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            ev = {"kind": "event", "node": self.i, "launch": launch, **ev}
            self.swarm.timeline.add(ev)
        rc = proc.wait()
        self.swarm.timeline.add({"kind": "exit", "node": self.i, "launch": launch, "rc": rc})

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def kill(self):
        """SIGKILL, and wait until the process is gone (its port is free again)."""
        if self.proc is None:
            return
        if self.stopped:
            self.cont()
        self.signal(signal.SIGKILL)
        self.proc.wait()
        if self.reader:
            self.reader.join(10)
        self.proc = None

    def stop(self):
        self.signal(signal.SIGSTOP)
        self.stopped = True

    def cont(self):
        self.signal(signal.SIGCONT)
        self.stopped = False


class Swarm:
    """linkemu, N nodes, the manifest; and every fault the harness can inject."""

    def __init__(self, dir, bin, linkemu, n, manifest_flags, node_flags, profile="uniform",
                 enospc_node=None, seed=1):
        self.dir, self.bin, self.linkemu_bin, self.n = dir, bin, linkemu, n
        self.manifest_flags, self.node_flags, self.profile, self.seed = manifest_flags, node_flags, profile, seed
        self.env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE", OMP_NUM_THREADS="1")
        self.timeline = Timeline(time.monotonic())
        self.port = free_port(n)
        self.down = set()  # frozensets {i, j}: links cut in both directions
        self.linkemu = None
        self.mount = None
        self.fill_path = None
        self.nodes = []
        for i in range(n):
            db = None
            if i == enospc_node:
                self.mount = os.path.join(dir, "tmpfs")
                os.makedirs(self.mount, exist_ok=True)
                subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={ENOSPC_MB}m", "tmpfs", self.mount], check=True)
                db = os.path.join(self.mount, "db")
            self.nodes.append(Node(self, i, db))

    # --- setup ---------------------------------------------------------------------------------
    def write_topology(self):
        topo = make_topology.build(self.n, self.profile, self.port, self.seed, 0.0)
        links = topo.setdefault("links", {})
        for pair in sorted(tuple(sorted(p)) for p in self.down):
            key = f"n{pair[0]}<->n{pair[1]}"
            links[key] = dict(links.get(key, {}), down=True)
        path = os.path.join(self.dir, "topology.json")
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(topo, f, indent=1)
        os.replace(tmp, path)
        return path

    def start_linkemu(self):
        path = self.write_topology()
        log = open(os.path.join(self.dir, "linkemu.log"), "ab")
        self.linkemu = subprocess.Popen([self.linkemu_bin, "--topology", path], stdout=subprocess.PIPE,
                                        stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        for raw in self.linkemu.stdout:
            if raw.decode().strip() == "linkemu ready":
                threading.Thread(target=lambda: self.linkemu.stdout.read(), daemon=True).start()
                return
        raise RuntimeError("linkemu exited before it was ready (see linkemu.log)")

    def init_run(self):
        self.manifest = os.path.join(self.dir, "manifest.json")
        r = subprocess.run([self.bin, "init-run", "--out", self.manifest] + self.manifest_flags,
                           capture_output=True, text=True, check=True)
        self.run_id = r.stdout.strip().splitlines()[-1]

    def start(self, hang_guard_s=120):
        """linkemu, node0, then the others joining it; returns once every node has started training."""
        self.start_linkemu()
        self.init_run()
        n0 = self.nodes[0]
        n0.launch()
        end = time.monotonic() + hang_guard_s
        while n0.addr is None:
            if time.monotonic() > end or not n0.alive():
                raise RuntimeError("node0 never printed its address (see node0/log.txt)")
            time.sleep(0.1)
        self.addr0 = n0.addr
        for node in self.nodes[1:]:
            node.launch()
        ok = self.timeline.wait_for(lambda recs: len({r["node"] for r in recs if r.get("event") == "start"}) == self.n,
                                    hang_guard_s)
        if not ok:
            raise RuntimeError("not every node started training (see node*/log.txt)")

    # --- faults --------------------------------------------------------------------------------
    def fault(self, what, **fields):
        self.timeline.add({"kind": "fault", "fault": what, **fields})

    def set_links(self, down):
        """Replaces the set of cut links and makes linkemu reload (it resets their connections)."""
        self.down = set(down)
        self.write_topology()
        self.linkemu.send_signal(signal.SIGHUP)

    def partition(self, side_a):
        a = set(side_a)
        return {frozenset((i, j)) for i in a for j in range(self.n) if j not in a}

    def cut(self, i):
        return {frozenset((i, j)) for j in range(self.n) if j != i}

    def fill_disk(self):
        """Fills the tmpfs holding the ENOSPC node's store (writes stop at ENOSPC)."""
        self.fill_path = os.path.join(self.mount, "fill")
        chunk = b"\0" * (1 << 20)
        with open(self.fill_path, "wb") as f:
            try:
                while True:
                    f.write(chunk)
                    f.flush()
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise

    def free_disk(self):
        if self.fill_path and os.path.exists(self.fill_path):
            os.remove(self.fill_path)

    # --- end -----------------------------------------------------------------------------------
    def wait_all_exit(self, timeout):
        end = time.monotonic() + timeout
        for node in self.nodes:
            while node.alive() and time.monotonic() < end:
                time.sleep(0.2)
        return all(not node.alive() for node in self.nodes)

    def terminate(self, grace_s=60):
        """SIGTERM every node (each writes a final checkpoint and `done`), SIGKILL the stragglers."""
        for node in self.nodes:
            if node.stopped:
                node.cont()
            node.signal(signal.SIGTERM)
        if not self.wait_all_exit(grace_s):
            for node in self.nodes:
                if node.alive():
                    node.kill()

    def cleanup(self):
        """Always safe to call: no process, mount or fill file of ours survives it."""
        for node in self.nodes:
            if node.alive():
                node.kill()
            if node.reader:
                node.reader.join(10)
        if self.linkemu and self.linkemu.poll() is None:
            self.linkemu.terminate()
            try:
                self.linkemu.wait(10)
            except subprocess.TimeoutExpired:
                self.linkemu.kill()
                self.linkemu.wait()
        self.free_disk()
        if self.mount and os.path.ismount(self.mount):
            subprocess.run(["umount", self.mount], check=False)

    # --- after the run -------------------------------------------------------------------------
    def verify_store(self, i, copy_dir=None):
        """`noloco status` and `noloco export` (which loads the checkpoint and checks every blob)."""
        node = self.nodes[i]
        st = subprocess.run([self.bin, "status", "--db", node.db, "--json"], capture_output=True, text=True)
        out = {"status_rc": st.returncode, "status_err": st.stderr.strip()[-300:]}
        if st.returncode == 0:
            try:
                out["status"] = json.loads(st.stdout)
            except json.JSONDecodeError:
                out["status_rc"] = -1
        ex = subprocess.run([self.bin, "export", "--db", node.db, "--out", os.path.join(node.dir, "export.safetensors")],
                            capture_output=True, text=True)
        out["export_rc"] = ex.returncode
        out["export_err"] = ex.stderr.strip()[-300:]
        return out
