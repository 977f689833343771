"""Bags exported by `motedb export` read by the real readers: PyPI `mcap`
(header, summary, indexed time-range reads), `mcap-ros2-support` (every
message decodes), `rosbags` (bag directory, metadata.yaml, iteration,
deserialization); and a rosbags-written bag round-tripped through motedb."""

import json
from pathlib import Path

import pytest
import yaml
from mcap.reader import make_reader
from mcap.writer import Writer
from mcap_ros2.decoder import DecoderFactory
from rclpy.serialization import deserialize_message
from rosbags.interfaces import Qos, QosDurability, QosHistory, QosLiveliness, QosReliability, QosTime
from rosbags.rosbag2 import Reader as BagReader
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as BagWriter
from rosbags.typesys import Stores, get_typestore

from conftest import run_motedb
from rosgen import message_class, samples, to_plain

TYPES = [
    "sensor_msgs/msg/Imu",
    "sensor_msgs/msg/PointCloud2",
    "nav_msgs/msg/Odometry",
    "diagnostic_msgs/msg/DiagnosticArray",
    "std_msgs/msg/String",
    "test_msgs/msg/Arrays",
    "test_msgs/msg/Empty",
]
PER_TYPE = 60
S = 1_000_000_000
T0 = 1_700_000_000 * S
QOS_TEXT = (
    "- history: 1\n  depth: 10\n  reliability: 1\n  durability: 2\n"
    "  deadline:\n    sec: 0\n    nsec: 0\n  lifespan:\n    sec: 0\n    nsec: 0\n"
    "  liveliness: 1\n  liveliness_lease_duration:\n    sec: 0\n    nsec: 0\n"
    "  avoid_ros_namespace_conventions: false"
)


def topic_of(type_name):
    return "/" + type_name.split("/")[-1].lower()


@pytest.fixture(scope="module")
def store(tmp_path_factory, motedb_bin, ament_prefix):
    """A motedb store filled by importing an MCAP of rclpy messages.
    Returns (store path, {topic: [(log_time, publish_time, cdr)]}, tmp dir)."""
    tmp = tmp_path_factory.mktemp("bags")
    src = tmp / "src.mcap"
    sent = {}
    with open(src, "wb") as f:
        w = Writer(f)
        w.start(profile="ros2", library="motedb-tests")
        for k, type_name in enumerate(TYPES):
            definition = run_motedb(motedb_bin, "msgdef", type_name, "--prefix", ament_prefix).stdout
            sid = w.register_schema(type_name, "ros2msg", definition.encode())
            topic = topic_of(type_name)
            cid = w.register_channel(topic, "cdr", sid, {"offered_qos_profiles": QOS_TEXT})
            sent[topic] = []
            for i, (data, _plain) in enumerate(samples(type_name, PER_TYPE - 1, 3)):
                t = T0 + i * S // 10 + k * 1000
                w.add_message(cid, log_time=t, data=data, publish_time=t - 500, sequence=i)
                sent[topic].append((t, t - 500, data))
        w.finish()
    path = tmp / "store"
    out = run_motedb(motedb_bin, "--json", "import", path, src)
    assert json.loads(out.stdout)["messages"] == PER_TYPE * len(TYPES)
    return path, sent, tmp


@pytest.fixture(scope="module", params=["zstd", "lz4", "none"])
def bag(request, store, motedb_bin):
    path, sent, tmp = store
    out_dir = tmp / f"bag_{request.param}"
    run_motedb(motedb_bin, "export", path, out_dir, "--compression", request.param)
    return out_dir, sent, request.param


def mcap_files(bag_dir: Path):
    return sorted(bag_dir.glob("*.mcap"))


