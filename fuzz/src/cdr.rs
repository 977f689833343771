//! CDR decode and ros2msg parse harness.

use motedb::cdr::{decode, Schema, Value};

/// Root type name given to arbitrary definition text.
pub const FUZZ_ROOT: &str = "fuzz/msg/Root";

/// sensor_msgs/Imu as rosbag2 stores it (dependencies appended).
pub const IMU: &str = "std_msgs/Header header
geometry_msgs/Quaternion orientation
float64[9] orientation_covariance
geometry_msgs/Vector3 angular_velocity
float64[9] angular_velocity_covariance
geometry_msgs/Vector3 linear_acceleration
float64[9] linear_acceleration_covariance
================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
================================================================================
MSG: builtin_interfaces/Time
int32 sec
uint32 nanosec
================================================================================
MSG: geometry_msgs/Quaternion
float64 x 0
float64 y 0
float64 z 0
float64 w 1
================================================================================
MSG: geometry_msgs/Vector3
float64 x
float64 y
float64 z
";

/// Arrays, strings, bounded types, nesting, constants.
pub const MIXED: &str = "# a comment
uint8 MODE_A=1
string NAME=\"x # not a comment\"
bool flag
byte b
char c
int8 i8
int16 i16
uint64 u64
float32 f32
string s
wstring ws
string<=8 bs
int32[] seq
uint8[4] fixed
float64[<=3] bounded
string[] names
string<=4[<=2] small_names
fuzz/Inner[] inners
Inner[2] pair
fuzz/Empty empty
================================================================================
MSG: fuzz/msg/Inner
int16 a
string label
float64[] values
fuzz/Empty e
================================================================================
MSG: fuzz/Empty
";

/// A self-referencing type: decode must stop at the nesting limit.
pub const RECURSIVE: &str = "int8 tag
fuzz/Root[<=1] next
";

/// The fixed definitions: (root type, text).
pub const DEFINITIONS: [(&str, &str); 3] = [
    ("sensor_msgs/msg/Imu", IMU),
    (FUZZ_ROOT, MIXED),
    (FUZZ_ROOT, RECURSIVE),
];

/// Input layout: byte 0 picks a fixed definition (0..3) and the rest is
/// the CDR message; any other value means "text up to the first NUL is the
/// definition, the bytes after it are the message".
pub fn run_cdr_decode(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    if let Some((root, text)) = DEFINITIONS.get(usize::from(pick)) {
        let schema = match Schema::parse(root, text) {
            Ok(s) => s,
            Err(e) => panic!("fixed definition {root} must parse: {e}"),
        };
        exercise_decode(&schema, rest);
        return;
    }
    let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
    let (text, payload) = rest.split_at(split);
    let payload = payload.get(1..).unwrap_or_default();
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    if let Ok(schema) = Schema::parse(FUZZ_ROOT, text) {
        exercise_decode(&schema, payload);
    }
}

fn exercise_decode(schema: &Schema, payload: &[u8]) {
    if let Ok(v) = decode(schema, payload) {
        exercise_value(&v);
    }
}

/// Renders a decoded value every way the CLI does.
pub fn exercise_value(v: &Value) {
    let _ = v.to_json();
    let _ = v.to_yaml();
    let _ = v.truncated(3).to_json();
}

/// Input: arbitrary text. Byte 0 picks the root type name form.
pub fn run_msgdef_parse(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let root = match pick % 4 {
        0 => FUZZ_ROOT,
        1 => "fuzz/Root",
        2 => "std_msgs/msg/Header",
        // The first line is taken as the type name (exercises its checks).
        _ => text.lines().next().unwrap_or_default(),
    };
    let _ = motedb::cdr::definition::canonical_name(root);
    let _ = motedb::cdr::definition::parse_message(FUZZ_ROOT, &text);
    let Ok(schema) = Schema::parse(root, &text) else {
        return;
    };
    // A parsed schema must be usable: decoding small buffers ends in a
    // value or a typed error.
    for payload in [
        &[0u8, 1, 0, 0][..],
        &[0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0],
        &[0u8; 64],
    ] {
        exercise_decode(&schema, payload);
    }
}
