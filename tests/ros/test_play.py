"""`motedb play` round trip: a stream recorded by one motedb_node, played
into a second one, arrives complete, in order, decoding equal, with the
recorded spacing at rate 1 and half of it at rate 2."""

import json
import shutil
import signal
import statistics
import subprocess
import time

from conftest import spin_until
from peers import query_all, topics, wait_matched, wait_stored
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String

FAST, SLOW = 60, 12   # messages on /fast (every 20 ms) and /slow (every 100 ms)
PLAY_TIMEOUT_S = 60.0
# Per-gap tolerance between the recorded and the replayed spacing: the
# player's schedule plus two trips through DDS and the recorder, on a
# shared 2-core machine.
GAP_TOLERANCE_MS = 25.0
MEDIAN_TOLERANCE_MS = 3.0


def motedb_cli():
    """The CLI built with ROS, which scripts/setup installs into the venv
    (target/release/motedb may be a later build without ROS)."""
    exe = shutil.which('motedb')
    assert exe, 'motedb not found: run scripts/setup and source scripts/ros-env.sh'
    return exe


def record_source(peer, start_node, store):
    """Node A records /fast and /slow from this test's publishers."""
    node = start_node('-p', 'subscription_depth:=100', storage=store)
    qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
    fast = peer.create_publisher(String, '/fast', qos)
    slow = peer.create_publisher(String, '/slow', qos)
    wait_matched(peer, [fast, slow], node)
    for i in range(FAST):
        fast.publish(String(data=f'fast {i}'))
        if i % 5 == 0:
            slow.publish(String(data=f'slow {i // 5}'))
        time.sleep(0.02)  # the stream's own pace, not a wait on DDS
    wait_stored(peer, {'/fast': FAST, '/slow': SLOW}, node)
    recorded = {t: query_all(peer, node, topics=[t])[0] for t in ('/fast', '/slow')}
    peer.destroy_publisher(fast)
    peer.destroy_publisher(slow)
    assert node.stop() == 0, node.log()
    return recorded


def play_into_second_node(peer, start_node, source, target, rate):
    node = start_node('-p', 'subscription_depth:=100', '-p', 'topics:=[/fast, /slow]',
                      storage=target)
    player = subprocess.run(
        [motedb_cli(), '--json', 'play', str(source), '--rate', str(rate),
         '--wait-for-subscribers', '30'],
        capture_output=True, text=True, timeout=PLAY_TIMEOUT_S)
    assert player.returncode == 0, player.stderr
    report = json.loads(player.stdout)
    assert report['published'] == FAST + SLOW, report
    assert report['all_acked'], report
    wait_stored(peer, {'/fast': FAST, '/slow': SLOW}, node)
    replayed = {t: query_all(peer, node, topics=[t])[0] for t in ('/fast', '/slow')}
    assert node.stop() == 0, node.log()
    return replayed, report


def gaps_ms(messages):
    t = [m.log_time.sec * 1e3 + m.log_time.nanosec / 1e6 for m in messages]
    return [b - a for a, b in zip(t, t[1:])]


def check(recorded, replayed, rate):
    for topic in ('/fast', '/slow'):
        a, b = recorded[topic], replayed[topic]
        # Same messages, same order, byte for byte (so decoding equal).
        assert [bytes(m.data) for m in b] == [bytes(m.data) for m in a], topic
        assert all(m.type == 'std_msgs/msg/String' for m in b)
        want = [g / rate for g in gaps_ms(a)]
        got = gaps_ms(b)
        errors = [abs(x - y) for x, y in zip(got, want)]
        assert statistics.median(errors) <= MEDIAN_TOLERANCE_MS, (topic, rate, errors)
        assert max(errors) <= GAP_TOLERANCE_MS, (topic, rate, errors)


def test_a_played_store_arrives_complete_in_order_with_its_timing(peer, start_node, tmp_path):
    source = tmp_path / 'source'
    recorded = record_source(peer, start_node, source)
    for rate in (1.0, 2.0):
        replayed, report = play_into_second_node(
            peer, start_node, source, tmp_path / f'replayed-{rate}', rate)
        check(recorded, replayed, rate)

    # Ctrl-C while it waits for a subscriber nobody provides: exit 130.
    player = subprocess.Popen(
        [motedb_cli(), 'play', str(source), '--wait-for-subscribers', '60'],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert spin_until(peer, lambda: peer.get_publishers_info_by_topic('/fast'), 30.0), \
            'the player never created its publishers'
        player.send_signal(signal.SIGINT)
        assert player.wait(timeout=10) == 130, player.stderr.read()
    finally:
        if player.poll() is None:
            player.kill()


def test_bad_play_arguments_get_a_reason_and_an_exit_code(tmp_path, start_node, peer):
    source = tmp_path / 'source'
    node = start_node(storage=source)
    topics(peer, node)  # answered: the store is open
    assert node.stop(signal.SIGTERM) == 0, node.log()
    for argv, code, why in [
            (['play', str(tmp_path / 'missing')], 4, 'no store'),
            (['play', str(source), '--rate', '0'], 2, 'rate must be'),
            (['play', str(source), '--rate', 'nan'], 2, 'rate must be'),
            (['play', str(source), '--topic', '/nope'], 4, 'no topic /nope'),
            (['play', str(source), '--delay', '-1'], 2, '--delay must be')]:
        out = subprocess.run([motedb_cli(), *argv], capture_output=True, text=True, timeout=30)
        assert out.returncode == code, (argv, out.returncode, out.stderr)
        assert why in out.stderr, (argv, out.stderr)
