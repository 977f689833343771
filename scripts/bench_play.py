"""Replay benchmark: how closely `motedb play` keeps the recorded schedule
of a 1 kHz 256 B topic and a 30 Hz 2 MiB topic played together, and its
peak RSS, next to the anchor (the same schedule kept with the player's own
read-ahead and waits but nothing published: the machine's floor), all in
one run. Run by scripts/bench-play inside a private network namespace."""

import argparse
import json
import os
import signal
import subprocess
import sys
import time


def run(argv, **kw):
    """Runs argv to the end; (its JSON report, peak RSS in MiB)."""
    proc = subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, text=True, **kw)
    out = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, (argv, status)
    return json.loads(out.strip().splitlines()[-1]), usage.ru_maxrss / 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--out', required=True)
    ap.add_argument('--bench-play', required=True)
    ap.add_argument('--motedb', required=True)
    ap.add_argument('--node', required=True)
    ap.add_argument('--seconds', type=int, default=20)
    a = ap.parse_args()
    store = os.path.join(a.out, 'store')
    t = time.monotonic()
    subprocess.run([a.bench_play, 'make', store, '--seconds', str(a.seconds)], check=True)
    print(f'# store: {a.seconds} s of 1 kHz x 256 B + 30 Hz x 2 MiB, '
          f'made in {time.monotonic() - t:.1f} s', flush=True)
    rows = []
    floor, rss = run([a.bench_play, 'floor', store, '--read-ahead', str(256 << 20)])
    rows.append(('anchor: schedule only, nothing published (256 MiB read-ahead)', floor, rss))
    for ahead in ('256MiB', '32MiB'):
        report, rss = run([a.motedb, '--json', 'play', store, '--read-ahead', ahead])
        rows.append((f'motedb play, no subscriber, {ahead} read-ahead', report, rss))
    # A subscriber that takes every message: a motedb_node recording both.
    node = subprocess.Popen(
        [a.node, '--ros-args', '-p', f'storage.path:={os.path.join(a.out, "recorded")}',
         '-p', 'subscription_depth:=100'],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(a.out, 'node.log'), 'w'))
    try:
        report, rss = run([a.motedb, '--json', 'play', store, '--read-ahead', '256MiB',
                           '--wait-for-subscribers', '60'])
        rows.append(('motedb play into a recording motedb_node, 256MiB read-ahead',
                     report, rss))
    finally:
        node.send_signal(signal.SIGINT)
        node.wait(timeout=60)
    info = subprocess.run([a.motedb, '--json', 'info', os.path.join(a.out, 'recorded')],
                          capture_output=True, text=True, check=True)
    stored = json.loads(info.stdout)
    per_topic = {t['name']: f"{t['count']} stored, {t['dropped']} dropped and {t['gaps']} "
                 f"sequence gaps counted" for t in stored['topics']}
    print(f"# the recording node stored {stored['message_count']} of {report['published']} "
          f"messages {per_topic}; every reliable subscriber acknowledged all: "
          f"{report['all_acked']}", flush=True)
    print('| run | messages | lateness p50 | lateness p99 | > 10 ms late | p99 / anchor p99 '
          '| peak RSS |')
    print('|---|---|---|---|---|---|---|')
    for name, r, rss in rows:
        ratio = r['lateness_p99_ms'] / max(floor['lateness_p99_ms'], 1e-6)
        print(f"| {name} | {r['published']} | {r['lateness_p50_ms']:.3f} ms "
              f"| {r['lateness_p99_ms']:.3f} ms | {r['late']} | {ratio:.2f} | {rss:.0f} MiB |")
    sys.stdout.flush()


if __name__ == '__main__':
    main()
