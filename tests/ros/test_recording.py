"""Recording from rclpy publishers: byte-exact CDR of many types, paging,
get_latest, bad input answered, restart, kill -9, export."""

import signal
import threading
import time

import rclpy
from builtin_interfaces.msg import Time
from conftest import call, spin_until
from rosgraph_msgs.msg import Clock
from geometry_msgs.msg import Point
from motedb_interfaces.srv import ExportMcap
from nav_msgs.msg import Odometry
from peers import latest, query, query_all, topics, wait_matched, wait_stored
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import (CompressedImage, Image, Imu, JointState, LaserScan,
                             PointCloud2, PointField)
from std_msgs.msg import String
from test_msgs.msg import Arrays, BasicTypes, Nested, Strings, UnboundedSequences

N = 5


def samples():
    """(topic, type name, class, factory(i)) for many message types."""
    def imu(i):
        m = Imu()
        m.header.frame_id = 'imu'
        m.header.stamp.sec = 100 + i
        m.linear_acceleration.z = 9.81 + i
        m.orientation.w = 1.0
        return m

    def scan(i):
        # Values exact in float32, so decoded messages compare equal.
        return LaserScan(angle_min=-1.5, angle_max=1.5, angle_increment=0.0078125,
                         ranges=[float(i + k) / 8 for k in range(300)])

    def image(i):
        return Image(height=4, width=6, encoding='rgb8', step=18,
                     data=bytes((i + k) % 256 for k in range(72)))

    def cloud(i):
        fields = [PointField(name=n, offset=4 * k, datatype=PointField.FLOAT32, count=1)
                  for k, n in enumerate('xyz')]
        return PointCloud2(height=1, width=10, fields=fields, point_step=12, row_step=120,
                           data=bytes((i * 7 + k) % 256 for k in range(120)), is_dense=True)

    def compressed(i):
        return CompressedImage(format='jpeg', data=bytes([0xFF, 0xD8, i, 0xFF, 0xD9]))

    def joints(i):
        return JointState(name=['a', 'b'], position=[0.1 * i, 0.2], velocity=[], effort=[1.0])

    def odom(i):
        m = Odometry(child_frame_id='base_link')
        m.header.frame_id = 'odom'
        m.pose.pose.position = Point(x=float(i), y=2.0, z=0.0)
        m.twist.covariance[0] = 0.5
        return m

    def basic(i):
        return BasicTypes(bool_value=bool(i % 2), byte_value=bytes([i]), char_value=i,
                          float32_value=1.5, float64_value=-2.25, int8_value=-i,
                          uint8_value=i, int16_value=-300, uint16_value=600,
                          int32_value=-70000, uint32_value=70000, int64_value=-(1 << 40),
                          uint64_value=1 << 50)

    def arrays(i):
        m = Arrays()
        m.int32_values = [i, -i, 7]
        m.string_values = ['x' * i, '', 'z']
        return m

    def nested(i):
        m = Nested()
        m.basic_types_value.int32_value = i
        return m

    def strings(i):
        return Strings(string_value='s' * (i + 1), bounded_string_value='b')

    def sequences(i):
        return UnboundedSequences(int16_values=list(range(i)), string_values=['q'] * i)

    return [
        ('/imu', 'sensor_msgs/msg/Imu', Imu, imu),
        ('/scan', 'sensor_msgs/msg/LaserScan', LaserScan, scan),
        ('/camera/image', 'sensor_msgs/msg/Image', Image, image),
        ('/points', 'sensor_msgs/msg/PointCloud2', PointCloud2, cloud),
        ('/camera/compressed', 'sensor_msgs/msg/CompressedImage', CompressedImage, compressed),
        ('/joint_states', 'sensor_msgs/msg/JointState', JointState, joints),
        ('/odom', 'nav_msgs/msg/Odometry', Odometry, odom),
        ('/t/basic', 'test_msgs/msg/BasicTypes', BasicTypes, basic),
        ('/t/arrays', 'test_msgs/msg/Arrays', Arrays, arrays),
        ('/t/nested', 'test_msgs/msg/Nested', Nested, nested),
        ('/t/strings', 'test_msgs/msg/Strings', Strings, strings),
        ('/t/sequences', 'test_msgs/msg/UnboundedSequences', UnboundedSequences, sequences),
    ]


