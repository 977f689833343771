"""motedb's CDR decoder and definition resolver against rclpy, for every
message type of std_msgs, geometry_msgs, sensor_msgs, nav_msgs,
diagnostic_msgs and test_msgs."""

import json

import pytest
from mcap.reader import make_reader
from mcap.writer import Writer
from mcap_ros2.decoder import DecoderFactory

from conftest import run_motedb
from rosgen import samples, type_names

SAMPLES_PER_TYPE = 4


def topic_of(type_name: str) -> str:
    return "/" + type_name.replace("/msg/", "/")


@pytest.fixture(scope="module")
def fixture_mcap(tmp_path_factory, motedb_bin, ament_prefix):
    """An MCAP with one channel per type; schemas from `motedb msgdef`."""
    path = tmp_path_factory.mktemp("cdr") / "all_types.mcap"
    expected = {}
    with open(path, "wb") as f:
        w = Writer(f)
        w.start(profile="ros2", library="motedb-tests")
        t = 1_000_000_000
        for type_name in type_names(ament_prefix):
            definition = run_motedb(
                motedb_bin, "msgdef", type_name, "--prefix", ament_prefix
            ).stdout
            sid = w.register_schema(type_name, "ros2msg", definition.encode())
            cid = w.register_channel(topic_of(type_name), "cdr", sid)
            expected[type_name] = []
            for seq, (data, plain) in enumerate(samples(type_name, SAMPLES_PER_TYPE, 7)):
                w.add_message(cid, log_time=t, data=data, publish_time=t, sequence=seq)
                expected[type_name].append(plain)
                t += 1000
        w.finish()
    return path, expected


def test_covers_every_type(fixture_mcap, ament_prefix):
    _, expected = fixture_mcap
    assert len(expected) >= 100
    for pkg in ("sensor_msgs/msg/PointCloud2", "nav_msgs/msg/Odometry",
                "diagnostic_msgs/msg/DiagnosticArray", "test_msgs/msg/WStrings",
                "test_msgs/msg/MultiNested", "std_msgs/msg/Empty"):
        assert pkg in expected


def test_motedb_cat_matches_rclpy(fixture_mcap, motedb_bin):
    path, expected = fixture_mcap
    mismatches = []
    for type_name, want in expected.items():
        out = run_motedb(motedb_bin, "cat", path, topic_of(type_name), "--format", "json")
        got = [json.loads(line)["message"] for line in out.stdout.splitlines()]
        if got != want:
            mismatches.append((type_name, got, want))
    assert not mismatches, "\n".join(
        f"{t}:\n  motedb {g}\n  rclpy  {w}" for t, g, w in mismatches[:5]
    )


def test_yaml_output_parses(fixture_mcap, motedb_bin):
    import yaml  # noqa: PLC0415 (PyYAML comes with the ros wheels)

    path, expected = fixture_mcap
    out = run_motedb(motedb_bin, "cat", path, "/sensor_msgs/Imu", "--format", "yaml")
    docs = [d for d in yaml.safe_load_all(out.stdout) if d is not None]
    assert len(docs) == len(expected["sensor_msgs/msg/Imu"])
    assert docs[1]["orientation"]["w"] == expected["sensor_msgs/msg/Imu"][1]["orientation"]["w"]


def test_definitions_decode_with_mcap_ros2_support(fixture_mcap):
    """The resolved definitions are read correctly by another decoder
    (mcap-ros2-support cannot parse wstring: those types are left out)."""
    path, expected = fixture_mcap
    factory = DecoderFactory()
    decoders = {}
    counts = {}
    with open(path, "rb") as f:
        for schema, _channel, message in make_reader(f).iter_messages():
            if b"wstring" in schema.data:
                continue
            if schema.id not in decoders:
                decoders[schema.id] = factory.decoder_for("cdr", schema)
            decoded = decoders[schema.id](message.data)
            assert decoded is not None
            counts[schema.name] = counts.get(schema.name, 0) + 1
    assert len(counts) >= 95
    for name, n in counts.items():
        assert n == len(expected[name])


def test_limit_and_range(fixture_mcap, motedb_bin):
    path, _ = fixture_mcap
    out = run_motedb(motedb_bin, "cat", path, "/std_msgs/String", "--format", "json",
                     "--limit", "2")
    assert len(out.stdout.splitlines()) == 2


def test_unknown_topic_prints_nothing(fixture_mcap, motedb_bin):
    path, _ = fixture_mcap
    out = run_motedb(motedb_bin, "cat", path, "/nope", "--format", "json")
    assert out.stdout == ""


def test_cat_from_a_store_matches_rclpy(fixture_mcap, motedb_bin, tmp_path):
    """The same messages imported into a store decode the same way from the
    definitions the store keeps."""
    path, expected = fixture_mcap
    store = tmp_path / "store"
    report = json.loads(run_motedb(motedb_bin, "--json", "import", store, path).stdout)
    assert report["messages"] == sum(len(v) for v in expected.values())
    for type_name, want in expected.items():
        out = run_motedb(motedb_bin, "cat", store, topic_of(type_name), "--format", "json")
        got = [json.loads(line)["message"] for line in out.stdout.splitlines()]
        assert got == want, type_name
