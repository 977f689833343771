//! Positions out of recorded pose messages, with the topic's stored
//! definition and the schema-driven CDR decoder.

use crate::cdr::{self, Schema, Value};

/// The pose message types the index reads, and the field path from the
/// message to its `geometry_msgs/Pose`.
pub const POSE_TYPES: [(&str, &[&str]); 3] = [
    ("nav_msgs/msg/Odometry", &["pose", "pose"]),
    ("geometry_msgs/msg/PoseStamped", &["pose"]),
    (
        "geometry_msgs/msg/PoseWithCovarianceStamped",
        &["pose", "pose"],
    ),
];

/// True for a type the index reads.
pub fn is_pose_type(type_name: &str) -> bool {
    POSE_TYPES.iter().any(|(t, _)| *t == type_name)
}

/// Decodes pose messages of one topic.
#[derive(Clone)]
pub struct PoseDecoder {
    schema: Schema,
    path: &'static [&'static str],
}

impl PoseDecoder {
    /// For a topic of `type_name` recorded with `definition` (ros2msg with
    /// dependencies, as stored); an error for another type or a definition
    /// that does not parse.
    pub fn new(type_name: &str, definition: &str) -> Result<PoseDecoder, String> {
        let Some((_, path)) = POSE_TYPES.iter().find(|(t, _)| *t == type_name) else {
            return Err(format!(
                "{type_name} is not a pose type (Odometry, PoseStamped, PoseWithCovarianceStamped)"
            ));
        };
        let schema = Schema::parse(type_name, definition)
            .map_err(|e| format!("definition of {type_name}: {e}"))?;
        Ok(PoseDecoder { schema, path })
    }

    /// `(header.frame_id, position x, y, z)` of one message.
    pub fn decode(&self, payload: &[u8]) -> Result<(String, [f64; 3]), String> {
        let msg = cdr::decode(&self.schema, payload).map_err(|e| e.to_string())?;
        let frame = match msg.field("header").and_then(|h| h.field("frame_id")) {
            Some(Value::Str(s)) => s.clone(),
            _ => return Err("no header.frame_id".into()),
        };
        let mut pose = &msg;
        for name in self.path {
            pose = pose.field(name).ok_or_else(|| format!("no field {name}"))?;
        }
        let position = pose.field("position").ok_or("no position")?;
        let mut p = [0.0; 3];
        for (slot, name) in p.iter_mut().zip(["x", "y", "z"]) {
            *slot = match position.field(name) {
                Some(Value::Float(v)) if v.is_finite() => *v,
                Some(Value::Float(v)) => return Err(format!("position.{name} is {v}")),
                _ => return Err(format!("no position.{name}")),
            };
        }
        Ok((frame, p))
    }
}

#[cfg(test)]
pub(crate) mod testing {
    //! A PoseStamped definition and messages, for tests.

    const SEP: &str =
        "================================================================================";

    pub fn definition() -> String {
        [
            "std_msgs/Header header\nPose pose\n",
            "MSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n",
            "MSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n",
            "MSG: geometry_msgs/Pose\nPoint position\nQuaternion orientation\n",
            "MSG: geometry_msgs/Point\nfloat64 x\nfloat64 y\nfloat64 z\n",
            "MSG: geometry_msgs/Quaternion\nfloat64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n",
        ]
        .join(&format!("{SEP}\n"))
    }

    /// CDR (little endian) of a PoseStamped, by hand.
    pub fn pose_stamped(frame: &str, p: [f64; 3]) -> Vec<u8> {
        let mut b = vec![0, 1, 0, 0];
        b.extend(7i32.to_le_bytes());
        b.extend(9u32.to_le_bytes());
        b.extend((frame.len() as u32 + 1).to_le_bytes());
        b.extend(frame.as_bytes());
        b.push(0);
        while (b.len() - 4) % 8 != 0 {
            b.push(0);
        }
        for v in [p[0], p[1], p[2], 0.0, 0.0, 0.0, 1.0] {
            b.extend(v.to_le_bytes());
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{definition, pose_stamped};
    use super::*;

    #[test]
    fn a_pose_stamped_gives_its_frame_and_position() {
        let d = PoseDecoder::new("geometry_msgs/msg/PoseStamped", &definition()).unwrap();
        let got = d.decode(&pose_stamped("map", [1.5, -2.0, 0.25])).unwrap();
        assert_eq!(got, ("map".to_string(), [1.5, -2.0, 0.25]));
        let e = d
            .decode(&pose_stamped("map", [f64::NAN, 0.0, 0.0]))
            .unwrap_err();
        assert!(e.contains("position.x is NaN"), "{e}");
        assert!(d.decode(&pose_stamped("map", [1.0; 3])[..20]).is_err());
    }

    #[test]
    fn only_pose_types_are_read() {
        assert!(is_pose_type("nav_msgs/msg/Odometry"));
        assert!(!is_pose_type("sensor_msgs/msg/Imu"));
        let e = PoseDecoder::new("sensor_msgs/msg/Imu", "").err().unwrap();
        assert!(e.contains("not a pose type"), "{e}");
    }
}
