"""Diagnostics driven into WARN (store at its quota) and ERROR (the disk
fills up under the store: writes fail, the store is poisoned), with the
node still answering queries."""

import os
import time

import rclpy
from conftest import NodeProcess, node_binary, spin_until
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from peers import last_status, query_all, topics, wait_matched, wait_stored
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from rclpy.serialization import deserialize_message
from std_msgs.msg import String, UInt8MultiArray

WARN = DiagnosticStatus.WARN[0] if isinstance(DiagnosticStatus.WARN, bytes) else DiagnosticStatus.WARN
ERROR = DiagnosticStatus.ERROR[0] if isinstance(DiagnosticStatus.ERROR, bytes) else DiagnosticStatus.ERROR


def level(status):
    return status.level[0] if isinstance(status.level, bytes) else status.level


def publish_until(peer, pub, predicate, node, timeout_s=60.0, size=64 * 1024):
    """Publishes messages of `size` random (incompressible) bytes until
    predicate() holds."""
    payload = UInt8MultiArray(data=os.urandom(size))
    deadline = time.monotonic() + timeout_s
    while not predicate():
        node.assert_running()
        assert time.monotonic() < deadline, 'diagnostics never reached the expected level'
        pub.publish(payload)
        rclpy.spin_once(peer, timeout_sec=0.02)


def storage_statuses(seen, hardware_id):
    return [s for m in seen for s in m.status
            if s.name == 'motedb: storage' and s.hardware_id == hardware_id]


def test_quota_drives_storage_to_warn_or_error(peer, start_node):
    node = start_node('-p', 'hardware_id:=quota-test', '-p', 'retention.max_bytes:=65536',
                      '-p', 'diagnostic_updater.period:=0.2', '-p', 'discovery_period_s:=0.2')
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    pub = peer.create_publisher(UInt8MultiArray, '/bulk', QoSProfile(
        depth=100, reliability=QoSReliabilityPolicy.RELIABLE))
    wait_matched(peer, [pub], node)

    def over_quota():
        return any(level(s) >= WARN and 'quota' in s.message
                   for s in storage_statuses(seen, 'quota-test'))
    publish_until(peer, pub, over_quota, node)
    status = next(s for s in storage_statuses(seen, 'quota-test') if level(s) >= WARN)
    values = {kv.key: kv.value for kv in status.values}
    assert int(values['quota_bytes']) == 65536
    assert int(values['disk_bytes']) * 10 >= 65536 * 9
    assert '/bulk' in topics(peer, node)
    peer.destroy_subscription(sub)
    assert node.stop() == 0, node.log()


def test_full_disk_is_an_error_and_queries_still_answer(peer, tmp_path):
    store = tmp_path / 'small-disk'
    store.mkdir()
    # A 3 MiB tmpfs under the store, in a mount namespace of the node's own.
    argv = ['unshare', '-m', '--propagation', 'private', 'sh', '-c',
            'mount -t tmpfs -o size=3m motedb-test "$0" && exec "$@"', str(store),
            node_binary(), '--ros-args', '-p', f'storage.path:={store}',
            '-p', 'hardware_id:=disk-test', '-p', 'diagnostic_updater.period:=0.2',
            '-p', 'discovery_period_s:=0.2', '-p', 'durability.mode:=sync',
            # The engine's own ENOSPC path, not the free-space guard.
            '-p', 'storage.min_free_bytes:=0']
    node = NodeProcess(argv, tmp_path / 'node.log')
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    try:
        pub = peer.create_publisher(UInt8MultiArray, '/bulk', QoSProfile(
            depth=100, reliability=QoSReliabilityPolicy.RELIABLE))
        wait_matched(peer, [pub], node)

        def errored():
            return any(level(s) == ERROR for s in storage_statuses(seen, 'disk-test'))
        publish_until(peer, pub, errored, node)
        recorder = [s for m in seen for s in m.status
                    if s.name == 'motedb: recorder' and s.hardware_id == 'disk-test']
        assert any(level(s) >= WARN for s in recorder)
        dropped = max(int({kv.key: kv.value for kv in s.values}['messages_dropped'])
                      for s in recorder)
        assert dropped > 0
        # Still answering: what was stored before the disk filled is served.
        info = topics(peer, node)
        assert info['/bulk'].message_count > 0
    finally:
        peer.destroy_subscription(sub)
        rc = node.stop()
    # Closing a poisoned store reports the failure: non-zero, not a hang.
    assert rc == 1, (rc, node.log())