def assert_same_cdr(stored, published, cls):
    """Stored bytes are the CDR that arrived: same encapsulation header,
    and they decode to exactly the published message (test values are exact
    in float32). The wire form may carry tail padding (Fast DDS pads the
    payload to 4 bytes). Byte equality with serialize_message() cannot be asked for:
    rclpy's serializer leaves alignment padding uninitialized (the wire
    carries zeros) and may return a few bytes of slack at the end."""
    assert len(stored) == len(published)
    for m, original in zip(stored, published):
        data = bytes(m.data)
        expected = serialize_message(original)
        assert data[:4] == expected[:4]
        assert deserialize_message(data, cls) == original


def reliable(depth=100):
    return QoSProfile(depth=depth, reliability=QoSReliabilityPolicy.RELIABLE,
                      durability=QoSDurabilityPolicy.VOLATILE)


def ns(t):
    return t.sec * 1_000_000_000 + t.nanosec


def test_many_types_are_stored_byte_exact(peer, start_node):
    node = start_node('-p', 'discovery_period_s:=0.2')
    cases = samples()
    pubs = [peer.create_publisher(cls, topic, reliable()) for topic, _, cls, _ in cases]
    wait_matched(peer, pubs, node)
    sent = {}
    for (topic, _, _, make), pub in zip(cases, pubs):
        sent[topic] = [make(i) for i in range(N)]
        for msg in sent[topic]:
            pub.publish(msg)
    info = wait_stored(peer, {topic: N for topic in sent}, node)
    for topic, type_name, cls, _ in cases:
        assert info[topic].type == type_name
        assert info[topic].serialization_format == 'cdr'
        assert info[topic].message_count == N
        assert (info[topic].dropped_count, info[topic].gap_count) == (0, 0)
        stored, _ = query_all(peer, node, topics=[topic])
        assert_same_cdr(stored, sent[topic], cls)
        for m in stored:
            assert (m.topic, m.type) == (topic, type_name)
            assert ns(m.publish_time) > 0
            assert ns(m.log_time) >= ns(m.publish_time) - 1_000_000_000
        assert [m.sequence for m in stored] == list(range(N))
    assert node.stop() == 0, node.log()


def test_paging_returns_every_message_once_in_order_while_recording(peer, start_node):
    # A burst of hundreds: deeper than the default subscription history
    # (10, as rosbag2), which a burst may overrun while the recorder thread
    # is descheduled (the loss is then counted as a gap).
    node = start_node('-p', 'discovery_period_s:=0.2', '-p', 'subscription_depth:=1000')
    pub = peer.create_publisher(String, '/page', reliable(1000))
    noise = peer.create_publisher(String, '/noise', reliable())
    wait_matched(peer, [pub, noise], node)
    total = 400
    for i in range(total):
        pub.publish(String(data=f'm{i}'))
    wait_stored(peer, {'/page': total}, node)
    stop = threading.Event()

    def keep_recording():
        i = 0
        while not stop.is_set() and i < 5000:
            noise.publish(String(data=f'n{i}'))
            i += 1
            stop.wait(0.002)
    writer = threading.Thread(target=keep_recording)
    writer.start()
    try:
        got, pages = query_all(peer, node, topics=['/page'], max_messages=7)
        back, _ = query_all(peer, node, topics=['/page'], max_messages=9, newest_first=True)
    finally:
        stop.set()
        writer.join()
    assert_same_cdr(got, [String(data=f'm{i}') for i in range(total)], String)
    assert pages >= total // 7
    assert [m.sequence for m in back] == list(reversed(range(total)))
    last3 = query(peer, node, topics=['/page'], max_messages=3, newest_first=True)
    assert [m.sequence for m in last3.messages] == [total - 1, total - 2, total - 3]
    assert node.stop() == 0, node.log()


