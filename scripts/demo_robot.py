"""The motedb demo, run by scripts/demo inside a private network namespace.

Starts motedb_node and a simulated robot (Imu 200 Hz, LaserScan 10 Hz,
Image 640x480 rgb8 15 Hz, PointCloud2 of 30k points 10 Hz, Odometry 50 Hz),
records for --seconds, queries the store the way a planner would (the last
2 s of /scan, the latest odometry, where the robot was near a point), prints published vs stored counts, query
latency and the diagnostics summary, exports a bag, and stops the node
cleanly so the store stays on disk for the CLI.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

import rclpy
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from motedb_interfaces.srv import ExportMcap, GetLatest, ListTopics, Mark, QueryNear, QueryRange
from nav_msgs.msg import Odometry
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image, Imu, LaserScan, PointCloud2, PointField

LEVELS = {0: 'OK', 1: 'WARN', 2: 'ERROR', 3: 'STALE'}


def make_messages():
    """One reusable message per topic (only the stamp changes)."""
    scan = LaserScan(angle_min=-3.14, angle_max=3.14, angle_increment=0.00872,
                     range_min=0.1, range_max=30.0, ranges=[5.0] * 720)
    scan.header.frame_id = 'laser'
    image = Image(height=480, width=640, encoding='rgb8', step=640 * 3,
                  data=bytes(640 * 480 * 3))
    image.header.frame_id = 'camera'
    fields = [PointField(name=n, offset=4 * k, datatype=PointField.FLOAT32, count=1)
              for k, n in enumerate('xyz')] + \
        [PointField(name='intensity', offset=12, datatype=PointField.FLOAT32, count=1)]
    cloud = PointCloud2(height=1, width=30000, fields=fields, point_step=16,
                        row_step=16 * 30000, data=bytes(16 * 30000), is_dense=True)
    cloud.header.frame_id = 'lidar'
    imu = Imu()
    imu.header.frame_id = 'imu'
    imu.orientation.w = 1.0
    odom = Odometry(child_frame_id='base_link')
    odom.header.frame_id = 'odom'
    return {
        '/imu': (Imu, imu, 200.0),
        '/scan': (LaserScan, scan, 10.0),
        '/camera/image_raw': (Image, image, 15.0),
        '/points': (PointCloud2, cloud, 10.0),
        '/odom': (Odometry, odom, 50.0),
    }


class Robot:
    """Publishes each topic from its own thread at its rate."""

    def __init__(self, node):
        self.node = node
        self.topics = make_messages()
        qos = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
        self.pubs = {t: node.create_publisher(cls, t, qos)
                     for t, (cls, _, _) in self.topics.items()}
        self.sent = {t: 0 for t in self.topics}
        self.stop = threading.Event()

    def wait_for_recorder(self, executor, timeout_s=30.0):
        deadline = time.monotonic() + timeout_s
        while any(p.get_subscription_count() == 0 for p in self.pubs.values()):
            if time.monotonic() > deadline:
                raise RuntimeError('motedb never subscribed to the robot topics')
            executor.spin_once(timeout_sec=0.1)

    def _run(self, topic):
        _, msg, hz = self.topics[topic]
        period = 1.0 / hz
        next_t = time.monotonic()
        while not self.stop.is_set():
            now_ns = time.time_ns()
            msg.header.stamp = Time(sec=now_ns // 10**9, nanosec=now_ns % 10**9)
            if topic == '/odom':
                msg.pose.pose.position.x = self.sent[topic] * 0.01
            self.pubs[topic].publish(msg)
            self.sent[topic] += 1
            next_t += period
            self.stop.wait(max(0.0, next_t - time.monotonic()))

    def run_for(self, seconds):
        threads = [threading.Thread(target=self._run, args=(t,)) for t in self.topics]
        for t in threads:
            t.start()
        time.sleep(seconds)  # the robot's run time, not a wait on DDS
        self.stop.set()
        for t in threads:
            t.join()


CLIENTS = {}


def call(node, executor, srv, name, request, timeout_s=30.0):
    """One call on a client kept per service; returns (response, seconds)."""
    client = CLIENTS.get(name)
    if client is None:
        client = CLIENTS[name] = node.create_client(srv, name)
    if not client.wait_for_service(timeout_sec=timeout_s):
        raise RuntimeError(f'{name} not available')
    start = time.perf_counter()
    future = client.call_async(request)
    executor.spin_until_future_complete(future, timeout_sec=timeout_s)
    if not future.done():
        raise RuntimeError(f'no answer from {name}')
    return future.result(), time.perf_counter() - start


def timed(node, executor, srv, name, request, repeat=5):
    """The answer and the median latency of `repeat` calls after a first
    one (which also pays for DDS matching of the new client)."""
    response, _ = call(node, executor, srv, name, request)
    times = sorted(call(node, executor, srv, name, request)[1] for _ in range(repeat))
    return response, times[len(times) // 2]


def wait_settled(node, executor, robot, timeout_s=30.0):
    """Polls list_topics until stored + dropped counts reach what was sent."""
    deadline = time.monotonic() + timeout_s
    while True:
        response, _ = call(node, executor, ListTopics, '/motedb/list_topics', ListTopics.Request())
        info = {t.name: t for t in response.topics}
        done = all(t in info and info[t].message_count + info[t].dropped_count >= n
                   for t, n in robot.sent.items())
        if done or time.monotonic() > deadline:
            return info
        executor.spin_once(timeout_sec=0.2)


def ns(t):
    return t.sec * 10**9 + t.nanosec


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--store', required=True)
    parser.add_argument('--exports', required=True)
    parser.add_argument('--seconds', type=float, default=15.0)
    parser.add_argument('--log', required=True)
    args = parser.parse_args()

    log = open(args.log, 'wb')
    node_proc = subprocess.Popen(
        ['motedb_node', '--ros-args', '-p', f'storage.path:={args.store}',
         '-p', f'export.directory:={args.exports}', '-p', 'hardware_id:=demo-robot'],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    rclpy.init()
    node = Node('demo_robot')
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    diagnostics = []
    node.create_subscription(DiagnosticArray, '/diagnostics', diagnostics.append, 10)
    try:
        robot = Robot(node)
        robot.wait_for_recorder(executor)
        print(f'recording the simulated robot for {args.seconds:.0f} s ...', flush=True)
        robot.run_for(args.seconds)
        info = wait_settled(node, executor, robot)

        print('\ntopic                 type                          published  stored  dropped  gaps')
        for topic, sent in robot.sent.items():
            t = info.get(topic)
            stored = t.message_count if t else 0
            print(f'{topic:21s} {t.type if t else "?":29s} {sent:9d} {stored:7d} '
                  f'{t.dropped_count if t else 0:8d} {t.gap_count if t else 0:5d}')

        last = info['/scan'].last_time
        start_ns = max(0, ns(last) - 2 * 10**9)
        req = QueryRange.Request(topics=['/scan'],
                                 start=Time(sec=start_ns // 10**9, nanosec=start_ns % 10**9))
        page, scan_s = timed(node, executor, QueryRange, '/motedb/query_range', req)
        print(f'\nplanner: last 2 s of /scan -> {len(page.messages)} messages '
              f'in {scan_s * 1000:.1f} ms median (success={page.success})')
        latest, odom_s = timed(node, executor, GetLatest, '/motedb/get_latest',
                               GetLatest.Request(topic='/odom'))
        print(f'planner: latest /odom -> found={latest.found} seq={latest.record.sequence} '
              f'in {odom_s * 1000:.1f} ms median')

        # Where: the robot drives along x at 0.5 m/s (odometry 50 Hz); when
        # was it within 0.5 m of the point it passed halfway, and which
        # scans were taken there?
        x = robot.sent['/odom'] // 2 * 0.01
        pages, scans, cursor = 0, 0, ''
        while True:
            near, near_s = call(node, executor, QueryNear, '/motedb/query_near',
                                QueryNear.Request(x=x, y=0.0, radius=0.5, topics=['/scan'],
                                                  cursor=cursor))
            if not near.success:
                raise RuntimeError(f'~/query_near: {near.message}')
            pages, scans, cursor = pages + 1, scans + len(near.messages), near.next_cursor
            if not cursor:
                break
        print(f'planner: where was the robot within 0.5 m of ({x:.2f}, 0) in {near.pose_topic}? '
              f'{len(near.intervals)} interval(s)')
        for iv in near.intervals:
            print(f'  {(ns(iv.end) - ns(iv.start)) / 1e9:.2f} s long, closest '
                  f'{iv.distance:.3f} m at log time {ns(iv.closest) / 1e9:.3f}')
        print(f'  {scans} /scan messages inside them ({pages} page(s), '
              f'{near_s * 1000:.1f} ms for the last)')

        # An incident: the robot's last 3 s marked and pinned, as a fault
        # detector would (retention keeps a pinned window until ~/unpin).
        bump_ns = max(0, ns(last) - 3 * 10**9)
        marked, _ = call(node, executor, Mark, '/motedb/mark',
                         Mark.Request(label='demo-bump', tags=['demo', 'bump'],
                                      start=Time(sec=bump_ns // 10**9, nanosec=bump_ns % 10**9),
                                      end=last, pin=True))
        print(f'fault detector: mark "demo-bump" (the last 3 s of /scan, pinned) -> '
              f'id={marked.mark.id} success={marked.success} {marked.message}')

        executor.spin_once(timeout_sec=1.5)
        end = time.monotonic() + 5
        while not diagnostics and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.2)
        if diagnostics:
            print('\ndiagnostics:')
            for s in diagnostics[-1].status:
                values = {kv.key: kv.value for kv in s.values}
                keys = ['write_state', 'messages_stored', 'disk_bytes', 'l0_files',
                        'compactions_completed', 'messages_dropped', 'gaps_detected']
                shown = ', '.join(f'{k}={values[k]}' for k in keys if k in values)
                level = s.level[0] if isinstance(s.level, bytes) else s.level
                print(f'  [{LEVELS.get(level, level)}] {s.name}: {s.message} ({shown})')

        name = time.strftime('demo-%Y%m%d-%H%M%S')
        exported, export_s = call(node, executor, ExportMcap, '/motedb/export_mcap',
                                  ExportMcap.Request(output=name), timeout_s=120)
        print(f'\nexport: {exported.message_count} messages, {exported.size_bytes} bytes '
              f'-> {exported.path} in {export_s:.1f} s (success={exported.success} {exported.message})')
    finally:
        node_proc.send_signal(signal.SIGTERM)
        rc = node_proc.wait(timeout=60)
        print(f'\nmotedb_node stopped with exit code {rc}; store left at {args.store}')
        node.destroy_node()
        rclpy.shutdown()
    return 0 if rc == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
