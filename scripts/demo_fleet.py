"""The motedb fleet demo, run by scripts/demo-fleet inside a private network
namespace where Garage serves S3 on 127.0.0.1.

Two simulated robots, each its own ROS graph as on two machines (robot1 on
ROS_DOMAIN_ID, robot2 on ROS_DOMAIN_ID + 1), publish /odom (Odometry 50 Hz),
/scan (LaserScan 10 Hz) and /camera/image_raw (Image 320x240 rgb8, 225 KiB,
5 Hz). One motedb_node per robot records them and offloads its store to
<fleet>/robotN every 2 s. After --seconds of publishing, waits until each
remote copy holds every published message (motedb --json info s3://...),
prints published, stored and remote counts and each node's offload
diagnostics, and stops the nodes with SIGINT so the stores stay on disk.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from motedb_interfaces.srv import ListTopics
from nav_msgs.msg import Odometry
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image, LaserScan

LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}
OFFLOAD_KEYS = ['url', 'state', 'rounds', 'failures_in_a_row', 'generation',
                'remote_bytes', 'backlog_bytes', 'uploaded_bytes']


def make_messages():
    """One reusable message per topic (only the stamp and pose change)."""
    odom = Odometry(child_frame_id='base_link')
    odom.header.frame_id = 'odom'
    scan = LaserScan(angle_min=-3.14, angle_max=3.14, angle_increment=0.00872,
                     range_min=0.1, range_max=30.0, ranges=[5.0] * 720)
    scan.header.frame_id = 'laser'
    # Noise, not zeros: a camera frame does not compress to nothing, so the
    # offload has megabytes to move.
    image = Image(height=240, width=320, encoding='rgb8', step=320 * 3,
                  data=os.urandom(320 * 240 * 3))
    image.header.frame_id = 'camera'
    return {
        '/odom': (Odometry, odom, 50.0),
        '/scan': (LaserScan, scan, 10.0),
        '/camera/image_raw': (Image, image, 5.0),
    }


class Robot:
    """One robot: its ROS graph (a context on its own domain id), its
    motedb_node and the publishers of its simulated sensors."""

    def __init__(self, name, domain, args, heading):
        self.name = name
        self.domain = domain
        self.url = f'{args.fleet}/{name}'
        self.store = os.path.join(args.dir, name)
        self.log_path = os.path.join(args.dir, f'{name}.log')
        self.heading = heading  # unit vector the robot drives along at 0.5 m/s
        self.context = Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = Node(f'{name}_sim', context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.diagnostics = []
        self.node.create_subscription(DiagnosticArray, '/diagnostics',
                                      self.diagnostics.append, 10)
        self.topics = make_messages()
        qos = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
        self.pubs = {t: self.node.create_publisher(cls, t, qos)
                     for t, (cls, _, _) in self.topics.items()}
        self.sent = {t: 0 for t in self.topics}
        self.stop = threading.Event()
        self.list_topics = self.node.create_client(ListTopics, '/motedb/list_topics')
        # Last: nothing after it can fail and leave the node running.
        log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(
            ['motedb_node', '--ros-args',
             '-p', f'storage.path:={self.store}', '-p', f'hardware_id:={name}',
             '-p', f'offload.url:={self.url}',
             '-p', f'offload.credentials_file:={args.credentials}',
             '-p', 'offload.period_s:=2.0'],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(os.environ, ROS_DOMAIN_ID=str(domain)))
        log.close()

    def subscribed(self):
        return all(p.get_subscription_count() > 0 for p in self.pubs.values())

    def _run(self, topic):
        _, msg, hz = self.topics[topic]
        period = 1.0 / hz
        next_t = time.monotonic()
        while not self.stop.is_set():
            now_ns = time.time_ns()
            msg.header.stamp = Time(sec=now_ns // 10**9, nanosec=now_ns % 10**9)
            if topic == '/odom':
                d = self.sent[topic] * 0.01
                msg.pose.pose.position.x = self.heading[0] * d
                msg.pose.pose.position.y = self.heading[1] * d
            self.pubs[topic].publish(msg)
            self.sent[topic] += 1
            next_t += period
            self.stop.wait(max(0.0, next_t - time.monotonic()))

    def threads(self):
        return [threading.Thread(target=self._run, args=(t,)) for t in self.topics]

    def stored(self, timeout_s=30.0):
        """The node's own counts (~/list_topics): {topic: (stored, dropped)}."""
        if not self.list_topics.wait_for_service(timeout_sec=timeout_s):
            raise RuntimeError(f'{self.name}: /motedb/list_topics not available')
        future = self.list_topics.call_async(ListTopics.Request())
        self.executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        if not future.done():
            raise RuntimeError(f'{self.name}: no answer from /motedb/list_topics')
        return {t.name: (t.message_count, t.dropped_count) for t in future.result().topics}

    def offload_status(self):
        """The latest offload DiagnosticStatus (None before the first)."""
        for array in reversed(self.diagnostics):
            for s in array.status:
                if s.name.endswith(': offload'):
                    return s
        return None

    def shutdown(self):
        """SIGINT to the node (a clean stop); returns its exit code."""
        rc = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            print(f'{self.name}: motedb_node did not stop within 60 s; killing it', flush=True)
            self.proc.kill()
            self.proc.wait()
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        return rc


def spin(robots, seconds):
    """Spins every robot's executor (services, /diagnostics) for a while."""
    end = time.monotonic() + seconds
    while True:
        for r in robots:
            r.executor.spin_once(timeout_sec=0.02)
        if time.monotonic() >= end:
            return


