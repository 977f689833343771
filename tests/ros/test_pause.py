"""Pause and resume (~/pause, ~/resume, ~/is_paused, start_paused), as
rosbag2's recorder has them: while paused the recorder stays subscribed and
discards what arrives; nothing of it is stored or counted as a loss."""

from conftest import call, spin_until
from diagnostic_msgs.msg import DiagnosticArray
from motedb_interfaces.srv import IsPaused
from peers import last_status, query_all, wait_matched, wait_stored
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from rclpy.serialization import deserialize_message
from std_msgs.msg import String
from std_srvs.srv import Trigger

TOPIC = '/pause_test'


def recorder_values(seen):
    status = last_status(seen, 'recorder')
    return None if status is None else (status, {kv.key: kv.value for kv in status.values})


def wait_skipped(peer, seen, count, node):
    """Until the recorder status says `count` messages were discarded."""
    def done():
        got = recorder_values(seen)
        return got is not None and int(got[1]['skipped_while_paused']) >= count
    assert spin_until(peer, done, 30.0, node), recorder_values(seen)
    status, values = recorder_values(seen)
    assert int(values['skipped_while_paused']) == count, values
    return status, values


def is_paused(peer, node):
    return call(peer, IsPaused, '/motedb/is_paused', IsPaused.Request(), node).paused


def trigger(peer, name, node):
    response = call(peer, Trigger, f'/motedb/{name}', Trigger.Request(), node)
    assert response.success, response.message
    return response.message


def publish(pub, prefix, n):
    for i in range(n):
        pub.publish(String(data=f'{prefix}{i}'))


def test_paused_messages_are_discarded_and_resume_records_again(peer, start_node):
    node = start_node('-p', 'start_paused:=true', '-p', 'diagnostic_updater.period:=0.2',
                      '-p', 'discovery_period_s:=0.1')
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    pub = peer.create_publisher(String, TOPIC, QoSProfile(
        depth=100, reliability=QoSReliabilityPolicy.RELIABLE,
        durability=QoSDurabilityPolicy.VOLATILE))
    wait_matched(peer, [pub], node)
    assert is_paused(peer, node)

    # Started paused: taken and discarded, and the status says so.
    publish(pub, 'before', 5)
    status, values = wait_skipped(peer, seen, 5, node)
    assert values['paused'] == 'true'
    assert 'paused' in status.message
    assert trigger(peer, 'pause', node) == 'already paused'

    assert trigger(peer, 'resume', node) == 'recording'
    assert not is_paused(peer, node)
    assert trigger(peer, 'resume', node) == 'already recording'
    publish(pub, 'kept', 5)
    wait_stored(peer, {TOPIC: 5}, node)

    # Paused again while recording.
    assert trigger(peer, 'pause', node).startswith('paused')
    assert is_paused(peer, node)
    publish(pub, 'during', 4)
    wait_skipped(peer, seen, 9, node)

    assert trigger(peer, 'resume', node) == 'recording'
    publish(pub, 'after', 1)
    wait_stored(peer, {TOPIC: 6}, node)
    got, _ = query_all(peer, node, topics=[TOPIC])
    assert [deserialize_message(bytes(m.data), String).data for m in got] == \
        [f'kept{i}' for i in range(5)] + ['after0']

    # Discarding on purpose is not a loss.
    def resumed():
        got = recorder_values(seen)
        return got is not None and got[1]['paused'] == 'false'
    assert spin_until(peer, resumed, 30.0, node), recorder_values(seen)
    _, values = recorder_values(seen)
    # Gaps are counted (else 0 gaps would prove nothing).
    assert values['gap_detection'] == 'on', values
    assert values['messages_dropped'] == '0', values
    assert values['gaps_detected'] == '0', values
    assert int(values['skipped_while_paused']) == 9, values
    peer.destroy_subscription(sub)
    peer.destroy_publisher(pub)
    assert node.stop() == 0, node.log()
