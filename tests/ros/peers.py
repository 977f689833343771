"""rclpy helpers for the recording tests: publishers that wait for the
recorder, and typed service calls against motedb."""

import time

import rclpy
from conftest import call
from motedb_interfaces.srv import GetLatest, ListTopics, QueryRange
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

MATCH_TIMEOUT_S = 30.0
STORE_TIMEOUT_S = 30.0


def wait_matched(peer, publishers, node_proc=None):
    """Spins until every publisher sees a subscriber (the recorder)."""
    deadline = time.monotonic() + MATCH_TIMEOUT_S
    while any(p.get_subscription_count() == 0 for p in publishers):
        if node_proc is not None:
            node_proc.assert_running()
        assert time.monotonic() < deadline, 'recorder never subscribed'
        rclpy.spin_once(peer, timeout_sec=0.1)


def topics(peer, node_proc=None, prefix='/motedb'):
    response = call(peer, ListTopics, f'{prefix}/list_topics', ListTopics.Request(), node_proc)
    return {t.name: t for t in response.topics}


def wait_stored(peer, expected, node_proc=None, prefix='/motedb'):
    """Polls ~/list_topics until each topic holds at least its expected
    count; returns the last TopicInfo map."""
    deadline = time.monotonic() + STORE_TIMEOUT_S
    while True:
        seen = topics(peer, node_proc, prefix)
        if all(name in seen and seen[name].message_count >= n for name, n in expected.items()):
            return seen
        counts = {n: (seen[n].message_count if n in seen else None) for n in expected}
        assert time.monotonic() < deadline, f'stored counts {counts}, expected {expected}'
        rclpy.spin_once(peer, timeout_sec=0.1)


def query(peer, node_proc=None, prefix='/motedb', **fields):
    return call(peer, QueryRange, f'{prefix}/query_range', QueryRange.Request(**fields), node_proc)


def query_all(peer, node_proc=None, **fields):
    """Follows next_cursor to the end; returns every message."""
    out, cursor, pages = [], '', 0
    while True:
        response = query(peer, node_proc, cursor=cursor, **fields)
        assert response.success, response.message
        out.extend(response.messages)
        pages += 1
        cursor = response.next_cursor
        if not cursor:
            return out, pages


def latest(peer, topic, at=None, node_proc=None):
    request = GetLatest.Request(topic=topic)
    if at is not None:
        request.at = at
    return call(peer, GetLatest, '/motedb/get_latest', request, node_proc)


def last_status(seen, task):
    """The newest status of `task` (storage, compaction, recorder) among
    the DiagnosticArray messages in `seen`, or None."""
    for m in reversed(seen):
        for s in m.status:
            if s.name.endswith(task):
                return s
    return None


def set_int_param(peer, node_proc, name, v):
    """Sets one integer parameter of /motedb; asserts it was accepted."""
    request = SetParameters.Request(parameters=[Parameter(name=name, value=ParameterValue(
        type=ParameterType.PARAMETER_INTEGER, integer_value=v))])
    result = call(peer, SetParameters, '/motedb/set_parameters', request, node_proc).results[0]
    assert result.successful, (name, v, result.reason)


def status_values(seen, task):
    """The key/value pairs of the newest status of `task` in `seen` ({}
    before there is one)."""
    status = last_status(seen, task)
    return {kv.key: kv.value for kv in status.values} if status else {}


def table_bytes(seen):
    """Bytes in tables and value-log files (what retention counts) by the
    newest storage status in `seen`: disk_bytes less the WAL."""
    values = status_values(seen, 'storage')
    assert values, 'no storage status yet'
    return int(values['disk_bytes']) - int(values['wal_bytes'])
