"""End-to-end recording benchmark, run by scripts/bench-e2e inside a
private network namespace: rclpy publishers -> DDS -> motedb_node -> store.

For 256-byte and 1 MiB messages, publishes at increasing target rates
(2 s per step, a fresh topic per step) and records, per step, the achieved
publish rate, what was stored, lost (dropped + gaps + never arrived), and
the node's CPU time per stored message. Stops escalating at the first loss.
Prints a JSON summary on the last line.
"""

import argparse
import json
import os
import signal
import subprocess
import time

import rclpy
from motedb_interfaces.srv import ListTopics
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import UInt8MultiArray

TICK = os.sysconf('SC_CLK_TCK')


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Bench:
    def __init__(self, node, pid):
        self.node = node
        self.pid = pid
        self.client = node.create_client(ListTopics, '/motedb/list_topics')
        assert self.client.wait_for_service(timeout_sec=30)

    def topics(self):
        future = self.client.call_async(ListTopics.Request())
        rclpy.spin_until_future_complete(self.node, future, timeout_sec=10)
        assert future.done(), 'list_topics did not answer'
        return {t.name: t for t in future.result().topics}

    def settle(self, topic, published, timeout_s=60.0):
        """Waits until everything published is accounted for, or nothing
        changed for 3 s."""
        last, changed = None, time.monotonic()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            t = self.topics().get(topic)
            state = (t.message_count, t.dropped_count, t.gap_count) if t else None
            if t and t.message_count + t.dropped_count >= published:
                return t
            if state != last:
                last, changed = state, time.monotonic()
            elif time.monotonic() - changed > 3.0:
                return t
            rclpy.spin_once(self.node, timeout_sec=0.1)
        return self.topics().get(topic)

    def step(self, size, rate, seconds):
        topic = f'/bench/s{size}_r{rate}'
        pub = self.node.create_publisher(UInt8MultiArray, topic, QoSProfile(
            depth=1000, reliability=QoSReliabilityPolicy.RELIABLE))
        deadline = time.monotonic() + 30
        while pub.get_subscription_count() == 0:
            assert time.monotonic() < deadline, 'recorder never subscribed'
            rclpy.spin_once(self.node, timeout_sec=0.05)
        msg = UInt8MultiArray(data=bytes(size))
        total = int(rate * seconds)
        cpu0 = cpu_seconds(self.pid)
        start = time.perf_counter()
        for i in range(total):
            target = start + i / rate
            now = time.perf_counter()
            if target > now:
                time.sleep(target - now)
            pub.publish(msg)
        elapsed = time.perf_counter() - start
        info = self.settle(topic, total)
        cpu = cpu_seconds(self.pid) - cpu0
        self.node.destroy_publisher(pub)
        stored = info.message_count if info else 0
        row = {
            'size': size, 'target_rate': rate, 'published': total,
            'achieved_rate': total / elapsed, 'stored': stored,
            'dropped': info.dropped_count if info else 0,
            'gaps': info.gap_count if info else 0,
            'lost': total - stored,
            'node_cpu_us_per_msg': 1e6 * cpu / stored if stored else None,
            'mb_per_s': total * size / elapsed / 1e6,
        }
        print(json.dumps(row), flush=True)
        return row


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--store', required=True)
    parser.add_argument('--log', required=True)
    parser.add_argument('--seconds', type=float, default=2.0)
    parser.add_argument('--node', default='motedb_node',
                        help='node executable (motedb_node: rclrs; motedb_node_r2r: r2r)')
    args = parser.parse_args()
    log = open(args.log, 'wb')
    proc = subprocess.Popen(
        [args.node, '--ros-args', '-p', f'storage.path:={args.store}',
         '-p', 'discovery_period_s:=0.1', '-p', 'include_regex:=^/bench/'],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    rclpy.init()
    node = Node('bench_e2e')
    results = {}
    try:
        bench = Bench(node, proc.pid)
        for size, rates in ((256, [1000, 2000, 5000, 10000, 20000, 40000]),
                            (1 << 20, [10, 25, 50, 100, 200])):
            rows = []
            for rate in rates:
                row = bench.step(size, rate, args.seconds)
                rows.append(row)
                if row['lost'] > 0 or row['achieved_rate'] < 0.9 * rate:
                    break
            results[size] = rows
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=120)
        node.destroy_node()
        rclpy.shutdown()
    summary = {}
    for size, rows in results.items():
        clean = [r for r in rows if r['lost'] == 0]
        best = max(clean, key=lambda r: r['achieved_rate']) if clean else None
        summary[str(size)] = {
            'best_zero_loss_msg_per_s': best and round(best['achieved_rate']),
            'best_zero_loss_mb_per_s': best and round(best['mb_per_s'], 1),
            'node_cpu_us_per_msg': best and round(best['node_cpu_us_per_msg'], 1),
            'limited_by': ('loss' if rows and rows[-1]['lost'] > 0 else
                           'publisher (python could not reach the next target rate)'
                           if rows and rows[-1]['achieved_rate'] < 0.9 * rows[-1]['target_rate']
                           else 'highest step tried'),
        }
    summary['node_exit_code'] = rc
    print('SUMMARY ' + json.dumps(summary))


if __name__ == '__main__':
    main()