def test_get_latest_and_bad_input_is_answered(peer, start_node):
    node = start_node('-p', 'discovery_period_s:=0.2', '-p', 'query.max_messages:=50')
    pub = peer.create_publisher(String, '/chatter', reliable())
    wait_matched(peer, [pub], node)
    for i in range(3):
        pub.publish(String(data=f'c{i}'))
    info = wait_stored(peer, {'/chatter': 3}, node)['/chatter']

    newest = latest(peer, '/chatter', node_proc=node)
    assert newest.success and newest.found
    assert_same_cdr([newest.record], [String(data='c2')], String)
    before = latest(peer, '/chatter', at=Time(sec=1), node_proc=node)
    assert before.success and not before.found
    unknown = latest(peer, '/nope', node_proc=node)
    assert not unknown.success and '/nope' in unknown.message

    first = info.first_time
    inverted = query(peer, node, topics=['/chatter'], start=Time(sec=first.sec + 10),
                     end=Time(sec=first.sec))
    assert not inverted.success and 'before' in inverted.message
    missing = query(peer, node, topics=['/nope'])
    assert not missing.success and '/nope' in missing.message
    garbage = query(peer, node, topics=['/chatter'], cursor='not-a-cursor')
    assert not garbage.success and 'cursor' in garbage.message
    bad_time = query(peer, node, start=Time(sec=0, nanosec=2_000_000_000))
    assert not bad_time.success
    clamped = query(peer, node, topics=['/chatter'], max_messages=100000)
    assert clamped.success and 'clamped' in clamped.message
    assert len(clamped.messages) == 3

    # Still recording after all that.
    pub.publish(String(data='after'))
    wait_stored(peer, {'/chatter': 4}, node)
    assert node.stop() == 0, node.log()


def test_restart_serves_what_was_recorded(peer, start_node, tmp_path):
    store = tmp_path / 'persist'
    first = start_node('-p', 'discovery_period_s:=0.2', storage=store)
    pub = peer.create_publisher(String, '/keep', reliable())
    wait_matched(peer, [pub], first)
    for i in range(10):
        pub.publish(String(data=f'k{i}'))
    wait_stored(peer, {'/keep': 10}, first)
    assert first.stop(signal.SIGINT) == 0, first.log()
    peer.destroy_publisher(pub)

    second = start_node(storage=store)
    info = topics(peer, second)
    assert info['/keep'].message_count == 10
    got, _ = query_all(peer, second, topics=['/keep'])
    assert_same_cdr(got, [String(data=f'k{i}') for i in range(10)], String)
    assert second.stop() == 0, second.log()


def test_kill_9_with_sync_durability_loses_nothing_acknowledged(peer, start_node, tmp_path):
    store = tmp_path / 'crash'
    first = start_node('-p', 'discovery_period_s:=0.2', '-p', 'durability.mode:=sync',
                       '-p', 'subscription_depth:=1000',
                       storage=store)
    pub = peer.create_publisher(String, '/crash', reliable())
    wait_matched(peer, [pub], first)
    for i in range(20):
        pub.publish(String(data=f'x{i}'))
    wait_stored(peer, {'/crash': 20}, first)
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL
    peer.destroy_publisher(pub)

    second = start_node(storage=store)
    got, _ = query_all(peer, second, topics=['/crash'])
    assert len(got) == 20
    assert second.stop() == 0, second.log()


