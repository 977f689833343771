//! CDR decoding against hand-built bytes, and garbage input never panics.

use motedb::cdr::{decode, Error, Schema, Value};
use proptest::prelude::*;

mod seeded;

/// Minimal little-endian XCDR1 writer for building test payloads.
struct W {
    b: Vec<u8>,
}

impl W {
    fn new() -> W {
        W {
            b: vec![0, 1, 0, 0],
        }
    }
    fn pad(&mut self, a: usize) {
        while (self.b.len() - 4) % a != 0 {
            self.b.push(0);
        }
    }
    fn u8(&mut self, v: u8) -> &mut Self {
        self.b.push(v);
        self
    }
    fn i16(&mut self, v: i16) -> &mut Self {
        self.pad(2);
        self.b.extend(v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.pad(4);
        self.b.extend(v.to_le_bytes());
        self
    }
    fn i32(&mut self, v: i32) -> &mut Self {
        self.pad(4);
        self.b.extend(v.to_le_bytes());
        self
    }
    fn f64(&mut self, v: f64) -> &mut Self {
        self.pad(8);
        self.b.extend(v.to_le_bytes());
        self
    }
    fn f32(&mut self, v: f32) -> &mut Self {
        self.pad(4);
        self.b.extend(v.to_le_bytes());
        self
    }
    fn str(&mut self, s: &str) -> &mut Self {
        self.u32(s.len() as u32 + 1);
        self.b.extend(s.as_bytes());
        self.b.push(0);
        self
    }
}

const HEADER: &str = "std_msgs/Header header
================================================================================
MSG: std_msgs/msg/Header
builtin_interfaces/Time stamp
string frame_id
================================================================================
MSG: builtin_interfaces/msg/Time
int32 sec
uint32 nanosec
";

fn header_bytes(w: &mut W) {
    w.i32(7).u32(500).str("base_link");
}

#[test]
fn header_and_alignment_after_string() {
    let text = HEADER.replace(
        "std_msgs/Header header\n",
        "std_msgs/Header header\nfloat64 x\n",
    );
    let schema = Schema::parse("p/msg/T", &text).unwrap();
    let mut w = W::new();
    header_bytes(&mut w);
    w.f64(1.5);
    let v = decode(&schema, &w.b).unwrap();
    assert_eq!(
        v.to_json(),
        r#"{"header":{"stamp":{"sec":7,"nanosec":500},"frame_id":"base_link"},"x":1.5}"#
    );
    // body is 4+4+4+10 = 22 bytes, float64 starts at 24
    assert_eq!(w.b.len(), 4 + 24 + 8);
}

#[test]
fn big_endian_and_sequences() {
    let schema = Schema::parse("p/msg/T", "int16 a\nint32[] b\nuint8[2] c\nstring[] s\n").unwrap();
    let mut b = vec![0u8, 0, 0, 0];
    b.extend(513i16.to_be_bytes());
    b.extend([0, 0]);
    b.extend(2u32.to_be_bytes());
    b.extend((-1i32).to_be_bytes());
    b.extend(3i32.to_be_bytes());
    b.extend([9, 8]);
    b.extend([0, 0]);
    b.extend(1u32.to_be_bytes());
    b.extend(2u32.to_be_bytes());
    b.extend(b"z\0");
    let v = decode(&schema, &b).unwrap();
    assert_eq!(v.to_json(), r#"{"a":513,"b":[-1,3],"c":[9,8],"s":["z"]}"#);
}

#[test]
fn nested_arrays_of_structs_and_empty_message() {
    let text = "p/Point[] pts\np/Empty e\nfloat32 f\n\
================================================================================\n\
MSG: p/msg/Point\nfloat64 x\nint8 y\n\
================================================================================\n\
MSG: p/msg/Empty\n";
    let schema = Schema::parse("p/msg/T", text).unwrap();
    let mut w = W::new();
    w.u32(2).f64(1.0).u8(255).f64(2.0).u8(1);
    w.u8(0); // empty message placeholder
    w.f32(0.5);
    let v = decode(&schema, &w.b).unwrap();
    assert_eq!(
        v.to_json(),
        r#"{"pts":[{"x":1.0,"y":-1},{"x":2.0,"y":1}],"e":{},"f":0.5}"#
    );
    assert_eq!(
        v.field("pts")
            .map(|p| matches!(p, Value::Array(a) if a.len() == 2)),
        Some(true)
    );
}

#[test]
fn xcdr2_aligns_eight_byte_values_to_four() {
    let schema = Schema::parse("p/msg/T", "int32 a\nfloat64 b\n").unwrap();
    for kind in [0x07u8, 0x11] {
        let mut b = vec![0u8, kind, 0, 0];
        b.extend(1i32.to_le_bytes());
        b.extend(2.0f64.to_le_bytes());
        assert_eq!(decode(&schema, &b).unwrap().to_json(), r#"{"a":1,"b":2.0}"#);
    }
}

#[test]
fn yaml_rendering() {
    let schema = Schema::parse("p/msg/T", "int16 a\nstring s\n").unwrap();
    let mut w = W::new();
    w.i16(-2).str("hi");
    assert_eq!(decode(&schema, &w.b).unwrap().to_yaml(), "a: -2\ns: hi\n");
}

#[test]
fn typed_errors_on_bad_input() {
    let schema = Schema::parse("p/msg/T", "int32[] a\nstring s\nint32[<=1] c\n").unwrap();
    assert_eq!(decode(&schema, &[0, 1]), Err(Error::NoHeader { len: 2 }));
    assert_eq!(
        decode(&schema, &[0, 2, 0, 0]),
        Err(Error::UnsupportedEncapsulation(2))
    );
    let mut w = W::new();
    w.u32(1_000_000);
    assert!(matches!(
        decode(&schema, &w.b),
        Err(Error::LengthTooLarge { .. })
    ));
    let mut w = W::new();
    w.u32(0).u32(3);
    w.b.extend([0xff, 0xfe, 0]);
    assert!(matches!(
        decode(&schema, &w.b),
        Err(Error::InvalidUtf8 { .. })
    ));
    let mut w = W::new();
    w.u32(0).str("").u32(2).i32(1).i32(2);
    assert!(matches!(
        decode(&schema, &w.b),
        Err(Error::BoundExceeded { .. })
    ));
    let mut w = W::new();
    w.u32(0);
    assert!(matches!(
        decode(&schema, &w.b),
        Err(Error::UnexpectedEnd { .. })
    ));
}

#[test]
fn self_recursive_definition_is_bounded() {
    let schema = Schema::parse("p/msg/T", "p/T next\n").unwrap();
    assert_eq!(decode(&schema, &[0, 1, 0, 0, 0]), Err(Error::TooDeep(64)));
}

fn schemas() -> Vec<Schema> {
    [
        Schema::parse("p/msg/T", HEADER),
        Schema::parse(
            "p/msg/T",
            "int8 a\nfloat64[] b\nstring[<=3] c\nwstring w\nbool[3] d\nuint64 e\n\
             p/U[] u\n================================================================================\n\
             MSG: p/U\nstring s\nuint16[] v\n",
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

proptest! {
    #![proptest_config(seeded::proptest_config(256))]

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), kind in 0u8..3) {
        let mut payload = vec![0, [0u8, 1, 0x07][kind as usize], 0, 0];
        payload.extend(bytes);
        let schemas = schemas();
        prop_assert_eq!(schemas.len(), 2);
        for s in schemas {
            let _ = decode(&s, &payload);
        }
    }

    #[test]
    fn garbage_definitions_never_panic(text in "[a-z0-9_/<=\\[\\] \n#]{0,120}") {
        let _ = Schema::parse("p/msg/T", &text);
    }
}

#[test]
fn truncated_arrays_end_with_a_marker() {
    let schema = Schema::parse("p/msg/T", "uint8[] d\nint32[3] a\n").unwrap();
    let mut w = W::new();
    w.u32(4);
    w.b.extend([1, 2, 3, 4]);
    w.i32(5).i32(6).i32(7);
    let v = decode(&schema, &w.b).unwrap().truncated(2);
    assert_eq!(
        v.to_json(),
        r#"{"d":[1,2,"... (2 more)"],"a":[5,6,"... (1 more)"]}"#
    );
}