def test_mcap_reader_header_summary_and_indexes(bag):
    bag_dir, sent, compression = bag
    (f,) = mcap_files(bag_dir)
    with open(f, "rb") as fh:
        reader = make_reader(fh)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        assert summary.statistics.message_count == PER_TYPE * len(TYPES)
        assert summary.statistics.channel_count == len(TYPES)
        assert summary.chunk_indexes, "chunk indexes present"
        for ci in summary.chunk_indexes:
            assert ci.compression == ("" if compression == "none" else compression)
            assert ci.message_index_offsets
        assert {s.encoding for s in summary.schemas.values()} == {"ros2msg"}
        assert {s.name for s in summary.schemas.values()} == set(TYPES)
        for ch in summary.channels.values():
            assert ch.message_encoding == "cdr"
            assert "reliability: reliable" in ch.metadata["offered_qos_profiles"]
        got = {}
        for _schema, channel, message in reader.iter_messages(log_time_order=True):
            got.setdefault(channel.topic, []).append(
                (message.log_time, message.publish_time, bytes(message.data))
            )
        assert got == sent


def test_mcap_indexed_time_range_read(bag):
    bag_dir, sent, _ = bag
    (f,) = mcap_files(bag_dir)
    start, end = T0 + 2 * S, T0 + 4 * S
    want = sorted(
        (t, topic) for topic, msgs in sent.items() for (t, _p, _d) in msgs if start <= t < end
    )
    with open(f, "rb") as fh:
        reader = make_reader(fh)
        got = sorted(
            (m.log_time, c.topic)
            for _s, c, m in reader.iter_messages(start_time=start, end_time=end)
        )
    assert got == want and len(got) == 20 * len(TYPES)


def test_mcap_ros2_support_decodes_every_message(bag):
    bag_dir, sent, _ = bag
    (f,) = mcap_files(bag_dir)
    n = 0
    with open(f, "rb") as fh:
        reader = make_reader(fh, decoder_factories=[DecoderFactory()])
        for schema, channel, message, decoded in reader.iter_decoded_messages():
            assert decoded is not None
            # the bytes are those published: rclpy agrees on the value too
            cls = message_class(schema.name)
            back = deserialize_message(message.data, cls)
            if schema.name == "std_msgs/msg/String":
                assert decoded.data == back.data
            if schema.name == "sensor_msgs/msg/Imu":
                assert decoded.orientation.w == back.orientation.w
                assert decoded.header.frame_id == back.header.frame_id
            n += 1
    assert n == PER_TYPE * len(TYPES)