def test_export_mcap_writes_a_bag(peer, start_node, tmp_path):
    exports = tmp_path / 'exports'
    node = start_node('-p', 'discovery_period_s:=0.2', '-p', f'export.directory:={exports}')
    pub = peer.create_publisher(String, '/exported', reliable())
    wait_matched(peer, [pub], node)
    for i in range(7):
        pub.publish(String(data=f'e{i}'))
    wait_stored(peer, {'/exported': 7}, node)
    request = ExportMcap.Request(topics=['/exported'], output='run1', compression='lz4')
    response = call(peer, ExportMcap, '/motedb/export_mcap', request, node)
    assert response.success, response.message
    assert response.path == str(exports / 'run1')
    assert response.message_count == 7
    assert (exports / 'run1' / 'metadata.yaml').is_file()
    assert any(p.suffix == '.mcap' for p in (exports / 'run1').iterdir())
    again = call(peer, ExportMcap, '/motedb/export_mcap', request, node)
    assert not again.success and 'exists' in again.message
    escape = call(peer, ExportMcap, '/motedb/export_mcap',
                  ExportMcap.Request(output='../out'), node)
    assert not escape.success
    # A symlink already under export.directory does not lead outside it.
    outside = tmp_path / 'outside'
    outside.mkdir()
    (exports / 'link').symlink_to(outside)
    through = call(peer, ExportMcap, '/motedb/export_mcap',
                   ExportMcap.Request(output='link/run2'), node)
    assert not through.success
    assert 'symbolic link' in through.message, through.message
    assert list(outside.iterdir()) == []
    assert node.stop() == 0, node.log()


def share_type_hash(package, kind, stem, type_name):
    """The RIHS01 hash rosidl wrote into share/<package>/<kind>/<stem>.json:
    computed at build time, independent of the graph and of motedb."""
    import json
    import os
    for prefix in os.environ['AMENT_PREFIX_PATH'].split(':'):
        path = os.path.join(prefix, 'share', package, kind, f'{stem}.json')
        if os.path.isfile(path):
            with open(path) as f:
                hashes = json.load(f)['type_hashes']
            return next(h['hash_string'] for h in hashes if h['type_name'] == type_name)
    raise LookupError(f'no type description for {type_name}')


def test_action_and_service_event_types_export_with_definitions_and_type_hashes(
        peer, start_node, tmp_path):
    """Types that have no .msg file (an action's FeedbackMessage, a service's
    Event) are recorded with a definition another tool can decode, and every
    topic carries its type hash into the bag (channel topic_type_hash and
    metadata.yaml type_description_hash), as ros2 bag record does."""
    import yaml
    from mcap.reader import make_reader
    from test_msgs.action import Fibonacci
    from test_msgs.srv import BasicTypes
    exports = tmp_path / 'exports'
    node = start_node('-p', 'discovery_period_s:=0.2', '-p', f'export.directory:={exports}')
    feedback_cls = Fibonacci.Impl.FeedbackMessage
    cases = {
        '/fib_feedback': ('test_msgs/action/Fibonacci_FeedbackMessage', feedback_cls,
                          ('test_msgs', 'action', 'Fibonacci')),
        '/basic_event': ('test_msgs/srv/BasicTypes_Event', BasicTypes.Event,
                         ('test_msgs', 'srv', 'BasicTypes')),
        '/plain': ('std_msgs/msg/String', String, ('std_msgs', 'msg', 'String')),
    }
    pubs = {t: peer.create_publisher(c[1], t, reliable()) for t, c in cases.items()}
    wait_matched(peer, list(pubs.values()), node)
    for i in range(3):
        fb = feedback_cls()
        fb.goal_id.uuid = [i] * 16
        fb.feedback.sequence = list(range(i + 2))
        pubs['/fib_feedback'].publish(fb)
        ev = BasicTypes.Event()
        ev.info.sequence_number = i
        ev.request = [BasicTypes.Request(int32_value=-i, string_value=f'q{i}')]
        pubs['/basic_event'].publish(ev)
        pubs['/plain'].publish(String(data=f'p{i}'))
    info = wait_stored(peer, {t: 3 for t in cases}, node)
    for topic, (type_name, _, _) in cases.items():
        assert info[topic].type == type_name
    response = call(peer, ExportMcap, '/motedb/export_mcap',
                    ExportMcap.Request(output='typed'), node)
    assert response.success, response.message
    assert node.stop() == 0, node.log()
    assert 'without a message definition' not in node.log()

    want_hash = {t: share_type_hash(*c[2], c[0]) for t, c in cases.items()}
    bag = exports / 'typed'
    meta = yaml.safe_load((bag / 'metadata.yaml').read_text())['rosbag2_bagfile_information']
    listed = {t['topic_metadata']['name']: t['topic_metadata'] for t in meta['topics_with_message_count']}
    for topic in cases:
        assert listed[topic]['type_description_hash'] == want_hash[topic]
    # Decoded with the rosbags library's own ros2msg parser and CDR reader,
    # from nothing but the schema text in the bag.
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore
    store = get_typestore(Stores.EMPTY)
    decoded = {t: [] for t in cases}
    for path in sorted(bag.glob('*.mcap')):
        with open(path, 'rb') as f:
            for schema, channel, message in make_reader(f).iter_messages():
                if channel.topic not in cases:
                    continue
                assert schema.encoding == 'ros2msg'
                assert channel.metadata['topic_type_hash'] == want_hash[channel.topic]
                types = get_types_from_msg(schema.data.decode(), schema.name)
                store.register(types)
                # rosbags spells pkg/srv/X as pkg/srv/msg/X; its root comes first.
                root = next(iter(types))
                decoded[channel.topic].append(store.deserialize_cdr(message.data, root))
    assert [list(m.goal_id.uuid) for m in decoded['/fib_feedback']] == [[i] * 16 for i in range(3)]
    assert [list(m.feedback.sequence) for m in decoded['/fib_feedback']] == \
        [list(range(i + 2)) for i in range(3)]
    assert [m.info.sequence_number for m in decoded['/basic_event']] == [0, 1, 2]
    assert [(m.request[0].int32_value, m.request[0].string_value)
            for m in decoded['/basic_event']] == [(-i, f'q{i}') for i in range(3)]
    assert [m.response for m in decoded['/basic_event']] == [[], [], []]
    assert [m.data for m in decoded['/plain']] == ['p0', 'p1', 'p2']


