"""Declared parameters as ROS users expect them, driven from rclpy: list,
describe, get; read-only and bad values refused with nothing changed; live
values take effect while the node runs. Both client library builds answer
alike: each checks a set before it happens and describes every parameter."""

import time

from conftest import call, spin_until
from peers import last_status
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import (DescribeParameters, GetParameters, GetParameterTypes,
                                ListParameters, SetParameters, SetParametersAtomically)

LIVE = ['diagnostic_updater.period', 'topics', 'include_regex', 'exclude_regex',
        'discovery_period_s', 'retention.max_bytes', 'retention.max_age_s',
        'query.max_messages', 'query.max_bytes', 'include_hidden_topics',
        'storage.min_free_bytes']
READ_ONLY = ['storage.path', 'hardware_id', 'queue.capacity', 'durability.mode',
             'durability.sync_interval_ms', 'export.directory', 'queue.max_bytes',
             'subscription_depth', 'storage.value_compression']


def value(kind, v):
    field = {ParameterType.PARAMETER_BOOL: 'bool_value',
             ParameterType.PARAMETER_STRING: 'string_value',
             ParameterType.PARAMETER_INTEGER: 'integer_value',
             ParameterType.PARAMETER_DOUBLE: 'double_value'}[kind]
    return ParameterValue(type=kind, **{field: v})


def set_one(peer, node, name, kind, v):
    request = SetParameters.Request(parameters=[Parameter(name=name, value=value(kind, v))])
    response = call(peer, SetParameters, '/motedb/set_parameters', request, node)
    assert len(response.results) == 1
    return response.results[0]


def get(peer, node, name):
    response = call(peer, GetParameters, '/motedb/get_parameters',
                    GetParameters.Request(names=[name]), node)
    v = response.values[0]
    return {ParameterType.PARAMETER_STRING: v.string_value,
            ParameterType.PARAMETER_INTEGER: v.integer_value,
            ParameterType.PARAMETER_DOUBLE: v.double_value}.get(v.type, v)


def rclpy_spin(peer):
    import rclpy
    rclpy.spin_once(peer, timeout_sec=0.1)


def test_every_parameter_is_listed_and_described(peer, start_node):
    node = start_node()
    names = call(peer, ListParameters, '/motedb/list_parameters',
                 ListParameters.Request(), node).result.names
    assert set(LIVE + READ_ONLY) <= set(names), names
    response = call(peer, DescribeParameters, '/motedb/describe_parameters',
                    DescribeParameters.Request(names=LIVE + READ_ONLY), node)
    by_name = {d.name: d for d in response.descriptors}
    for name in LIVE:
        assert not by_name[name].read_only, name
        assert by_name[name].description, name
    for name in READ_ONLY:
        assert by_name[name].read_only, name
    ranges = by_name['query.max_messages'].integer_range
    assert len(ranges) == 1 and ranges[0].from_value == 1
    assert by_name['retention.max_age_s'].floating_point_range[0].from_value == 0.0
    assert node.stop() == 0, node.log()


def test_read_only_and_bad_values_are_refused_and_change_nothing(peer, start_node, tmp_path):
    node = start_node()
    cases = [
        ('storage.path', ParameterType.PARAMETER_STRING, '/elsewhere', str(tmp_path / 'store')),
        ('durability.mode', ParameterType.PARAMETER_STRING, 'fast', 'periodic'),
        ('storage.value_compression', ParameterType.PARAMETER_STRING, 'gzip', 'zstd'),
        ('discovery_period_s', ParameterType.PARAMETER_DOUBLE, -1.0, 0.1),
        ('query.max_messages', ParameterType.PARAMETER_INTEGER, 0, 1000),
        ('query.max_messages', ParameterType.PARAMETER_STRING, 'ten', 1000),
        ('include_regex', ParameterType.PARAMETER_STRING, '(unclosed', ''),
    ]
    for name, kind, bad, before in cases:
        result = set_one(peer, node, name, kind, bad)
        assert not result.successful, (name, bad)
        assert result.reason, (name, bad)
        assert get(peer, node, name) == before, (name, bad)
    assert node.proc.poll() is None, node.log()
    assert node.stop() == 0, node.log()


def test_live_values_take_effect(peer, start_node):
    node = start_node('-p', 'diagnostic_updater.period:=0.2')
    result = set_one(peer, node, 'retention.max_bytes', ParameterType.PARAMETER_INTEGER, 12345678)
    assert result.successful, result.reason
    assert get(peer, node, 'retention.max_bytes') == 12345678
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 10)
    try:
        def quota_followed():
            for m in seen:
                for s in m.status:
                    if s.name == 'motedb: storage':
                        values = {kv.key: kv.value for kv in s.values}
                        if values.get('quota_bytes') == '12345678':
                            return True
            return False
        assert spin_until(peer, quota_followed, 30.0, node), node.log()
    finally:
        peer.destroy_subscription(sub)
    result = set_one(peer, node, 'query.max_messages', ParameterType.PARAMETER_INTEGER, 5)
    assert result.successful, result.reason
    assert get(peer, node, 'query.max_messages') == 5
    assert node.stop() == 0, node.log()


def test_atomic_set_changes_all_or_nothing(peer, start_node):
    node = start_node()
    good = Parameter(name='query.max_messages',
                     value=value(ParameterType.PARAMETER_INTEGER, 7))
    bad = Parameter(name='query.max_bytes', value=value(ParameterType.PARAMETER_INTEGER, 0))
    response = call(peer, SetParametersAtomically, '/motedb/set_parameters_atomically',
                    SetParametersAtomically.Request(parameters=[good, bad]), node)
    assert not response.result.successful
    assert response.result.reason
    assert get(peer, node, 'query.max_messages') == 1000
    response = call(peer, SetParametersAtomically, '/motedb/set_parameters_atomically',
                    SetParametersAtomically.Request(parameters=[good]), node)
    assert response.result.successful, response.result.reason
    assert get(peer, node, 'query.max_messages') == 7
    assert node.stop() == 0, node.log()