def test_rosbags_opens_bag_directory(bag):
    bag_dir, sent, _ = bag
    meta = yaml.safe_load((bag_dir / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9 and meta["storage_identifier"] == "mcap"
    typestore = get_typestore(Stores.ROS2_JAZZY)
    with BagReader(bag_dir) as reader:
        assert reader.message_count == PER_TYPE * len(TYPES)
        assert reader.start_time == T0
        conns = {c.topic: c for c in reader.connections}
        assert set(conns) == set(sent)
        qos = conns["/imu"].ext.offered_qos_profiles[0]
        assert qos.reliability == QosReliability.RELIABLE
        assert qos.history == QosHistory.KEEP_LAST and qos.depth == 10
        got = {}
        for conn, timestamp, raw in reader.messages():
            got.setdefault(conn.topic, []).append((timestamp, bytes(raw)))
            if conn.msgtype in ("sensor_msgs/msg/Imu", "nav_msgs/msg/Odometry"):
                msg = typestore.deserialize_cdr(raw, conn.msgtype)
                assert msg.header.stamp is not None
    assert got == {t: [(lt, d) for (lt, _p, d) in m] for t, m in sent.items()}


def test_split_export_reads_as_one_bag(store, motedb_bin):
    path, sent, tmp = store
    out_dir = tmp / "split"
    run_motedb(motedb_bin, "export", path, out_dir, "--split-duration", "2s")
    files = mcap_files(out_dir)
    assert len(files) == 3
    meta = yaml.safe_load((out_dir / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert sorted(meta["relative_file_paths"]) == [f.name for f in files]
    assert sum(f["message_count"] for f in meta["files"]) == PER_TYPE * len(TYPES)
    with BagReader(out_dir) as reader:
        assert sum(1 for _ in reader.messages()) == PER_TYPE * len(TYPES)


def test_time_range_and_topic_export(store, motedb_bin):
    path, sent, tmp = store
    out_dir = tmp / "subset"
    start = f"{T0 // S + 1}"
    run_motedb(motedb_bin, "export", path, out_dir, "--topic", "/imu", "--start", start,
               "--end", "+3s")
    with BagReader(out_dir) as reader:
        times = [t for _c, t, _r in reader.messages()]
    assert times == [t for (t, _p, _d) in sent["/imu"] if T0 + S <= t < T0 + 3 * S]


def test_rosbags_written_bag_round_trips(tmp_path, motedb_bin):
    """A bag from another writer (rosbags, v9, mcap) imports into motedb and
    exports back with the same topics, types, times, bytes and QoS."""
    typestore = get_typestore(Stores.ROS2_JAZZY)
    String = typestore.types["std_msgs/msg/String"]
    src = tmp_path / "theirs"
    qos = Qos(QosHistory.KEEP_LAST, 5, QosReliability.BEST_EFFORT, QosDurability.VOLATILE,
              QosTime(0, 0), QosTime(0, 0), QosLiveliness.AUTOMATIC, QosTime(0, 0), False)
    w = BagWriter(src, version=9, storage_plugin=StoragePlugin.MCAP)
    w.open()
    conn = w.add_connection("/talk", "std_msgs/msg/String", typestore=typestore,
                            offered_qos_profiles=[qos])
    want = []
    for i in range(100):
        raw = typestore.serialize_cdr(String(data=f"m{i}"), "std_msgs/msg/String")
        w.write(conn, T0 + i * 1000, raw)
        want.append((T0 + i * 1000, bytes(raw)))
    w.close()
    store = tmp_path / "store"
    out = run_motedb(motedb_bin, "--json", "import", store, src)
    assert json.loads(out.stdout)["messages"] == 100
    cat = run_motedb(motedb_bin, "cat", store, "/talk", "--format", "json", "--limit", "1")
    assert json.loads(cat.stdout)["message"] == {"data": "m0"}
    back = tmp_path / "back"
    run_motedb(motedb_bin, "export", store, back)
    with BagReader(back) as reader:
        (c,) = reader.connections
        assert c.msgtype == "std_msgs/msg/String"
        got_qos = c.ext.offered_qos_profiles[0]
        assert got_qos.reliability == QosReliability.BEST_EFFORT and got_qos.depth == 5
        got = [(t, bytes(r)) for _c, t, r in reader.messages()]
    assert got == want


def test_corrupt_and_truncated_import(tmp_path, store, motedb_bin):
    path, sent, tmp = store
    out_dir = tmp_path / "b"
    run_motedb(motedb_bin, "export", path, out_dir, "--compression", "none",
               "--split-size", "64KiB")
    files = mcap_files(out_dir)
    assert len(files) > 2
    f = files[len(files) // 2]
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])
    proc = run_motedb(motedb_bin, "--json", "import", tmp_path / "s2", out_dir, check=False)
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)
    assert 0 < report["messages"] < PER_TYPE * len(TYPES)
    assert report["skipped"] and "truncated" in report["skipped"][0]["reason"]

    unknown = tmp_path / "unknown.mcap"
    with open(unknown, "wb") as fh:
        w = Writer(fh)
        w.start(profile="", library="t")
        sid = w.register_schema("foo.Bar", "protobuf", b"\x00")
        cid = w.register_channel("/pb", "protobuf", sid)
        w.add_message(cid, log_time=1, data=b"x", publish_time=1)
        w.finish()
    proc = run_motedb(motedb_bin, "--json", "import", tmp_path / "s3", unknown, check=False)
    assert proc.returncode == 3
    report = json.loads(proc.stdout)
    assert report["messages"] == 0
    assert report["skipped"][0]["messages"] == 1
    assert "ros2msg" in report["skipped"][0]["reason"]
