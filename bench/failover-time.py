#!/usr/bin/env python3
"""Failover time, side by side: SIGKILL a primary of a 3 x 1 cluster, time until its replica
is a primary and until every survivor answers cluster_state:ok.

    bench/failover-time.py --reps 5 corekey=target/release/corekey redis=/usr/bin/redis-server

Each NAME=PATH is a server binary (corekey, redis-server or valkey-server; the kind is told
by the file name). The servers take turns, one repetition each, on loopback ports from 12000 (bus ports 22000 and up, below the ephemeral range),
with `cluster-node-timeout` 2000 (or --node-timeout), one core per corekey node. The cluster
is made by `redis-cli --cluster create --cluster-replicas 1`. Prints every repetition and the
median per server. Needs python3 and redis-cli only.
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def call(port, *args, timeout=2.0):
    """One command over RESP; returns the raw reply text (enough for INFO-style checks)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode()
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        s.sendall(out)
        buf = b""
        # Bounded: a reply fits in a few reads; the socket timeout ends a stuck read.
        for _ in range(1000):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            if buf.startswith(b"$"):
                head, _, rest = buf.partition(b"\r\n")
                if len(rest) >= int(head[1:]) + 2:
                    break
            elif buf.endswith(b"\r\n"):
                break
        return buf.decode(errors="replace")
    finally:
        s.close()


def wait_for(what, deadline_s, check):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"timed out waiting for {what}")


def start(kind, binary, port, workdir, node_timeout):
    log = open(os.path.join(workdir, f"{port}.log"), "w")
    if kind == "corekey":
        args = [binary, "--port", str(port), "--cores", "1", "--dir", workdir,
                "--cluster-enabled", "yes", "--cluster-node-timeout", str(node_timeout),
                "--cluster-config-file", f"nodes-{port}.conf"]
    else:
        args = [binary, "--port", str(port), "--dir", workdir, "--cluster-enabled", "yes",
                "--cluster-node-timeout", str(node_timeout),
                "--cluster-config-file", f"nodes-{port}.conf", "--save", "",
                "--appendonly", "no"]
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)


def one_run(kind, binary, base_port, node_timeout):
    workdir = tempfile.mkdtemp(prefix=f"failover-{kind}-")
    ports = [base_port + i for i in range(6)]
    procs = {}
    try:
        for p in ports:
            procs[p] = start(kind, binary, p, workdir, node_timeout)
        for p in ports:
            wait_for(f"port {p}", 10, lambda p=p: call(p, "PING").startswith("+PONG"))
        subprocess.run(["redis-cli", "--cluster", "create"]
                       + [f"127.0.0.1:{p}" for p in ports]
                       + ["--cluster-replicas", "1", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for("cluster_state:ok", 30,
                 lambda: all("cluster_state:ok" in call(p, "CLUSTER", "INFO") for p in ports))
        # The primary of slot 0 and its replica (once gossip has told node 0 about both).
        found = []

        def pair():
            nodes = call(ports[0], "CLUSTER", "NODES")
            lines = [l.split() for l in nodes.splitlines()
                     if len(l.split()) >= 8 and not l.startswith("$")]
            primary = next((l for l in lines if "master" in l[2] and any(
                s.split("-")[0] == "0" for s in l[8:])), None)
            replica = primary and next((l for l in lines if l[3] == primary[0]), None)
            if replica:
                found[:] = [primary, replica]
            return bool(replica)

        wait_for("the replica of slot 0's primary", 30, pair)
        primary, replica = found
        port_of = lambda l: int(l[1].split("@")[0].split(":")[1])
        pp, rp = port_of(primary), port_of(replica)
        wait_for("the replica's link", 30,
                 lambda: "master_link_status:up" in call(rp, "INFO", "replication"))
        time.sleep(1.0)  # let gossip settle into its steady rhythm
        killed = time.monotonic()
        procs[pp].send_signal(signal.SIGKILL)
        procs[pp].wait()
        wait_for("promotion", 60, lambda: "role:master" in call(rp, "INFO", "replication"))
        promoted = time.monotonic() - killed
        survivors = [p for p in ports if p != pp]
        wait_for("cluster_state:ok", 60, lambda: all(
            "cluster_state:ok" in call(p, "CLUSTER", "INFO") for p in survivors))
        ok = time.monotonic() - killed
        return promoted, ok
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--node-timeout", type=int, default=2000)
    ap.add_argument("servers", nargs="+", help="NAME=PATH")
    a = ap.parse_args()
    if not shutil.which("redis-cli"):
        raise SystemExit("redis-cli is needed (apt-get install -y redis-tools)")
    servers = []
    for s in a.servers:
        name, _, path = s.partition("=")
        base = os.path.basename(path)
        kind = "corekey" if "corekey" in base else "redis"
        servers.append((name, kind, path))
    results = {name: [] for name, _, _ in servers}
    for rep in range(a.reps):
        for i, (name, kind, path) in enumerate(servers):
            promoted, ok = one_run(kind, path, 12000 + 10 * i, a.node_timeout)
            results[name].append((promoted, ok))
            print(f"{name} rep {rep}: promoted {promoted:.3f} s, cluster ok everywhere "
                  f"{ok:.3f} s", flush=True)
    for name, r in results.items():
        print(f"{name}: median promoted {statistics.median(x for x, _ in r):.3f} s, "
              f"median cluster ok {statistics.median(y for _, y in r):.3f} s, "
              f"max cluster ok {max(y for _, y in r):.3f} s over {len(r)} runs")


if __name__ == "__main__":
    sys.exit(main())
