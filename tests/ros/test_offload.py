"""The node's offload against a real S3 server (Garage on loopback, started
by scripts/garage): what the node records reaches the remote copy, which
the CLI reads in place with the same bytes; /diagnostics reports the
offload OK, then WARN while the server is down, then OK again with what
was recorded meanwhile uploaded; a stop runs one last round."""

import json
import os
import shutil
import subprocess
import time

import pytest
import rclpy
from conftest import REPO, spin_until
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from peers import last_status, status_values, wait_matched, wait_stored
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from std_msgs.msg import String, UInt8MultiArray

OK = DiagnosticStatus.OK[0] if isinstance(DiagnosticStatus.OK, bytes) else DiagnosticStatus.OK
WARN = DiagnosticStatus.WARN[0] if isinstance(DiagnosticStatus.WARN, bytes) else DiagnosticStatus.WARN
ERROR = (DiagnosticStatus.ERROR[0] if isinstance(DiagnosticStatus.ERROR, bytes)
         else DiagnosticStatus.ERROR)
# Not the fleet tests' ports (3900-3969): they may run in another namespace,
# but a fixed, distinct port keeps a failure's logs unambiguous.
PORT = 3970
URL = 's3://motedb/ros/robot'


def level(status):
    return status.level[0] if isinstance(status.level, bytes) else status.level


def motedb_cli():
    exe = shutil.which('motedb')
    assert exe, 'motedb not found: run scripts/setup and source scripts/ros-env.sh'
    return exe


@pytest.fixture
def garage(tmp_path):
    d = tmp_path / 'garage'
    script = str(REPO / 'scripts' / 'garage')
    subprocess.run([script, 'start', str(d), str(PORT)], check=True)
    yield d
    subprocess.run([script, 'stop', str(d)], check=False)


def cli(garage, *args):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith('AWS_') and k != 'MOTEDB_S3_ENDPOINT'}
    return subprocess.run([motedb_cli(), '--s3-credentials', str(garage / 'env'), *args],
                          capture_output=True, text=True, env=env, check=False)


def remote_counts(garage):
    r = cli(garage, '--json', 'info', URL)
    if r.returncode != 0:
        return {}
    return {t['name']: t['count'] for t in json.loads(r.stdout)['topics']}


