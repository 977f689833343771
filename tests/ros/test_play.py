"""`motedb play` round trip: a stream recorded by one motedb_node, played
into a second one (from the store, from its exported bag and from a bag the
`rosbags` library wrote), arrives complete, in order, decoding equal, with
the recorded spacing at rate 1 and half of it at rate 2. Then the player's
controls: its services, --start-paused, --remap, --clock, --loop, QoS
overrides, and bad input."""

import json
import shutil
import signal
import statistics
import subprocess
import time

import rclpy
from conftest import call, spin_until
from motedb_interfaces.srv import IsPaused, SetRate
from peers import query_all, topics, wait_matched, wait_stored
from rclpy.serialization import deserialize_message
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as BagWriter
from rosbags.typesys import Stores, get_typestore
from rosgraph_msgs.msg import Clock
from std_msgs.msg import String
from std_srvs.srv import Trigger

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


def write_rosbags_bag(path, stamped):
    """A bag as the rosbags library writes it (v9, MCAP): {topic: [(log
    time ns, std_msgs/String text)]}."""
    typestore = get_typestore(Stores.ROS2_JAZZY)
    msg_type = typestore.types['std_msgs/msg/String']
    w = BagWriter(path, version=9, storage_plugin=StoragePlugin.MCAP)
    w.open()
    for topic, messages in stamped.items():
        conn = w.add_connection(topic, 'std_msgs/msg/String', typestore=typestore)
        for t, text in messages:
            w.write(conn, t, typestore.serialize_cdr(msg_type(data=text), 'std_msgs/msg/String'))
    w.close()


def stamp_ns(m):
    return m.log_time.sec * 1_000_000_000 + m.log_time.nanosec


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


def gaps_ms(messages, stamp='log_time'):
    t = [getattr(m, stamp).sec * 1e3 + getattr(m, stamp).nanosec / 1e6 for m in messages]
    return [b - a for a, b in zip(t, t[1:])]


def misses(got, want, sent, limit):
    """The gaps off by more than `limit`, each as (index, replayed, wanted,
    as the player sent it): a stall in the player shows in `sent` too, one
    on the way through DDS does not. At most 8."""
    return [(i, round(g, 1), round(w, 1), round(s, 1))
            for i, (g, w, s) in enumerate(zip(got, want, sent)) if abs(g - w) > limit][:8]


def check(recorded, replayed, rate, report):
    for topic in ('/fast', '/slow'):
        a, b = recorded[topic], replayed[topic]
        # Same messages, same order, byte for byte (so decoding equal).
        assert [bytes(m.data) for m in b] == [bytes(m.data) for m in a], topic
        assert all(m.type == 'std_msgs/msg/String' for m in b)
        want = [g / rate for g in gaps_ms(a)]
        got = gaps_ms(b)
        sent = gaps_ms(b, 'publish_time')
        errors = [abs(x - y) for x, y in zip(got, want)]
        why = (topic, rate, misses(got, want, sent, MEDIAN_TOLERANCE_MS),
               {k: v for k, v in report.items() if k.startswith('late')})
        assert statistics.median(errors) <= MEDIAN_TOLERANCE_MS, why
        assert max(errors) <= GAP_TOLERANCE_MS, why