def test_topic_with_unresolvable_type_is_reported(peer, start_node):
    node = start_node('-p', 'hardware_id:=types-test', '-p', 'diagnostic_updater.period:=0.2',
                      '-p', 'discovery_period_s:=0.2')
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    # Two types on one topic (from two participants, as Fast DDS refuses
    # both in one): motedb cannot pick one and must say so.
    other_context = rclpy.Context()
    rclpy.init(context=other_context)
    other = Node('motedb_test_other', context=other_context)
    a = peer.create_publisher(UInt8MultiArray, '/ambiguous', 10)
    b = other.create_publisher(String, '/ambiguous', 10)
    try:
        def reported():
            rclpy.spin_once(peer, timeout_sec=0.05)
            return any(s.name == 'motedb: recorder' and s.hardware_id == 'types-test'
                       and level(s) == WARN and '/ambiguous' in s.message
                       for m in seen for s in m.status)
        deadline = time.monotonic() + 30
        while not reported():
            node.assert_running()
            assert time.monotonic() < deadline, 'unresolvable topic never reported'
        # Either not recorded at all, or recorded as the type seen first.
        recorded = topics(peer, node).get('/ambiguous')
        assert recorded is None or recorded.type in (
            'std_msgs/msg/UInt8MultiArray', 'std_msgs/msg/String')
    finally:
        peer.destroy_publisher(a)
        other.destroy_publisher(b)
        other.destroy_node()
        rclpy.shutdown(context=other_context)
        peer.destroy_subscription(sub)
    assert node.stop() == 0, node.log()


def test_a_recorder_that_keeps_failing_is_an_error_and_the_node_exits_nonzero(peer, start_node):
    """The recorder thread fails at every start (an injected panic, as a
    missing type support or a failed rcl init would): /diagnostics goes
    ERROR with the reason while it is restarted, the error is logged, and
    after the last restart the node exits non-zero."""
    node = start_node('-p', 'diagnostic_updater.period:=0.2',
                      env={'MOTEDB_TEST_RECORDER_FAULT': 'panic'})
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 10)
    try:
        def error_with_reason():
            s = last_status(seen, 'recorder')
            return (s is not None and s.level == DiagnosticStatus.ERROR
                    and 'injected recorder fault' in s.message)
        assert spin_until(peer, error_with_reason, 30.0), node.log()
        values = {kv.key: kv.value for kv in last_status(seen, 'recorder').values}
        assert 'injected recorder fault' in values['recorder_down']
        assert 'injected recorder fault' in values['last_error']
    finally:
        peer.destroy_subscription(sub)
    rc = node.proc.wait(timeout=40)
    assert rc != 0, node.log()
    log = node.log()
    assert 'recorder stopped' in log and 'gave up after 3 restarts' in log, log


def test_a_recorder_that_fails_once_is_restarted_and_records(peer, start_node):
    from peers import wait_stored
    node = start_node('-p', 'diagnostic_updater.period:=0.2', '-p', 'discovery_period_s:=0.1',
                      env={'MOTEDB_TEST_RECORDER_FAULT': 'panic-once'})
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 10)
    try:
        def error_then_ok():
            levels = [s.level for m in seen for s in m.status if s.name.endswith('recorder')]
            return (DiagnosticStatus.ERROR in levels
                    and levels[-1] == DiagnosticStatus.OK)
        assert spin_until(peer, error_then_ok, 30.0, node), node.log()
    finally:
        peer.destroy_subscription(sub)
    pub = peer.create_publisher(
        String, '/after_restart', QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE))
    wait_matched(peer, [pub], node)
    for i in range(5):
        pub.publish(String(data=f'r{i}'))
    wait_stored(peer, {'/after_restart': 5}, node)
    assert node.stop() == 0, node.log()


