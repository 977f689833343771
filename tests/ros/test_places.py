"""~/query_near against a simulated robot on a known path: the intervals
when it was near a place, and the camera messages inside them, exactly as
the test computes them itself from the poses the store holds, across
clean restarts, a kill -9, a compaction and retention; and bad requests
answered with their reason."""

import math
import signal
import time

from conftest import call, spin_until
from diagnostic_msgs.msg import DiagnosticArray
from motedb_interfaces.srv import QueryNear
from nav_msgs.msg import Odometry
from peers import last_status, query_all, set_int_param, status_values, table_bytes, wait_stored
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from rclpy.serialization import deserialize_message
from std_msgs.msg import String

SEC = 1_000_000_000
POSES = 60                # per segment: out along x and back
PLACE = (5.0, 0.0)
RADIUS = 1.5
CONVERGE_S = 15.0


def ns(t):
    return t.sec * SEC + t.nanosec


def path(i):
    """Pose i of the robot's path: segment k = i // POSES goes from x = 0
    to x = 10 and back along y = 0.25 k."""
    k, j = divmod(i, POSES)
    half = POSES // 2
    x = 10.0 * (j if j <= half else POSES - j) / half
    return (x, 0.25 * k)


class Robot:
    """Publishes the path on /odom (pose i carries i in header.stamp.sec)
    and a camera message on /camera after every second pose."""

    def __init__(self, peer):
        self.peer = peer
        qos = QoSProfile(depth=200, reliability=QoSReliabilityPolicy.RELIABLE)
        self.odom = peer.create_publisher(Odometry, '/odom', qos)
        self.camera = peer.create_publisher(String, '/camera', qos)
        self.next = 0
        self.frames = 0

    def subscriber_gids(self):
        return {bytes(e.endpoint_gid) for t in ('/odom', '/camera')
                for e in self.peer.get_subscriptions_info_by_topic(t)}

    def wait_for(self, node, old_gids):
        """Until a recorder subscription not among `old_gids` is on both
        topics (a killed node's stay on the graph until their lease ends)."""
        def fresh():
            return all(any(bytes(e.endpoint_gid) not in old_gids
                           for e in self.peer.get_subscriptions_info_by_topic(t))
                       for t in ('/odom', '/camera'))
        assert spin_until(self.peer, fresh, 30.0, node), 'the recorder never subscribed'

    def drive(self, node, camera_bytes):
        """One segment of the path, paced at 200 Hz (the robot's motion, not
        a wait on DDS); returns when the node has stored all of it."""
        for _ in range(POSES):
            i = self.next
            msg = Odometry(child_frame_id='base_link')
            msg.header.frame_id = 'odom'
            msg.header.stamp.sec = i
            msg.pose.pose.position.x, msg.pose.pose.position.y = path(i)
            self.odom.publish(msg)
            if i % 2:
                self.camera.publish(String(data=f'{i:06d}' + 'c' * camera_bytes))
                self.frames += 1
            self.next += 1
            time.sleep(0.005)
        wait_stored(self.peer, {'/odom': self.next, '/camera': self.frames}, node)


def stored(peer, node, topic):
    messages, _ = query_all(peer, node, topics=[topic], max_messages=500)
    return messages


def expected(peer, node):
    """The intervals the stored poses imply, computed here from the path
    (pose i is where path(i) says), and the camera log times inside them."""
    poses = sorted((ns(m.log_time), deserialize_message(bytes(m.data), Odometry).header.stamp.sec)
                   for m in stored(peer, node, '/odom'))
    intervals, run = [], None
    for t, i in poses:
        x, y = path(i)
        dx, dy = x - PLACE[0], y - PLACE[1]
        d2 = dx * dx + dy * dy
        if d2 > RADIUS * RADIUS:
            if run:
                intervals.append(run)
            run = None
            continue
        d = math.sqrt(d2)  # compared as Track::near compares it
        if run is None:
            run = [t, t, t, d]
        run[1] = t
        if d < run[3]:
            run[2], run[3] = t, d
    if run:
        intervals.append(run)
    spans = [tuple(run) for run in intervals]
    frames = [ns(m.log_time) for m in stored(peer, node, '/camera')
              if any(a <= ns(m.log_time) <= b for a, b, _, _ in spans)]
    return spans, frames


def near(peer, node, **fields):
    request = QueryNear.Request(**{'x': PLACE[0], 'y': PLACE[1], 'radius': RADIUS, **fields})
    return call(peer, QueryNear, '/motedb/query_near', request, node)


def answered(peer, node):
    """Every page of ~/query_near for the place with /camera, 7 messages a
    page: the intervals of the last page, the camera times, and whether
    every page gave the same intervals (it must, unless retention dropped
    poses meanwhile)."""
    spans, frames, cursor, same = None, [], '', True
    while True:
        r = near(peer, node, topics=['/camera'], max_messages=7, cursor=cursor)
        assert r.success, r.message
        assert (r.pose_topic, r.frame_id) == ('/odom', 'odom')
        page = [(ns(iv.start), ns(iv.end), ns(iv.closest), iv.distance) for iv in r.intervals]
        same = same and spans in (None, page)
        spans = page
        assert len(r.messages) <= 7
        assert all(m.topic == '/camera' for m in r.messages)
        frames.extend(ns(m.log_time) for m in r.messages)
        cursor = r.next_cursor
        if not cursor:
            return spans, frames, same


