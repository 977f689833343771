"""Event marks through the node: ~/mark (a window around now or given),
~/list_marks, ~/unpin, bad requests answered with a reason, marks that
survive kill -9, and marks published on places.mark_topic."""

import os
import signal
import time

from builtin_interfaces.msg import Time
from conftest import call, spin_until
from diagnostic_msgs.msg import DiagnosticArray
from motedb_interfaces.msg import Mark as MarkMsg
from motedb_interfaces.srv import ListMarks, Mark, Unpin
from peers import (last_status, latest, query_all, set_int_param, status_values, table_bytes,
                   topics, wait_matched, wait_stored)
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from rclpy.serialization import deserialize_message
from std_msgs.msg import String

SEC = 1_000_000_000


def ns(t):
    return t.sec * SEC + t.nanosec


def stamp(n):
    return Time(sec=n // SEC, nanosec=n % SEC)


def mark(peer, node, **fields):
    """~/mark as a careful client does it: ~/mark is not idempotent, so a
    call whose answer was lost (Fast DDS drops a reply to a client whose
    response reader the service has not matched yet) is repeated only after
    ~/list_marks shows the mark was not made."""
    for _ in range(3):
        try:
            return call(peer, Mark, '/motedb/mark', Mark.Request(**fields), node, attempts=1)
        except AssertionError as e:
            if 'no answer' not in str(e):
                raise
        made = [m for m in list_marks(peer, node) if m.label == fields.get('label')]
        if made:
            return Mark.Response(success=True, message='answer lost; found by ~/list_marks',
                                 mark=made[-1])
    raise AssertionError('no answer from /motedb/mark after 3 tries')


def list_marks(peer, node, **fields):
    response = call(peer, ListMarks, '/motedb/list_marks', ListMarks.Request(**fields), node)
    assert response.success, response.message
    return response.marks


def unpin(peer, node, mark_id):
    return call(peer, Unpin, '/motedb/unpin', Unpin.Request(id=mark_id), node)


def test_a_mark_around_now_is_listed_unpinned_and_survives_kill_9(peer, start_node, tmp_path):
    store = tmp_path / 'marks'
    node = start_node(storage=store)
    before = time.time_ns()
    got = mark(peer, node, label='estop', tags=['safety', 'bay3'], pre_s=3.0, post_s=1.5, pin=True)
    after = time.time_ns()
    assert got.success, got.message
    m = got.mark
    assert (m.id, m.label, list(m.tags), m.pinned, m.released) == \
        (1, 'estop', ['safety', 'bay3'], True, False)
    # The window is the node's now - 3 s .. now + 1.5 s.
    assert before - 3 * SEC <= ns(m.start) <= after - 3 * SEC
    assert ns(m.end) - ns(m.start) == 4_500_000_000
    given = mark(peer, node, label='dock', start=stamp(100 * SEC), end=stamp(102 * SEC))
    assert given.success, given.message
    assert (given.mark.id, ns(given.mark.start), ns(given.mark.end), given.mark.pinned) == \
        (2, 100 * SEC, 102 * SEC, False)

    assert [x.id for x in list_marks(peer, node)] == [1, 2]
    assert [x.id for x in list_marks(peer, node, tag='bay3')] == [1]
    assert [x.id for x in list_marks(peer, node, start=stamp(101 * SEC),
                                     end=stamp(200 * SEC))] == [2]
    # Kill -9: a mark is durable once ~/mark answered.
    node.proc.send_signal(signal.SIGKILL)
    node.proc.wait(timeout=20)
    node = start_node(storage=store)
    listed = list_marks(peer, node)
    assert [(x.id, x.label, x.pinned) for x in listed] == [(1, 'estop', True), (2, 'dock', False)]
    assert ns(listed[0].start) == ns(m.start) and ns(listed[0].end) == ns(m.end)

    done = unpin(peer, node, 1)
    # (A repeat after a lost answer says "not pinned": both mean unpinned.)
    assert done.success and not done.mark.pinned, done.message
    again = unpin(peer, node, 1)
    assert again.success and 'not pinned' in again.message
    assert not list_marks(peer, node)[0].pinned
    assert node.stop() == 0, node.log()


def test_bad_mark_requests_get_a_reason_and_store_nothing(peer, start_node):
    node = start_node()
    for fields, why in [
        (dict(label=''), 'needs a label'),
        (dict(label='x' * 300), 'at most 256'),
        (dict(label='a', tags=['']), 'a tag has'),
        (dict(label='a', pre_s=-1.0), 'pre_s must be'),
        (dict(label='a', post_s=float('nan')), 'post_s must be'),
        (dict(label='a', start=stamp(5 * SEC), end=stamp(9 * SEC), pre_s=1.0), 'not both'),
        (dict(label='a', start=stamp(9 * SEC), end=stamp(5 * SEC)), 'after end'),
        (dict(label='a', end=stamp(5 * SEC)), 'end without start'),
        (dict(label='a', start=Time(sec=-3)), 'not a valid time'),
        (dict(label='a', post_s=7200.0), 'at most 3600 s ahead'),
        (dict(label='two\nlines'), 'control character'),
    ]:
        got = mark(peer, node, **fields)
        assert not got.success, fields
        assert why in got.message, (fields, got.message)
    bad = unpin(peer, node, 7)
    assert not bad.success and 'no mark 7' in bad.message
    response = call(peer, ListMarks, '/motedb/list_marks',
                    ListMarks.Request(start=stamp(9 * SEC), end=stamp(5 * SEC)), node)
    assert not response.success and 'after end' in response.message
    assert list_marks(peer, node) == []
    assert node.stop() == 0, node.log()


def test_marks_published_on_the_mark_topic_are_made_and_the_topic_recorded(peer, start_node):
    # Only /other is selected: the mark topic is recorded all the same.
    node = start_node('-p', 'places.mark_topic:=/incidents', '-p', 'topics:=[/other]',
                      '-p', 'diagnostic_updater.period:=0.2', '-p', 'discovery_period_s:=0.1')
    seen = []
    sub = peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    pub = peer.create_publisher(MarkMsg, '/incidents', QoSProfile(
        depth=10, reliability=QoSReliabilityPolicy.RELIABLE))
    wait_matched(peer, [pub], node)
    pub.publish(MarkMsg(label='from-topic', tags=['bt'], pre_s=1.0, pin=True))
    pub.publish(MarkMsg(label=''))
    wait_stored(peer, {'/incidents': 2}, node)

    def made():
        return len(list_marks(peer, node)) >= 1
    assert spin_until(peer, made, 30.0, node)
    marks = list_marks(peer, node)
    assert [(m.label, list(m.tags), m.pinned) for m in marks] == [('from-topic', ['bt'], True)]
    assert ns(marks[0].end) - ns(marks[0].start) == SEC
    # The window ends at the message's log time: when it was received.
    stored = topics(peer, node)['/incidents']
    assert ns(stored.first_time) == ns(marks[0].end)

    def refused():
        status = last_status(seen, 'recorder')
        return status is not None and any(
            kv.key == 'last_error' and 'mark refused' in kv.value for kv in status.values)
    assert spin_until(peer, refused, 30.0, node), 'the empty label was not reported'
    peer.destroy_subscription(sub)
    peer.destroy_publisher(pub)
    assert node.stop() == 0, node.log()


def test_a_pinned_window_outlives_retention_until_unpinned(peer, start_node):
    """Retention pressure on a running node: a pinned window's messages stay
    while older and newer ones go; once unpinned, retention drops them."""
    # A table every 512 KiB (half the memtable): 27 of these messages.
    node = start_node('-p', 'storage.memtable_bytes:=1048576', '-p', 'subscription_depth:=200',
                      '-p', 'diagnostic_updater.period:=0.2', '-p', 'topics:=[/bulk]')
    seen = []
    peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    pub = peer.create_publisher(String, '/bulk', QoSProfile(
        depth=200, reliability=QoSReliabilityPolicy.RELIABLE))
    wait_matched(peer, [pub], node)
    sent = 0

    def burst(n):
        """n messages of 20 kB of random hex (so tables are really that
        big), paced at 200 Hz: the robot's rate, not a wait on DDS."""
        nonlocal sent
        for _ in range(n):
            pub.publish(String(data=f'{sent:06d}' + os.urandom(10_000).hex()))
            sent += 1
            time.sleep(0.005)
        # Retention may drop older ones meanwhile: wait for the last.

        def newest_stored():
            r = latest(peer, '/bulk', node_proc=node)
            return r.found and deserialize_message(
                bytes(r.record.data), String).data.startswith(f'{sent - 1:06d}')
        assert spin_until(peer, newest_stored, 30.0, node), f'message {sent - 1} not stored'

    def times():
        messages, _ = query_all(peer, node, topics=['/bulk'], max_messages=500)
        return [ns(m.log_time) for m in messages]

    def l0_files():
        return int(status_values(seen, 'compaction').get('l0_files', 0))

    # Three tables: messages 0-26, 27-53 (the pinned window, 40-49), 54-80;
    # fewer than four, so no compaction merges them.
    burst(60)
    first = times()
    window = first[40:50]
    got = mark(peer, node, label='keep', start=stamp(window[0]), end=stamp(window[-1]), pin=True)
    assert got.success, got.message
    burst(30)
    assert spin_until(peer, lambda: l0_files() == 3, 30.0, node), f'{l0_files()} L0 files'
    tables = table_bytes(seen)
    # Room for 60 % of the tables: the oldest goes, the pinned one stays
    # (within the pin budget), so the newest table goes too.
    limit = tables * 6 // 10
    set_int_param(peer, node, 'retention.pinned_max_bytes', limit - 1)
    set_int_param(peer, node, 'retention.max_bytes', limit)

    def dropped_around_the_pin():
        left = set(times())
        return first[0] not in left and first[-1] not in left
    assert spin_until(peer, dropped_around_the_pin, 30.0, node), 'retention dropped nothing'
    left = set(times())
    kept = [t in left for t in window]
    assert all(kept), ('pinned messages were dropped', kept, tables, limit,
                       [(m.pinned, m.released) for m in list_marks(peer, node)])
    assert not list_marks(peer, node)[0].released

    assert unpin(peer, node, got.mark.id).success
    burst(30)  # a new table: retention runs again, with the pin gone

    def window_gone():
        return not set(window) & set(times())
    assert spin_until(peer, window_gone, 30.0, node), 'unpinned messages were kept'
    assert node.stop() == 0, node.log()