def test_use_sim_time_stamps_log_time_from_clock(peer, start_node):
    """With use_sim_time nothing is stamped before the first /clock: the
    messages published before it are stored with the first clock time,
    never 0 or the wall clock. A clock that goes back (a simulator reset)
    is followed and reported."""
    node = start_node('-p', 'use_sim_time:=true', '-p', 'discovery_period_s:=0.2')
    clock = peer.create_publisher(Clock, '/clock', 10)
    pub = peer.create_publisher(String, '/simmed', reliable())
    wait_matched(peer, [pub, clock], node)
    for i in range(3):
        pub.publish(String(data=f'early{i}'))
    sim = Time(sec=1000, nanosec=500)

    def stored(n):
        def check():
            clock.publish(Clock(clock=current[0]))
            rclpy.spin_once(peer, timeout_sec=0.05)
            info = topics(peer, node).get('/simmed')
            return info is not None and info.message_count >= n
        return check
    current = [sim]
    assert spin_until(peer, stored(3), 30.0, node), node.log()
    got, _ = query_all(peer, node, topics=['/simmed'])
    assert [ns(m.log_time) for m in got] == [ns(sim)] * 3, [ns(m.log_time) for m in got]

    back = Time(sec=500, nanosec=0)
    current[0] = back
    deadline = time.monotonic() + 30.0
    while 'jumped back' not in node.log():
        assert time.monotonic() < deadline, node.log()
        clock.publish(Clock(clock=back))
        rclpy.spin_once(peer, timeout_sec=0.05)
    pub.publish(String(data='after reset'))
    assert spin_until(peer, stored(4), 30.0, node), node.log()
    got, _ = query_all(peer, node, topics=['/simmed'])
    # Stamped with the clock after the reset: oldest first by log time.
    assert [ns(m.log_time) for m in got] == [ns(back)] + [ns(sim)] * 3, \
        [ns(m.log_time) for m in got]
    assert node.stop() == 0, node.log()