def test_listing_by_prefix_and_depth_follows_rclcpp(peer, start_node):
    node = start_node()
    result = call(peer, ListParameters, '/motedb/list_parameters',
                  ListParameters.Request(prefixes=['retention'], depth=1), node).result
    assert set(result.names) == {'retention.max_bytes', 'retention.max_age_s',
                                 'retention.pinned_max_bytes',
                                 'retention.require_offloaded'}, result.names
    assert list(result.prefixes) == ['retention']
    result = call(peer, ListParameters, '/motedb/list_parameters',
                  ListParameters.Request(depth=1), node).result
    assert 'topics' in result.names and 'retention.max_bytes' not in result.names
    types = call(peer, GetParameterTypes, '/motedb/get_parameter_types',
                 GetParameterTypes.Request(names=['topics', 'query.max_bytes', 'nope']),
                 node).types
    assert list(types) == [ParameterType.PARAMETER_STRING_ARRAY,
                           ParameterType.PARAMETER_INTEGER, ParameterType.PARAMETER_NOT_SET]
    assert node.stop() == 0, node.log()


def test_unknown_names_get_a_warning_naming_them(peer, start_node):
    node = start_node('-p', 'retention.max_byte:=5')
    call(peer, ListParameters, '/motedb/list_parameters', ListParameters.Request(), node)
    deadline = time.monotonic() + 10.0
    while 'retention.max_byte is not a motedb parameter' not in node.log():
        assert time.monotonic() < deadline, node.log()
        rclpy_spin(peer)
    assert node.stop() == 0, node.log()


def test_topic_selection_changes_while_recording(peer, start_node):
    """include_regex set at run time: a newly selected topic is subscribed
    at the next discovery pass and one no longer selected is dropped."""
    from peers import wait_matched
    from std_msgs.msg import String
    node = start_node('-p', 'include_regex:=^/live_b$', '-p', 'discovery_period_s:=0.1')
    pub_a = peer.create_publisher(String, '/live_a', 10)
    pub_b = peer.create_publisher(String, '/live_b', 10)
    wait_matched(peer, [pub_b], node)
    assert pub_a.get_subscription_count() == 0
    result = set_one(peer, node, 'include_regex', ParameterType.PARAMETER_STRING,
                     '^/live_(a|b)$')
    assert result.successful, result.reason
    wait_matched(peer, [pub_a], node)
    result = set_one(peer, node, 'include_regex', ParameterType.PARAMETER_STRING, '^/live_a$')
    assert result.successful, result.reason
    assert spin_until(peer, lambda: pub_b.get_subscription_count() == 0, 30.0, node), node.log()
    assert pub_a.get_subscription_count() == 1
    assert node.stop() == 0, node.log()


def test_hidden_topics_are_recorded_only_when_asked(peer, start_node):
    """Like rosbag2: a topic with a name part starting with '_' is left out
    of "record everything" until include_hidden_topics is set."""
    from peers import wait_matched
    from std_msgs.msg import String
    node = start_node()
    hidden = peer.create_publisher(String, '/_hidden_state', 10)
    shown = peer.create_publisher(String, '/shown_state', 10)
    wait_matched(peer, [shown], node)
    # The hidden one was on the graph for the same discovery passes.
    assert hidden.get_subscription_count() == 0
    result = set_one(peer, node, 'include_hidden_topics', ParameterType.PARAMETER_BOOL, True)
    assert result.successful, result.reason
    wait_matched(peer, [hidden], node)
    assert node.stop() == 0, node.log()


def test_min_free_space_stops_writing_with_an_error_and_resumes(peer, start_node):
    """storage.min_free_bytes above the disk's free space: writing stops
    (drops counted, ERROR naming the free space, node alive); lowered to 0
    while running, writing resumes."""
    from diagnostic_msgs.msg import DiagnosticStatus
    from peers import wait_matched, wait_stored
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from std_msgs.msg import String
    node = start_node('-p', 'diagnostic_updater.period:=0.2',
                      '-p', f'storage.min_free_bytes:={1 << 62}')
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 10)
    pub = peer.create_publisher(
        String, '/guarded', QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE))
    try:
        wait_matched(peer, [pub], node)
        for i in range(5):
            pub.publish(String(data=f'd{i}'))

        def stopped_and_dropped():
            s = last_status(seen, 'storage')
            if s is None or s.level != DiagnosticStatus.ERROR:
                return False
            values = {kv.key: kv.value for kv in s.values}
            return ('min_free_bytes' in s.message and values['disk_free_bytes'] != ''
                    and int(values['messages_dropped']) >= 5)
        assert spin_until(peer, stopped_and_dropped, 30.0, node), node.log()
        result = set_one(peer, node, 'storage.min_free_bytes',
                         ParameterType.PARAMETER_INTEGER, 0)
        assert result.successful, result.reason

        def resumed():
            s = last_status(seen, 'storage')
            return s is not None and s.level == DiagnosticStatus.OK
        assert spin_until(peer, resumed, 30.0, node), node.log()
        for i in range(5):
            pub.publish(String(data=f'k{i}'))
        got = wait_stored(peer, {'/guarded': 5}, node)
        assert got['/guarded'].message_count == 5
    finally:
        peer.destroy_subscription(sub)
    assert node.stop() == 0, node.log()
