"""Fixtures for the rclpy-driven node tests.

Run through scripts/test, which sources scripts/ros-env.sh and runs pytest
inside a private network namespace (scripts/netns). Every wait here is on a
condition with a deadline, never a fixed sleep.
"""

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import rclpy
from rclpy.node import Node

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 20.0


def pytest_sessionstart(session):
    # Hard rule: discovery stays on this machine with a fixed domain id.
    assert os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE') == 'LOCALHOST', \
        'source scripts/ros-env.sh (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST)'
    assert os.environ.get('ROS_DOMAIN_ID'), 'ROS_DOMAIN_ID must be fixed'


def node_binary():
    exe = os.environ.get('MOTEDB_NODE') or shutil.which('motedb_node')
    assert exe, 'motedb_node not found: run scripts/setup and source scripts/ros-env.sh'
    return exe


class NodeProcess:
    """A motedb_node child process whose output goes to a log file."""

    def __init__(self, argv, log_path, env=None):
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, 'wb')
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env,
            stdin=subprocess.DEVNULL)

    def log(self):
        return Path(self.log_path).read_text(errors='replace')

    def stop(self, sig=signal.SIGTERM):
        """Sends `sig` and returns the exit code (None if it hung)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self._dump_stacks()
            self.proc.kill()
            self.proc.wait()
            return None
        finally:
            self._log.close()

    def _dump_stacks(self):
        """A node that does not stop is a bug to find: its threads' stacks
        go into its log (and so into the failure message) when gdb is
        there; without gdb the test fails the same, with less to go on."""
        gdb = shutil.which('gdb')
        if gdb is None:
            return
        self._log.write(b'\n--- stacks of the node that did not stop (gdb) ---\n')
        self._log.flush()
        try:
            subprocess.run([gdb, '-p', str(self.proc.pid), '-batch', '-nx',
                            '-ex', 'thread apply all bt 30'],
                           stdout=self._log, stderr=subprocess.STDOUT, timeout=60, check=False)
        except subprocess.TimeoutExpired:
            self._log.write(b'(gdb did not finish within 60 s)\n')

    def assert_running(self):
        rc = self.proc.poll()
        assert rc is None, f'motedb_node exited with {rc}:\n{self.log()}'


@pytest.fixture(scope='session')
def ros_context():
    rclpy.init()
    yield
    rclpy.shutdown()


@pytest.fixture
def peer(ros_context):
    node = Node('motedb_test_peer')
    yield node
    node.destroy_node()


@pytest.fixture
def start_node(tmp_path):
    """Starts motedb_node; stops every started one at teardown."""
    started = []

    def start(*ros_args, storage=None, extra_argv=(), env=None):
        storage = storage or (tmp_path / 'store')
        argv = [node_binary(), *extra_argv, '--ros-args',
                '-p', f'storage.path:={storage}', *ros_args]
        environment = None if env is None else {**os.environ, **env}
        proc = NodeProcess(argv, tmp_path / f'node{len(started)}.log', environment)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.stop(signal.SIGKILL)


def call(peer, srv_type, name, request, node_proc=None, attempts=3):
    """Calls a service once it is ready; returns the response.

    A request can be lost when the client matched only a server that is
    gone (a node killed with SIGKILL stays on the graph until its lease
    expires), so an unanswered call is sent again on a fresh client; every
    motedb service but ~/mark is safe to repeat (test_marks.py calls it
    once and checks ~/list_marks before a repeat)."""
    for attempt in range(attempts):
        client = peer.create_client(srv_type, name)
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not client.wait_for_service(timeout_sec=0.5):
                if node_proc is not None:
                    node_proc.assert_running()
                assert time.monotonic() < deadline, f'service {name} never became ready'
            future = client.call_async(request)
            rclpy.spin_until_future_complete(peer, future, timeout_sec=CALL_TIMEOUT_S)
            if future.done():
                return future.result()
            if node_proc is not None:
                node_proc.assert_running()
        finally:
            peer.destroy_client(client)
    raise AssertionError(f'no answer from {name} after {attempts} tries of {CALL_TIMEOUT_S} s')


def spin_until(peer, predicate, timeout_s, node_proc=None):
    """Spins `peer` until predicate() is true; returns whether it became so."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        if node_proc is not None:
            node_proc.assert_running()
        rclpy.spin_once(peer, timeout_sec=0.1)
    return predicate()