def test_a_type_without_a_definition_is_recorded_and_reported(peer, start_node, tmp_path):
    """The message definition cannot be found (here: AMENT_PREFIX_PATH
    names no install, as for a type known only as .idl), but its type
    support loads: the topic is recorded with an empty definition and
    /diagnostics says so, instead of refusing it."""
    from peers import wait_stored
    empty = tmp_path / 'no-prefix'
    empty.mkdir()
    node = start_node('-p', 'hardware_id:=nodef-test', '-p', 'diagnostic_updater.period:=0.2',
                      env={'AMENT_PREFIX_PATH': str(empty)})
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    pub = peer.create_publisher(
        String, '/nodef', QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE))
    try:
        wait_matched(peer, [pub], node)
        for i in range(5):
            pub.publish(String(data=f'x{i}'))
        got = wait_stored(peer, {'/nodef': 5}, node)
        assert got['/nodef'].type == 'std_msgs/msg/String'

        def reported():
            return any(s.hardware_id == 'nodef-test' and s.name.endswith('recorder')
                       and level(s) == WARN and 'without a message definition' in s.message
                       and '/nodef' in s.message for m in seen for s in m.status)
        assert spin_until(peer, reported, 30.0, node), node.log()
    finally:
        peer.destroy_subscription(sub)
    assert node.stop() == 0, node.log()


def test_compressible_topics_are_stored_encoded_and_read_back_equal(peer, start_node):
    """Value-log compression end to end: image-like payloads are stored
    zstd-encoded, random ones (JPEG-like) raw; the storage status says so per
    topic and every message reads back equal."""
    # The 20 + 20 large messages go out in one burst: a subscription history
    # as deep as the burst keeps a busy machine from overwriting any of them
    # before the recorder takes them (this test is about compression, not
    # about keeping up; the default depth is rosbag2's 10).
    node = start_node('-p', 'hardware_id:=codec-test', '-p', 'diagnostic_updater.period:=0.2',
                      '-p', 'discovery_period_s:=0.2', '-p', 'subscription_depth:=100')
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
    camera = peer.create_publisher(UInt8MultiArray, '/camera', qos)
    jpeg = peer.create_publisher(UInt8MultiArray, '/jpeg', qos)
    wait_matched(peer, [camera, jpeg], node)
    sent = {'/camera': [], '/jpeg': []}
    for i in range(20):
        # Rows of slowly varying values: compresses like a camera frame.
        row = bytes((j // 8 + i) % 256 for j in range(2000))
        sent['/camera'].append(row * 100)
        sent['/jpeg'].append(os.urandom(200_000))
        camera.publish(UInt8MultiArray(data=sent['/camera'][-1]))
        jpeg.publish(UInt8MultiArray(data=sent['/jpeg'][-1]))
        rclpy.spin_once(peer, timeout_sec=0.01)
    wait_stored(peer, {'/camera': 20, '/jpeg': 20}, node)

    def reported():
        for s in storage_statuses(seen, 'codec-test'):
            value = {kv.key: kv.value for kv in s.values}.get('value_compression', '')
            if '/camera: zstd' in value and '(20 encoded' in value and '/jpeg: raw' in value:
                return True
        return False
    last = last_status(seen, 'storage')
    assert spin_until(peer, reported, 30.0, node), last and list(last.values)
    for name, payloads in sent.items():
        got, _ = query_all(peer, node, topics=[name])
        data = [bytes(deserialize_message(bytes(m.data), UInt8MultiArray).data) for m in got]
        assert data == payloads, name
    peer.destroy_subscription(sub)
    assert node.stop() == 0, node.log()