def remote_counts(robot, credentials):
    """({topic: count} of the robot's remote store, ''), or ({}, the
    CLI's error) while there is none."""
    p = subprocess.run(['motedb', '--json', 'info', '--s3-credentials', credentials,
                        '--s3-retry-for', '5s', robot.url],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        return {}, f'exit code {p.returncode}: {p.stderr.strip()}'
    return {t['name']: t['count'] for t in json.loads(p.stdout)['topics']}, ''


def complete(robot, counts):
    """The remote store holds every message the robot published."""
    return counts is not None and all(counts.get(t) == n for t, n in robot.sent.items())


def wait_for_offload(robots, credentials, timeout_s):
    """Polls each remote store until it holds every message its robot
    published; returns {robot name: {topic: count}} (the last seen)."""
    deadline = time.monotonic() + timeout_s
    remote, errors, shown = {}, {}, None
    while True:
        for r in robots:
            if not complete(r, remote.get(r.name)):
                remote[r.name], errors[r.name] = remote_counts(r, credentials)
        line = '  '.join(f'{r.name} {sum(remote[r.name].get(t, 0) for t in r.sent)}'
                         f'/{sum(r.sent.values())}' for r in robots)
        if line != shown:
            print(f'  remote copies: {line}', flush=True)
            shown = line
        if all(complete(r, remote[r.name]) for r in robots):
            return remote, True
        if time.monotonic() > deadline:
            for name, e in errors.items():
                if e:
                    print(f'  motedb info {name}: {e}', flush=True)
            return remote, False
        spin(robots, 0.5)
        for r in robots:
            if r.proc.poll() is not None:
                raise RuntimeError(f'{r.name}: motedb_node exited with code {r.proc.returncode} '
                                   f'(log: {r.log_path})')


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--dir', required=True, help='stores and node logs go here')
    parser.add_argument('--fleet', required=True, help='s3://bucket/prefix of the fleet')
    parser.add_argument('--credentials', required=True, help="Garage's env file")
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--domain', type=int, default=int(os.environ.get('ROS_DOMAIN_ID', '42')))
    args = parser.parse_args()

    robots = []
    ok = False
    try:
        robots.append(Robot('robot1', args.domain, args, (1.0, 0.0)))
        robots.append(Robot('robot2', args.domain + 1, args, (0.0, 1.0)))
        for r in robots:
            print(f'{r.name}: ROS_DOMAIN_ID={r.domain}, motedb_node recording into {r.store}, '
                  f'offloading to {r.url} every 2 s (log: {r.log_path})', flush=True)
        deadline = time.monotonic() + 30
        while not all(r.subscribed() for r in robots):
            if time.monotonic() > deadline:
                raise RuntimeError('motedb never subscribed to the robot topics')
            for r in robots:
                if r.proc.poll() is not None:
                    raise RuntimeError(f'{r.name}: motedb_node exited with code '
                                       f'{r.proc.returncode} (log: {r.log_path})')
            spin(robots, 0.1)

        print(f'\nboth robots publishing for {args.seconds:.0f} s ...', flush=True)
        threads = [t for r in robots for t in r.threads()]
        for t in threads:
            t.start()
        time.sleep(args.seconds)  # the robots' run time, not a wait on DDS
        for r in robots:
            r.stop.set()
        for t in threads:
            t.join()
        done_at = time.monotonic()

        print('waiting for the offload to catch up ...', flush=True)
        remote, ok = wait_for_offload(robots, args.credentials, timeout_s=60 + 2 * args.seconds)
        print(f'  {"all messages offloaded" if ok else "TIMED OUT"} '
              f'{time.monotonic() - done_at:.1f} s after the robots stopped', flush=True)

        print('\nrobot   topic              type                     published  stored  dropped  remote')
        for r in robots:
            local = r.stored()
            for topic, sent in r.sent.items():
                stored, dropped = local.get(topic, (0, 0))
                kind = r.topics[topic][0].__name__
                print(f'{r.name:7s} {topic:18s} {kind:24s} {sent:9d} {stored:7d} {dropped:8d} '
                      f'{remote[r.name].get(topic, 0):7d}')

        # The statuses of the next diagnostics period, published after the
        # remote copies were complete.
        for r in robots:
            r.diagnostics.clear()
        end = time.monotonic() + 5
        while not all(r.offload_status() for r in robots) and time.monotonic() < end:
            spin(robots, 0.2)
        print('\ndiagnostics (/diagnostics of each robot):')
        for r in robots:
            s = r.offload_status()
            if s is None:
                print(f'  {r.name}: no offload status received')
                continue
            values = {kv.key: kv.value for kv in s.values}
            shown = ', '.join(f'{k}={values[k]}' for k in OFFLOAD_KEYS if k in values)
            level = s.level[0] if isinstance(s.level, bytes) else s.level
            print(f'  {r.name} [{LEVELS.get(level, level)}] {s.name}: {s.message} ({shown})')
    except RuntimeError as e:
        print(f'demo_fleet: {e}', file=sys.stderr, flush=True)
        ok = False
    finally:
        codes = []
        for r in robots:
            rc = r.shutdown()
            codes.append(rc)
            print(f'{r.name}: motedb_node stopped with exit code {rc}; store left at {r.store}',
                  flush=True)
    return 0 if ok and codes and all(c == 0 for c in codes) else 1


if __name__ == '__main__':
    sys.exit(main())