def test_a_played_store_arrives_complete_in_order_with_its_timing(peer, start_node, tmp_path):
    source = tmp_path / 'source'
    recorded = record_source(peer, start_node, source)
    for rate in (1.0, 2.0):
        replayed, report = play_into_second_node(
            peer, start_node, source, tmp_path / f'replayed-{rate}', rate)
        check(recorded, replayed, rate, report)

    # The same stream from the bag `motedb export` wrote, and from a bag
    # the rosbags library wrote with the recorded log times.
    exported = tmp_path / 'exported'
    out = subprocess.run([motedb_cli(), 'export', str(source), str(exported)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    theirs = tmp_path / 'theirs'
    write_rosbags_bag(theirs, {
        t: [(stamp_ns(m), deserialize_message(bytes(m.data), String).data) for m in recorded[t]]
        for t in recorded})
    for name, bag in (('exported', exported), ('rosbags', theirs)):
        replayed, report = play_into_second_node(
            peer, start_node, bag, tmp_path / f'replayed-{name}', 1.0)
        check(recorded, replayed, 1.0, report)

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


T0 = 1_700_000_000_000_000_000
TICKS = 40
TICK_NS = 50_000_000  # 20 Hz in the bag


def tick_bag(path, n=TICKS):
    write_rosbags_bag(path, {'/tick': [(T0 + i * TICK_NS, f'tick {i}') for i in range(n)]})


def start_player(*argv):
    return subprocess.Popen([motedb_cli(), *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_publishers(peer, subscriptions, timeout_s=30.0):
    """Spins until every subscription has matched a publisher. The player's
    --wait-for-subscribers sees only its writer's side matched, and this
    only the reader's; a volatile reader misses what a writer sent before
    both sides matched, so the tests with rclpy subscribers start the
    player paused with --wait-for-subscribers and resume it once this
    holds too."""
    assert spin_until(peer, lambda: all(s.get_publisher_count() > 0 for s in subscriptions),
                      timeout_s), 'the player\'s publishers never matched'


def resume(peer, node_name='motedb_player'):
    r = call(peer, Trigger, f'/{node_name}/resume', Trigger.Request())
    assert r.success, r.message


def finish(player, timeout=PLAY_TIMEOUT_S):
    try:
        out, err = player.communicate(timeout=timeout)
    finally:
        if player.poll() is None:
            player.kill()
    return player.returncode, out, err


def test_the_player_follows_its_services_remap_clock_and_qos_overrides(peer, tmp_path):
    bag = tmp_path / 'ticks'
    tick_bag(bag)
    overrides = tmp_path / 'qos.yaml'
    overrides.write_text('/tick:\n  durability: transient_local\n  depth: 7\n')
    got, clocks = [], []
    qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
    tock = peer.create_subscription(String, '/tock', lambda m: got.append(m.data), qos)
    # /clock is best effort, as rclcpp's ClockQoS.
    peer.create_subscription(Clock, '/clock', lambda m: clocks.append(
        m.clock.sec * 1_000_000_000 + m.clock.nanosec),
        QoSProfile(depth=10, reliability=QoSReliabilityPolicy.BEST_EFFORT))
    player = start_player('--json', 'play', bag, '--start-paused', '--remap', '/tick:=/tock',
                          '--clock', '100', '--node-name', 'test_player',
                          '--qos-profile-overrides-path', overrides,
                          '--wait-for-subscribers', '30', '--scratch', tmp_path / 'scratch')
    try:
        svc = '/test_player/'
        assert call(peer, IsPaused, svc + 'is_paused', IsPaused.Request()).paused
        # The remapped publisher carries the overridden QoS (the graph shows
        # durability and reliability, not the depth).
        assert spin_until(peer, lambda: peer.get_publishers_info_by_topic('/tock'), 30.0)
        (info,) = peer.get_publishers_info_by_topic('/tock')
        assert info.qos_profile.durability == QoSDurabilityPolicy.TRANSIENT_LOCAL
        assert not peer.get_publishers_info_by_topic('/tick'), 'published under the old name'
        wait_publishers(peer, [tock])
        # Paused, /clock holds at the first message's time.
        assert spin_until(peer, lambda: len(clocks) >= 5, 30.0), 'no /clock while paused'
        assert set(clocks) == {T0}, clocks
        # play_next publishes exactly the next message, one per call.
        for i in range(3):
            r = call(peer, Trigger, svc + 'play_next', Trigger.Request())
            assert r.success, r.message
            assert r.message.endswith(f'{T0 // 10**9}.{i * TICK_NS:09}'), r.message
            assert spin_until(peer, lambda: len(got) == i + 1, 10.0), got
        assert got == ['tick 0', 'tick 1', 'tick 2']
        assert not call(peer, SetRate, svc + 'set_rate', SetRate.Request(rate=0.0)).success
        # Half speed (100 ms apart), so most of the bag is left at the pause.
        assert call(peer, SetRate, svc + 'set_rate', SetRate.Request(rate=0.5)).success
        r = call(peer, Trigger, svc + 'resume', Trigger.Request())
        assert r.success and r.message == 'resumed', r.message
        assert spin_until(peer, lambda: len(got) >= 6, 10.0), got
        r = call(peer, Trigger, svc + 'pause', Trigger.Request())
        assert r.message == 'paused', r.message
        assert call(peer, IsPaused, svc + 'is_paused', IsPaused.Request()).paused
        # play_next while paused publishes the message after the last one
        # sent: nothing was skipped or sent twice by the pause.
        r = call(peer, Trigger, svc + 'play_next', Trigger.Request())
        assert r.success, r.message
        k = (int(r.message.rsplit(' ', 1)[1].replace('.', '')) - T0) // TICK_NS
        assert 6 <= k < TICKS - 1, ('the pause came too late to test', r.message)
        assert spin_until(peer, lambda: len(got) >= k + 1, 10.0), (k, got)
        # Nothing skipped, nothing sent twice, nothing after it while paused.
        assert got == [f'tick {i}' for i in range(k + 1)], (k, got)
        assert call(peer, SetRate, svc + 'set_rate', SetRate.Request(rate=5.0)).success
        r = call(peer, Trigger, svc + 'toggle_paused', Trigger.Request())
        assert r.message == 'resumed', r.message
        code, out, err = finish(player)
        assert code == 0, err
        report = json.loads(out)
        assert report['published'] == TICKS and report['all_acked'], report
        assert spin_until(peer, lambda: len(got) == TICKS, 10.0), got
        assert got == [f'tick {i}' for i in range(TICKS)]
        assert list((tmp_path / 'scratch').iterdir()) == [], 'scratch store left behind'
        # /clock stayed within the bag and never went back.
        assert clocks == sorted(clocks), clocks
        assert T0 <= clocks[0] and clocks[-1] <= T0 + (TICKS - 1) * TICK_NS, clocks
    finally:
        if player.poll() is None:
            player.kill()


def test_loop_plays_again_until_interrupted(peer, tmp_path):
    bag = tmp_path / 'ticks'
    tick_bag(bag, n=5)
    got = []
    qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
    sub = peer.create_subscription(String, '/tick', lambda m: got.append(m.data), qos)
    # Both sides matched before the first message: the player's own wait
    # (its writer sees the reader) and the reader's (wait_publishers).
    player = start_player('play', bag, '--loop', '--rate', '5', '--start-paused',
                          '--wait-for-subscribers', '30', '--scratch', tmp_path / 'scratch')
    try:
        wait_publishers(peer, [sub])
        resume(peer)
        assert spin_until(peer, lambda: len(got) >= 12, 30.0), got
        player.send_signal(signal.SIGINT)
        code, _out, err = finish(player, 10)
        assert code == 130, err
    finally:
        if player.poll() is None:
            player.kill()
    # Pass after pass, in order, none missing.
    assert got == [f'tick {i % 5}' for i in range(len(got))], got
    assert list((tmp_path / 'scratch').iterdir()) == [], 'scratch store left after Ctrl-C'


def test_play_refuses_bad_bags_remaps_and_overrides(tmp_path):
    bag = tmp_path / 'ticks'
    tick_bag(bag, n=3)
    sqlite = tmp_path / 'old.db3'
    sqlite.write_bytes(b'SQLite format 3\0' + bytes(100))
    garbage = tmp_path / 'garbage.mcap'
    garbage.write_bytes(b'not an mcap file at all' * 10)
    keep_all = tmp_path / 'keep_all.yaml'
    keep_all.write_text('/tick: {history: keep_all}\n')
    for argv, code, why in [
            (['play', bag, '--remap', '/tick'], 2, 'is not FROM:=TO'),
            (['play', bag, '--remap', '/tick:=/1bad'], 2, 'not a valid topic name'),
            (['play', bag, '--remap', '/nope:=/x'], 4, '/nope is not a played topic'),
            (['play', bag, '--follow'], 2, 'a bag does not grow'),
            (['play', bag, '--topic', '/nope'], 4, 'no topic /nope'),
            (['play', bag, '--clock', '0'], 2, '--clock must be'),
            (['play', bag, '--node-name', 'a/b'], 2, 'not a node name'),
            (['play', bag, '--qos-profile-overrides-path', keep_all], 2, 'keep_all'),
            (['play', bag, '--qos-profile-overrides-path', tmp_path / 'none.yaml'], 4,
             'cannot read'),
            (['play', sqlite], 1, 'sqlite3 bags are not supported'),
            (['play', garbage], 1, 'cannot play')]:
        out = subprocess.run([motedb_cli(), *map(str, argv)], capture_output=True, text=True,
                             timeout=30)
        assert out.returncode == code, (argv, out.returncode, out.stderr)
        assert why in out.stderr, (argv, out.stderr)
    # Nothing is left behind in the scratch directory.
    scratch = tmp_path / 'scratch'
    out = subprocess.run([motedb_cli(), 'play', bag, '--topic', '/nope', '--scratch', scratch],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 4, out.stderr
    assert list(scratch.iterdir()) == [], list(scratch.iterdir())


def test_follow_plays_what_a_node_records_after_the_player_started(peer, start_node, tmp_path):
    """Two topics recorded fast and interleaved while the player follows the
    store (the recorder's default, buffered durability): each arrives
    complete, in order, once; a topic that appears later is played too."""
    store = tmp_path / 'live'
    # The recorder takes only the sources: recording the player's output
    # too would feed it back into the followed store.
    node = start_node('-p', 'subscription_depth:=1000',
                      '-p', 'topics:=[/live, /live2, /late_src]', storage=store)
    reliable = QoSProfile(depth=1000, reliability=QoSReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE,
                         durability=QoSDurabilityPolicy.TRANSIENT_LOCAL)
    live = peer.create_publisher(String, '/live', reliable)
    live2 = peer.create_publisher(String, '/live2', reliable)
    wait_matched(peer, [live, live2], node)
    for i in range(5):
        live.publish(String(data=f'live {i}'))
        live2.publish(String(data=f'live2 {i}'))
    wait_stored(peer, {'/live': 5, '/live2': 5}, node)
    got, got2, late = [], [], []
    subs = [peer.create_subscription(String, '/replayed', lambda m: got.append(m.data),
                                     reliable),
            peer.create_subscription(String, '/replayed2', lambda m: got2.append(m.data),
                                     reliable)]
    peer.create_subscription(String, '/late', lambda m: late.append(m.data), latched)
    # /late_src is not recorded yet: with --follow a remap may name it.
    player = start_player('--json', 'play', store, '--follow', '--remap', '/live:=/replayed',
                          '--remap', '/live2:=/replayed2', '--remap', '/late_src:=/late',
                          '--start-paused', '--wait-for-subscribers', '30')
    n = 300
    try:
        wait_publishers(peer, subs)
        resume(peer)
        assert spin_until(peer, lambda: len(got) == 5 and len(got2) == 5, 30.0), (got, got2)
        # Recorded after the player read its first snapshot, the two
        # topics interleaved, in bursts as fast as this process publishes
        # with pauses between (the stream's own pace), so the player's
        # looks at the store land inside bursts too.
        for i in range(5, n):
            live.publish(String(data=f'live {i}'))
            live2.publish(String(data=f'live2 {i}'))
            if i % 30 == 0:
                time.sleep(0.1)
        assert spin_until(peer, lambda: len(got) >= n and len(got2) >= n, 60.0), \
            (len(got), len(got2))
        # A topic that appears while it plays: transient local on both
        # sides, so what the new publisher sends before it matched arrives.
        newcomer = peer.create_publisher(String, '/late_src', latched)
        wait_matched(peer, [newcomer], node)
        for i in range(3):
            newcomer.publish(String(data=f'late {i}'))
        assert spin_until(peer, lambda: len(late) == 3, 30.0), late
        assert got == [f'live {i}' for i in range(n)], got
        assert got2 == [f'live2 {i}' for i in range(n)], got2
        assert late == [f'late {i}' for i in range(3)], late
        player.send_signal(signal.SIGINT)
        code, out, err = finish(player, 20)
        assert code == 130, err
        report = json.loads(out)
        assert report['published'] == 2 * n + 3 and report['interrupted'], report
    finally:
        if player.poll() is None:
            player.kill()
    assert node.stop() == 0, node.log()


def test_keys_on_a_terminal_step_and_resume_and_the_terminal_is_restored(peer, tmp_path):
    """The player on a pseudo-terminal (its controlling terminal, in the
    foreground): the right arrow publishes one message while paused, space
    resumes, stderr shows the progress line, and the terminal's settings
    are back as they were when it exits."""
    import os
    import pty
    import termios
    import threading
    bag = tmp_path / 'ticks'
    tick_bag(bag, n=5)
    got = []
    qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
    sub = peer.create_subscription(String, '/tick', lambda m: got.append(m.data), qos)
    master, slave = pty.openpty()
    before = termios.tcgetattr(slave)
    # setsid -c: a new session whose controlling terminal is its stdin,
    # the pty (no preexec_fn in a process running DDS threads).
    player = subprocess.Popen(
        ['setsid', '-c', motedb_cli(), 'play', str(bag), '--start-paused',
         '--wait-for-subscribers', '30'],
        stdin=slave, stdout=slave, stderr=slave)
    shown = bytearray()

    def drain():
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                return
            if not chunk:
                return
            shown.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert spin_until(peer, lambda: b'[PAUSED ]' in shown, 30.0), bytes(shown)
        wait_publishers(peer, [sub])
        os.write(master, b'\x1b[C')  # right arrow: the next message
        assert spin_until(peer, lambda: got == ['tick 0'], 10.0), got
        os.write(master, b' ')  # space: resume
        assert spin_until(peer, lambda: len(got) == 5, 10.0), got
        assert player.wait(timeout=30) == 0, bytes(shown)
        assert got == [f'tick {i}' for i in range(5)], got
        assert b'[RUNNING]' in shown, bytes(shown)
        assert termios.tcgetattr(slave) == before, 'terminal settings not restored'
    finally:
        if player.poll() is None:
            player.kill()
        os.close(slave)
        os.close(master)