def test_a_later_best_effort_publisher_is_recorded_after_a_resubscription(peer, start_node):
    """The topic is subscribed reliable (its only publisher is reliable);
    a best-effort publisher that appears later cannot match a reliable
    reader, so the recorder re-subscribes best effort, says so, and records
    both."""
    node = start_node('-p', 'discovery_period_s:=0.2')
    first = peer.create_publisher(String, '/qos_mix', reliable())
    wait_matched(peer, [first], node)
    best_effort = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.BEST_EFFORT)
    second = peer.create_publisher(String, '/qos_mix', best_effort)
    deadline = time.monotonic() + 30.0
    while 're-subscribed best effort' not in node.log():
        assert time.monotonic() < deadline, node.log()
        rclpy.spin_once(peer, timeout_sec=0.1)
    wait_matched(peer, [second, first], node)

    def both_recorded():
        second.publish(String(data='from best effort'))
        first.publish(String(data='from reliable'))
        rclpy.spin_once(peer, timeout_sec=0.05)
        got, _ = query_all(peer, node, topics=['/qos_mix'])
        data = {deserialize_message(bytes(m.data), String).data for m in got}
        return {'from best effort', 'from reliable'} <= data
    assert spin_until(peer, both_recorded, 30.0, node), node.log()
    assert node.stop() == 0, node.log()


def test_sigterm_during_an_export_cancels_it_and_leaves_nothing(peer, start_node, tmp_path):
    """A stop while an export runs cancels the export (its hidden partial
    directory removed, no bag published), and the node still exits 0 with
    its recording intact. MOTEDB_TEST_EXPORT_STALL holds the export at its
    first progress report until it is cancelled, so the stop surely comes
    while it runs."""
    exports = tmp_path / 'exports'
    store = tmp_path / 'store'
    node = start_node('-p', 'discovery_period_s:=0.2', '-p', f'export.directory:={exports}',
                      storage=store, env={'MOTEDB_TEST_EXPORT_STALL': '1'})
    pub = peer.create_publisher(String, '/during_export', reliable())
    wait_matched(peer, [pub], node)
    for i in range(5):
        pub.publish(String(data=f'x{i}'))
    wait_stored(peer, {'/during_export': 5}, node)
    client = peer.create_client(ExportMcap, '/motedb/export_mcap')
    assert client.wait_for_service(timeout_sec=30.0)
    client.call_async(ExportMcap.Request(output='stopped'))

    def partial_exists():
        return exports.is_dir() and any(p.name.startswith('.stopped.partial-')
                                        for p in exports.iterdir())
    assert spin_until(peer, partial_exists, 30.0, node), node.log()
    assert node.stop(signal.SIGTERM) == 0, node.log()
    assert list(exports.iterdir()) == []
    peer.destroy_client(client)
    # What was recorded is all there after the cancelled export.
    again = start_node('-p', 'discovery_period_s:=0.2', storage=store)
    assert topics(peer, again)['/during_export'].message_count == 5
    assert again.stop() == 0, again.log()


def test_sigterm_keeps_what_the_middleware_already_holds(peer, start_node, tmp_path):
    """Messages the node's reader has acknowledged but the recorder has not
    taken yet are taken and stored when the node stops.
    MOTEDB_TEST_RECORDER_FAULT=hold makes the recorder take nothing while it
    runs, so all of them are in that state when SIGTERM comes."""
    from rclpy.duration import Duration
    store = tmp_path / 'store'
    node = start_node('-p', 'discovery_period_s:=0.2', storage=store,
                      env={'MOTEDB_TEST_RECORDER_FAULT': 'hold'})
    pub = peer.create_publisher(String, '/held', reliable())
    wait_matched(peer, [pub], node)
    # The default subscription depth (10) holds all 8.
    for i in range(8):
        pub.publish(String(data=f'h{i}'))
    assert pub.wait_for_all_acked(Duration(seconds=30))
    assert topics(peer, node)['/held'].message_count == 0
    assert node.stop(signal.SIGTERM) == 0, node.log()
    peer.destroy_publisher(pub)
    again = start_node('-p', 'discovery_period_s:=0.2', storage=store)
    stored, _ = query_all(peer, again, topics=['/held'])
    assert [deserialize_message(bytes(m.data), String).data for m in stored] == \
        [f'h{i}' for i in range(8)]
    assert again.stop() == 0, again.log()
