"""End-to-end recording benchmark, run by scripts/bench-e2e inside a
private network namespace: native publishers (bench_pub, pre-serialized
CDR through rcl) -> DDS -> motedb_node -> store.

Every configuration runs against three node modes in the same run:
  null   the rclrs node with MOTEDB_BENCH_NULL_RECORDER=1: it takes every
         message exactly as recording does and discards it, so its highest
         loss-free rate is the floor the middleware sets on this machine;
  rclrs  the default build, recording;
  r2r    the r2r build, recording.
256B_x16_4_processes spreads the same 16 topics over four bench_pub
processes (4 topics each). For each, the per-topic rate doubles (2 s per step, fresh topics per step)
until a message is lost or the publisher cannot keep up. The recording
modes then run 4 s at half their loss-free rate on a fresh node with the
latency probe (MOTEDB_BENCH_LATENCY): publish (source timestamp) to
durable (WAL fsynced past the record) p50/p99. A step is
loss-free when every published message was taken (null) or stored
(recording). Node CPU per message comes from /proc. The disk anchor is the
rate at which this script writes and fsyncs 4 MiB blocks into the store's
directory. Prints one JSON line per step and a SUMMARY line.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import time

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from motedb_interfaces.srv import ListTopics
from rclpy.node import Node

TICK = os.sysconf('SC_CLK_TCK')

CONFIGS = {
    # name: (bytes, topics, first per-topic rate, best_effort, publisher processes)
    '256B_x16': (256, 16, 250, False, 1),
    '256B_x16_4_processes': (256, 16, 250, False, 4),
    '256B_x16_best_effort': (256, 16, 250, True, 1),
    '64KiB': (64 << 10, 1, 100, False, 1),
    '1MiB': (1 << 20, 1, 25, False, 1),
    '4MiB': (4 << 20, 1, 10, False, 1),
}
STEPS = 8


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def disk_anchor(directory, total=1 << 30, block=4 << 20, sync_every=32 << 20):
    """MB/s of writing `total` bytes in `block` writes with an fdatasync
    every `sync_every` bytes (as the engine's group commit keeps the device
    busy; one fsync at the end leaves it idle while the page cache fills),
    best of two runs."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, 'disk-anchor.bin')
    data = os.urandom(block)
    best = 0.0
    for _ in range(2):
        start = time.perf_counter()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            for i in range(total // block):
                os.write(fd, data)
                if (i + 1) * block % sync_every == 0:
                    os.fdatasync(fd)
            os.fdatasync(fd)
        finally:
            os.close(fd)
        best = max(best, total / (time.perf_counter() - start) / 1e6)
        os.unlink(path)
    return best


class NodeUnderTest:
    def __init__(self, peer, binary, store, log, null, latency_file=None):
        env = dict(os.environ)
        if null:
            env['MOTEDB_BENCH_NULL_RECORDER'] = '1'
        if latency_file:
            env['MOTEDB_BENCH_LATENCY'] = latency_file
        self.log = open(log, 'wb')
        self.proc = subprocess.Popen(
            [binary, '--ros-args', '-p', f'storage.path:={store}',
             '-p', 'discovery_period_s:=0.1', '-p', 'include_regex:=^/bench/',
             '-p', 'subscription_depth:=1000', '-p', 'diagnostic_updater.period:=0.2'],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        self.peer = peer
        self.received = None
        self.sub = peer.create_subscription(DiagnosticArray, '/diagnostics', self._diag, 100)
        self.client = peer.create_client(ListTopics, '/motedb/list_topics')
        assert self.client.wait_for_service(timeout_sec=30), 'node did not come up'

    def _diag(self, msg):
        for s in msg.status:
            if s.name.endswith(': recorder'):
                values = {kv.key: kv.value for kv in s.values}
                if 'messages_received' in values:
                    self.received = int(values['messages_received'])

    def stored(self, prefix):
        future = self.client.call_async(ListTopics.Request())
        rclpy.spin_until_future_complete(self.peer, future, timeout_sec=10)
        assert future.done(), 'list_topics did not answer'
        return sum(t.message_count for t in future.result().topics
                   if t.name.startswith(prefix))

    def taken(self):
        """The node's messages_received, once diagnostics report it."""
        deadline = time.monotonic() + 10
        while self.received is None and time.monotonic() < deadline:
            rclpy.spin_once(self.peer, timeout_sec=0.05)
        return self.received or 0

    def stop(self):
        self.peer.destroy_subscription(self.sub)
        self.peer.destroy_client(self.client)
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=120)
        self.log.close()
        return rc


def settle(count, target, quiet_s=2.0, timeout_s=60.0):
    """Polls count() until it reaches target or stops changing."""
    last, changed = None, time.monotonic()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        n = count()
        if n >= target:
            return n
        if n != last:
            last, changed = n, time.monotonic()
        elif time.monotonic() - changed > quiet_s:
            return n
    return last


def step(peer, node, bench_pub, null, config, rate, seconds, index):
    size, topics, _, best_effort, procs = CONFIGS[config]
    prefix = f'/bench/c{config}/s{index}/'
    names = [f'{prefix}t{i}' for i in range(topics)]
    count = max(1, int(rate * seconds))
    # A fresh diagnostics report (period 0.2 s) before taking the base.
    node.taken()
    until = time.monotonic() + 0.5
    while time.monotonic() < until:
        rclpy.spin_once(peer, timeout_sec=0.05)
    base_taken = node.received or 0
    argvs = []
    # Several processes start publishing at one agreed time (each matches
    # first); the span below then measures load that really overlapped.
    start_at = time.time() + 5.0 if procs > 1 else None
    for p in range(procs):
        argv = [bench_pub, '--size', str(size), '--count', str(count), '--rate', str(rate)]
        if start_at is not None:
            argv += ['--start-at', f'{start_at:.6f}']
        for n in names[p::procs]:
            argv += ['--topic', n]
        if best_effort:
            argv.append('--best-effort')
        argvs.append(argv)
    cpu0 = cpu_seconds(node.proc.pid)
    reports = []
    logdir = os.path.dirname(node.log.name)
    errs = [open(os.path.join(logdir, f'bench_pub{p}.err'), 'w+b') for p in range(procs)]
    pubs = []
    try:
        for a, e in zip(argvs, errs):
            pubs.append(subprocess.Popen(a, stdout=subprocess.PIPE, stderr=e))
        while any(p.poll() is None for p in pubs):
            rclpy.spin_once(peer, timeout_sec=0.05)
        for p, e in zip(pubs, errs):
            out = p.stdout.read()
            e.seek(0)
            assert p.returncode == 0, e.read().decode()
            reports.append(json.loads(out.decode().strip().splitlines()[-1]))
    finally:
        for p in pubs:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
        for e in errs:
            e.close()
    # Processes run side by side: the step spans the first process's first
    # publish to the last one's last publish.
    report = {'published': sum(r['published'] for r in reports),
              'seconds': max(r['ended_unix'] for r in reports) -
              min(r['started_unix'] for r in reports),
              'start_skew_s': max(r['started_unix'] for r in reports) -
              min(r['started_unix'] for r in reports)}
    published = report['published']

    def taken():
        rclpy.spin_once(peer, timeout_sec=0.1)
        return (node.received or 0) - base_taken
    got = settle(taken, published)
    if not null:
        got = settle(lambda: node.stored(prefix), published)
    cpu = cpu_seconds(node.proc.pid) - cpu0
    achieved = published / report['seconds'] if report['seconds'] > 0 else 0
    row = {
        'config': config, 'per_topic_rate': rate, 'published': published,
        'achieved_msg_per_s': round(achieved), 'accounted': got, 'lost': published - got,
        'mb_per_s': round(achieved * size / 1e6, 1),
        'node_cpu_us_per_msg': round(1e6 * cpu / got, 2) if got else None,
        'start_skew_s': round(report['start_skew_s'], 3),
    }
    print(json.dumps(row), flush=True)
    return row


def search(peer, args, node, null, config):
    """Doubles the per-topic rate until a loss or a publisher that falls
    behind; a lossy step is tried once more; then 3/4 of the lossy rate."""
    _, topics, first, _, _ = CONFIGS[config]
    rows, rate, index = [], first, 0

    def attempt(r):
        # One noisy step on two shared cores must not end the search.
        nonlocal index
        for _ in range(2):
            row = step(peer, node, args.bench_pub, null, config, r, args.seconds, index)
            index += 1
            rows.append(row)
            if row['lost'] == 0:
                break
        return row
    stopped_by = 'last step'
    for _ in range(STEPS):
        row = attempt(rate)
        reasons = []
        if row['lost'] > 0:
            reasons.append('loss')
        if row['achieved_msg_per_s'] < 0.9 * rate * topics:
            reasons.append('publisher below 0.9x target')
        if reasons:
            stopped_by = ' and '.join(reasons)
            break
        rate *= 2
    if rows[-1]['lost'] > 0 and rate > first:
        attempt(rate * 3 / 4)  # between the last clean step and the lossy one
    clean = [r for r in rows if r['lost'] == 0]
    best = max(clean, key=lambda r: r['achieved_msg_per_s']) if clean else None
    return {
        'loss_free_msg_per_s': best and best['achieved_msg_per_s'],
        'loss_free_per_topic_rate': best and best['per_topic_rate'],
        'loss_free_mb_per_s': best and best['mb_per_s'],
        'node_cpu_us_per_msg': best and best['node_cpu_us_per_msg'],
        'stopped_by': stopped_by,
    }


def run_mode(peer, args, mode, binary, null):
    """A fresh node and store per configuration, so no configuration pays
    for the subscriptions left by the ones before it."""
    results = {'exit_codes': []}
    for config in args.configs:
        store = os.path.join(args.out, f'store-{mode}')
        shutil.rmtree(store, ignore_errors=True)
        node = NodeUnderTest(peer, binary, store,
                             os.path.join(args.out, f'{mode}-{config}.log'), null)
        try:
            results[config] = search(peer, args, node, null, config)
        finally:
            results['exit_codes'].append(node.stop())
            shutil.rmtree(store, ignore_errors=True)
        if not null:
            results[config]['latency'] = latency(peer, args, mode, binary, config,
                                                 results[config])
    return results


def latency(peer, args, mode, binary, config, found):
    """Publish-to-durable latency at half the loss-free rate (the first
    rate if none was loss-free), on a fresh node with the latency probe
    (MOTEDB_BENCH_LATENCY): default durability, a WAL fsync every 100 ms."""
    rate = (found.get('loss_free_per_topic_rate') or CONFIGS[config][2] * 2) / 2
    store = os.path.join(args.out, f'store-{mode}-latency')
    shutil.rmtree(store, ignore_errors=True)
    out = os.path.join(args.out, f'latency-{mode}-{config}.json')
    if os.path.exists(out):
        os.unlink(out)
    node = NodeUnderTest(peer, binary, store, os.path.join(args.out, f'{mode}-{config}-latency.log'),
                         False, latency_file=out)
    try:
        row = step(peer, node, args.bench_pub, False, config, rate, args.seconds * 2, 0)
    finally:
        rc = node.stop()
        shutil.rmtree(store, ignore_errors=True)
    with open(out) as f:
        result = json.load(f)
    result.update({'per_topic_rate': rate, 'lost': row['lost'], 'exit_code': rc})
    print(json.dumps({'latency': mode, 'config': config, **result}), flush=True)
    return result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--out', required=True)
    parser.add_argument('--bench-pub', required=True)
    parser.add_argument('--rclrs', required=True, help='motedb_node built with rclrs')
    parser.add_argument('--r2r', required=True, help='motedb_node built with r2r')
    parser.add_argument('--seconds', type=float, default=2.0)
    parser.add_argument('--configs', nargs='*', default=list(CONFIGS))
    parser.add_argument('--modes', nargs='*', default=['null', 'rclrs', 'r2r'])
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rclpy.init()
    peer = Node('bench_e2e')
    summary = {'disk_anchor_mb_per_s': round(disk_anchor(args.out), 1)}
    print(json.dumps(summary), flush=True)
    binaries = {'null': (args.rclrs, True), 'rclrs': (args.rclrs, False), 'r2r': (args.r2r, False)}
    try:
        for mode in args.modes:
            binary, null = binaries[mode]
            summary[mode] = run_mode(peer, args, mode, binary, null)
            print(json.dumps({mode: summary[mode]}), flush=True)
    finally:
        peer.destroy_node()
        rclpy.shutdown()
    for mode in ('rclrs', 'r2r'):
        if mode in summary and 'null' in summary:
            for config, r in summary[mode].items():
                floor = summary['null'].get(config)
                if isinstance(r, dict) and isinstance(floor, dict) and \
                        r['loss_free_msg_per_s'] and floor['loss_free_msg_per_s']:
                    r['ratio_to_null'] = round(
                        r['loss_free_msg_per_s'] / floor['loss_free_msg_per_s'], 3)
                if isinstance(r, dict) and r.get('loss_free_mb_per_s'):
                    r['ratio_to_disk'] = round(
                        r['loss_free_mb_per_s'] / summary['disk_anchor_mb_per_s'], 3)
    print('SUMMARY ' + json.dumps(summary))


if __name__ == '__main__':
    main()