def test_offload_mirrors_the_recording_and_reports_an_outage(peer, start_node, tmp_path,
                                                             garage):
    store = tmp_path / 'store'
    node = start_node('-p', f'offload.url:={URL}',
                      '-p', f'offload.credentials_file:={garage / "env"}',
                      '-p', 'offload.period_s:=0.5', '-p', 'diagnostic_updater.period:=0.2',
                      '-p', 'discovery_period_s:=0.2', '-p', 'subscription_depth:=100',
                      storage=store)
    seen = []
    peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
    chatter = peer.create_publisher(String, '/chatter', qos)
    bulk = peer.create_publisher(UInt8MultiArray, '/bulk', qos)
    wait_matched(peer, [chatter, bulk], node)
    for i in range(100):
        chatter.publish(String(data=f'hello {i}'))
        if i % 5 == 0:
            bulk.publish(UInt8MultiArray(data=os.urandom(100 * 1024)))
    wait_stored(peer, {'/chatter': 100, '/bulk': 20}, node)

    # The remote copy catches up, with the same bytes as the local store.
    assert spin_until(peer, lambda: remote_counts(garage) == {'/chatter': 100, '/bulk': 20},
                      60, node), remote_counts(garage)
    for topic in ('/chatter', '/bulk'):
        local = subprocess.run([motedb_cli(), 'cat', str(store), topic, '--format', 'json'],
                               capture_output=True, text=True, check=True).stdout
        remote = cli(garage, 'cat', URL, topic, '--format', 'json')
        assert remote.returncode == 0, remote.stderr
        assert remote.stdout == local, topic

    def offload():
        return last_status(seen, 'offload')
    assert spin_until(peer, lambda: offload() is not None and level(offload()) == OK
                      and int(status_values(seen, 'offload')['generation']) >= 1, 30, node)
    assert status_values(seen, 'offload')['url'] == URL

    # The server goes down: a round fails (retried for 5 s), WARN.
    subprocess.run([str(REPO / 'scripts' / 'garage'), 'stop', str(garage)], check=True)
    for i in range(100, 130):
        chatter.publish(String(data=f'hello {i}'))
    wait_stored(peer, {'/chatter': 130}, node)
    assert spin_until(peer, lambda: level(offload()) == WARN
                      and int(status_values(seen, 'offload')['failures_in_a_row']) >= 1, 60, node)
    assert status_values(seen, 'offload')['last_error']

    # Back up: the next round uploads what was recorded meanwhile, OK again.
    subprocess.run([str(REPO / 'scripts' / 'garage'), 'restart', str(garage)], check=True)
    assert spin_until(peer, lambda: remote_counts(garage).get('/chatter') == 130, 60, node), \
        remote_counts(garage)
    assert spin_until(peer, lambda: level(offload()) == OK
                      and status_values(seen, 'offload')['failures_in_a_row'] == '0', 30, node)
    # Recorded just before the stop: the last round at stop uploads it.
    for i in range(130, 150):
        chatter.publish(String(data=f'hello {i}'))
    wait_stored(peer, {'/chatter': 150}, node)
    started = time.monotonic()
    assert node.stop() == 0, node.log()
    # The last round is bounded (10 s).
    assert time.monotonic() - started < 15, node.log()
    assert 'offloaded to s3://motedb/ros/robot at stop' in node.log(), node.log()
    assert remote_counts(garage) == {'/chatter': 150, '/bulk': 20}
    r = cli(garage, 'verify', URL)
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_stop_with_the_server_down_is_bounded(peer, start_node, tmp_path, garage):
    """The last round at stop gives up after 10 s even when every request
    would be retried for a minute (period 60 s)."""
    subprocess.run([str(REPO / 'scripts' / 'garage'), 'stop', str(garage)], check=True)
    node = start_node('-p', f'offload.url:={URL}',
                      '-p', f'offload.credentials_file:={garage / "env"}',
                      '-p', 'diagnostic_updater.period:=0.2', storage=tmp_path / 'store')
    seen = []
    peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    # A round is running (retrying against the server that is down).
    assert spin_until(peer, lambda: status_values(seen, 'offload').get('state') == 'pushing',
                      30, node)
    started = time.monotonic()
    assert node.stop() == 0, node.log()
    assert time.monotonic() - started < 15, node.log()
    assert 'did not finish' in node.log(), node.log()


def test_bad_offload_settings_stop_the_node_at_start_with_the_reason(start_node, tmp_path):
    env_file = tmp_path / 'empty.env'
    env_file.write_text('# no keys\n')
    for args, says in [
        (['-p', 'offload.url:=robot7'], 's3://'),
        (['-p', 'offload.url:=s3://motedb/r', '-p', f'offload.credentials_file:={env_file}'],
         'no S3 credentials'),
        (['-p', 'offload.url:=s3://motedb/r', '-p', 'offload.period_s:=0.0'], 'offload.period_s'),
    ]:
        node = start_node(*args, env={'AWS_ACCESS_KEY_ID': '', 'AWS_SECRET_ACCESS_KEY': ''})
        deadline = time.monotonic() + 30
        while node.proc.poll() is None:
            assert time.monotonic() < deadline, 'the node did not stop'
            time.sleep(0.05)
        assert node.proc.returncode != 0
        assert says in node.log(), node.log()