def check(peer, node, passes):
    """~/query_near answers exactly what the stored poses imply (polled,
    both sides read again each time: the index follows retention within a
    writer period, and retention may still be dropping)."""
    want, got = expected(peer, node), answered(peer, node)
    # Retention dropping poses while the pages were read changes the
    # intervals between pages: that answer is read again too.
    if got[:2] != want or not got[2]:
        def agree():
            nonlocal want, got
            want, got = expected(peer, node), answered(peer, node)
            return got[:2] == want and got[2]
        spin_until(peer, agree, CONVERGE_S, node)
    assert got[0] == want[0], f'intervals {got[0]} != {want[0]}'
    assert got[1] == want[1], 'camera messages differ'
    assert got[2], 'the intervals changed between pages'
    assert len(want[0]) == passes, f'{len(want[0])} passes, expected {passes}'
    assert want[1], 'no camera message inside any interval'
    return want


def test_query_near_follows_the_path_across_restarts_kill_compaction_and_retention(
        peer, start_node, tmp_path):
    store = tmp_path / 'places'
    robot = Robot(peer)
    gids = set()

    def run():
        # durability sync: what was stored before the kill -9 is still there
        # after it (periodic may lose its last 100 ms, as documented).
        node = start_node('-p', 'subscription_depth:=200', '-p', 'storage.memtable_bytes:=262144',
                          '-p', 'durability.mode:=sync', storage=store)
        robot.wait_for(node, gids)
        return node

    # Five segments with 20 kB camera frames; each passes the place twice.
    # A clean stop flushes a table; the kill -9 leaves segment 2 to the WAL.
    for segment, stop in enumerate([signal.SIGTERM, signal.SIGKILL, signal.SIGTERM,
                                    signal.SIGTERM, signal.SIGTERM], start=1):
        node = run()
        if segment > 1:
            check(peer, node, 2 * (segment - 1))  # the recorded poses, read at start
        robot.drive(node, 20_000)
        check(peer, node, 2 * segment)
        gids |= robot.subscriber_gids()
        if stop == signal.SIGKILL:
            node.proc.send_signal(stop)
            node.proc.wait(timeout=20)
        else:
            assert node.stop(stop) == 0

    # Four tables or more by now: compaction has moved them out of L0 (at
    # the last open or while the node recorded).
    seen = []
    node = run()
    peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 10)
    robot.drive(node, 100)

    def compacted():
        deeper = status_values(seen, 'compaction').get('levels', '').split()[1:]
        return any(not level.startswith(f'L{n + 1}:0f') for n, level in enumerate(deeper))
    assert spin_until(peer, compacted, 30.0, node), \
        f"nothing below L0: {last_status(seen, 'compaction')}"
    check(peer, node, 12)

    # Retention: room for a third of the tables; the oldest poses go, and
    # the index drops them too.
    tables = table_bytes(seen)
    assert tables > 0
    before = len(stored(peer, node, '/odom'))
    set_int_param(peer, node, 'retention.max_bytes', max(tables // 3, 1))
    assert spin_until(peer, lambda: len(stored(peer, node, '/odom')) < before,
                      30.0, node), 'retention dropped nothing'
    left, _ = check_after_retention(peer, node)
    gids |= robot.subscriber_gids()
    assert node.stop(signal.SIGTERM) == 0

    # Restarted: the index is rebuilt from what the store holds. The clean
    # stop flushed the memtable into a table, so retention may have dropped
    # more of the oldest poses meanwhile, never the newest pass.
    node = run()
    spans, _ = check_after_retention(peer, node)
    assert spans[-1] == left[-1] and len(spans) <= len(left), (spans, left)


def check_after_retention(peer, node):
    want = expected(peer, node)
    assert 0 < len(want[0]) < 12, f'{len(want[0])} passes left'
    return check(peer, node, len(want[0]))


def test_query_near_refuses_bad_requests_with_the_reason(peer, start_node):
    node = start_node()
    r = near(peer, node)
    assert not r.success and 'no pose source recorded' in r.message, r.message
    qos = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
    pub = peer.create_publisher(Odometry, '/odom', qos)
    other = peer.create_publisher(String, '/chatter', qos)
    assert spin_until(peer, lambda: pub.get_subscription_count() > 0
                      and other.get_subscription_count() > 0, 30.0, node)
    msg = Odometry()
    msg.header.frame_id = 'map'
    pub.publish(msg)
    other.publish(String(data='x'))
    wait_stored(peer, {'/odom': 1, '/chatter': 1}, node)
    for fields, reason in [
            ({'radius': -1.0}, 'radius must be'),
            ({'radius': 0.0}, 'radius must be'),
            ({'radius': float('nan')}, 'radius must be'),
            ({'x': float('inf')}, 'must be finite'),
            ({'pose_topic': '/chatter'}, 'not a recorded pose topic'),
            ({'frame_id': 'odom'}, 'no poses in frame'),
            ({'topics': ['/nope']}, 'unknown topic(s): /nope'),
            ({'cursor': 'garbage'}, 'cursor rejected')]:
        r = call(peer, QueryNear, '/motedb/query_near',
                 QueryNear.Request(**{'radius': RADIUS, **fields}), node)
        assert not r.success, fields
        assert reason in r.message, (fields, r.message)
    r = near(peer, node, radius=100.0, topics=['/chatter'])
    assert r.success, r.message
    assert [(ns(iv.start) == ns(iv.end)) for iv in r.intervals] == [True]
    # The interval is one instant, the pose's log time: /chatter's is not it.
    assert [m.topic for m in r.messages] == []