def test_require_offloaded_keeps_what_the_bucket_lacks_and_the_bucket_keeps_what_retention_drops(
        peer, start_node, tmp_path, garage):
    """retention.require_offloaded with the server down: the store grows
    past retention.max_bytes and drops nothing; back up, the offload
    uploads, retention then drops locally, and the bucket still holds every
    message (the dropped files stay in the copy)."""
    store = tmp_path / 'store'
    script = str(REPO / 'scripts' / 'garage')
    subprocess.run([script, 'stop', str(garage)], check=True)
    node = start_node('-p', f'offload.url:={URL}',
                      '-p', f'offload.credentials_file:={garage / "env"}',
                      '-p', 'offload.period_s:=0.5', '-p', 'diagnostic_updater.period:=0.2',
                      '-p', 'discovery_period_s:=0.2', '-p', 'subscription_depth:=100',
                      '-p', 'retention.require_offloaded:=true',
                      '-p', 'retention.max_bytes:=262144',
                      '-p', 'storage.memtable_bytes:=65536',
                      '-p', 'storage.value_compression:=none',
                      storage=store)
    seen = []
    peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    bulk = peer.create_publisher(UInt8MultiArray, '/bulk', QoSProfile(
        depth=100, reliability=QoSReliabilityPolicy.RELIABLE))
    wait_matched(peer, [bulk], node)
    for _ in range(40):
        bulk.publish(UInt8MultiArray(data=os.urandom(32 * 1024)))
    wait_stored(peer, {'/bulk': 40}, node)

    def storage():
        return status_values(seen, 'storage')
    # Over the quota with the server down: nothing dropped, everything kept.
    assert spin_until(peer, lambda: storage() and int(storage()['disk_bytes'])
                      > int(storage()['quota_bytes']) and level(last_status(seen, 'offload'))
                      == WARN, 60, node)
    assert storage()['retention_dropped_messages'] == '0'
    assert wait_stored(peer, {'/bulk': 40}, node)['/bulk'].message_count == 40

    # Back up: uploaded, then dropped locally; the bucket keeps all 40.
    subprocess.run([script, 'restart', str(garage)], check=True)
    assert spin_until(peer, lambda: storage()
                      and int(storage()['retention_dropped_messages']) > 0, 60, node), storage()
    # A round committed after the drop (a newer generation) still has all 40.
    def generation():
        return int(status_values(seen, 'offload')['generation'])
    after_drop = generation()
    assert spin_until(peer, lambda: generation() > after_drop, 60, node)
    assert remote_counts(garage).get('/bulk') == 40, remote_counts(garage)
    local = subprocess.run([motedb_cli(), '--json', 'info', str(store)], capture_output=True,
                           text=True, check=True)
    kept = {t['name']: t['count'] for t in json.loads(local.stdout)['topics']}
    assert kept.get('/bulk', 0) < 40, kept
    assert node.stop() == 0, node.log()
    assert remote_counts(garage).get('/bulk') == 40, remote_counts(garage)
    r = cli(garage, 'verify', URL)
    assert r.returncode == 0, r.stdout + r.stderr


def test_another_stores_copy_at_the_url_is_left_alone_and_reported(peer, start_node, tmp_path,
                                                                   garage):
    """Two robots given one offload URL (or one whose store was wiped): the
    second does not replace the first's copy, which may hold what exists
    nowhere else, and says so at once on /diagnostics and at stop."""
    def robot(name):
        return start_node('-p', f'offload.url:={URL}',
                          '-p', f'offload.credentials_file:={garage / "env"}',
                          '-p', 'offload.period_s:=0.5', '-p', 'diagnostic_updater.period:=0.2',
                          '-p', 'discovery_period_s:=0.2', '-p', 'subscription_depth:=100',
                          storage=tmp_path / name)
    qos = QoSProfile(depth=100, reliability=QoSReliabilityPolicy.RELIABLE)
    chatter = peer.create_publisher(String, '/chatter', qos)
    first = robot('first')
    wait_matched(peer, [chatter], first)
    for i in range(30):
        chatter.publish(String(data=f'first {i}'))
    wait_stored(peer, {'/chatter': 30}, first)
    assert first.stop() == 0, first.log()
    assert remote_counts(garage) == {'/chatter': 30}
    before = cli(garage, 'cat', URL, '/chatter', '--format', 'json')
    assert before.returncode == 0, before.stderr

    second = robot('second')
    seen = []
    peer.create_subscription(DiagnosticArray, '/diagnostics', seen.append, 50)
    wait_matched(peer, [chatter], second)
    for i in range(10):
        chatter.publish(String(data=f'second {i}'))
    wait_stored(peer, {'/chatter': 10}, second)

    def refused():
        s = last_status(seen, 'offload')
        # 'offload refused' comes only from a refusal, not from three
        # failures in a row.
        return (s is not None and level(s) == ERROR and 'offload refused' in s.message
                and 'another store' in s.message)
    assert spin_until(peer, refused, 30, second), last_status(seen, 'offload')
    assert 'another store' in status_values(seen, 'offload')['last_error']
    assert second.stop() == 0, second.log()
    assert 'the last offload round was refused' in second.log(), second.log()
    after = cli(garage, 'cat', URL, '/chatter', '--format', 'json')
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout
