//! Building full ros2msg definitions from installed share/<pkg>/msg files.

use std::path::{Path, PathBuf};

use motedb::cdr::definition::{prefixes_from_env_value, resolve, SEPARATOR};
use motedb::cdr::{Error, Schema, Value};

#[cfg(test)]
fn put(prefix: &Path, pkg: &str, ty: &str, text: &str) {
    let dir = prefix.join("share").join(pkg).join("msg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{ty}.msg")), text).unwrap();
}

#[test]
fn dependencies_follow_breadth_first_once_each_across_prefixes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    put(
        a.path(),
        "my_msgs",
        "Thing",
        "# a thing\nHeader header\nPart[] parts\ngeometry_msgs/Point p\n",
    );
    put(a.path(), "my_msgs", "Part", "geometry_msgs/Point where\n");
    put(
        b.path(),
        "std_msgs",
        "Header",
        "builtin_interfaces/Time stamp\nstring frame_id\n",
    );
    put(
        b.path(),
        "builtin_interfaces",
        "Time",
        "int32 sec\nuint32 nanosec\n",
    );
    put(
        b.path(),
        "geometry_msgs",
        "Point",
        "float64 x\nfloat64 y\nfloat64 z\n",
    );
    let prefixes = vec![a.path().to_path_buf(), b.path().to_path_buf()];
    let text = resolve("my_msgs/msg/Thing", &prefixes).unwrap();
    let names: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("MSG: "))
        .collect();
    assert_eq!(
        names,
        vec![
            "std_msgs/msg/Header",
            "my_msgs/msg/Part",
            "geometry_msgs/msg/Point",
            "builtin_interfaces/msg/Time"
        ]
    );
    assert!(text.starts_with("# a thing\nHeader header\n"));
    assert_eq!(text.matches(SEPARATOR).count(), 4);
    let schema = Schema::parse("my_msgs/msg/Thing", &text).unwrap();
    assert_eq!(schema.types.len(), 5);
    // the short form of the name resolves the same
    assert_eq!(resolve("my_msgs/Thing", &prefixes).unwrap(), text);
}

#[test]
fn missing_type_says_where_it_looked() {
    let a = tempfile::tempdir().unwrap();
    put(a.path(), "p", "A", "q/B b\n");
    let prefixes = vec![a.path().to_path_buf()];
    let e = resolve("p/msg/A", &prefixes).unwrap_err();
    assert!(
        matches!(e, Error::DefinitionNotFound { ref package, ref name, .. } if package == "q" && name == "B"),
        "{e}"
    );
    assert!(e.to_string().contains("share/q/msg/B.msg"));
    assert!(matches!(
        resolve("nonsense", &prefixes),
        Err(Error::BadTypeName(_))
    ));
}

#[test]
fn ament_prefix_path_value_splits() {
    assert_eq!(
        prefixes_from_env_value("/opt/a::/opt/b:"),
        vec![PathBuf::from("/opt/a"), PathBuf::from("/opt/b")]
    );
}

/// A type description file as rosidl_generator_type_description writes it
/// (`share/<pkg>/<kind>/<Name>.json`), reduced to what motedb reads.
#[cfg(test)]
fn put_description(prefix: &Path, pkg: &str, kind: &str, stem: &str, json: &serde_json::Value) {
    let dir = prefix.join("share").join(pkg).join(kind);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{stem}.json")), json.to_string()).unwrap();
}

#[cfg(test)]
fn field(
    name: &str,
    type_id: u32,
    capacity: u64,
    string_capacity: u64,
    nested: &str,
) -> serde_json::Value {
    serde_json::json!({
        "name": name, "default_value": "",
        "type": {"type_id": type_id, "capacity": capacity,
                 "string_capacity": string_capacity, "nested_type_name": nested}
    })
}

#[cfg(test)]
fn action_description() -> serde_json::Value {
    serde_json::json!({
        "type_description_msg": {
            "type_description": {"type_name": "nav_like/action/Go", "fields": [
                field("goal", 1, 0, 0, "nav_like/action/Go_Goal"),
                field("feedback_message", 1, 0, 0, "nav_like/action/Go_FeedbackMessage"),
            ]},
            "referenced_type_descriptions": [
                {"type_name": "nav_like/action/Go_FeedbackMessage", "fields": [
                    field("goal_id", 1, 0, 0, "unique_identifier_msgs/msg/UUID"),
                    field("feedback", 1, 0, 0, "nav_like/action/Go_Feedback"),
                ]},
                {"type_name": "nav_like/action/Go_Feedback", "fields": [
                    field("remaining", 11, 0, 0, ""),
                    field("names", 117, 4, 8, ""),
                    field("corners", 49, 2, 0, "unique_identifier_msgs/msg/UUID"),
                    field("trail", 155, 0, 0, ""),
                ]},
                {"type_name": "nav_like/action/Go_Goal", "fields": [
                    field("target", 22, 0, 5, ""),
                ]},
                {"type_name": "unique_identifier_msgs/msg/UUID", "fields": [
                    field("uuid", 51, 16, 0, ""),
                ]},
            ]
        },
        "type_hashes": [
            {"type_name": "nav_like/action/Go", "hash_string": format!("RIHS01_{}", "11".repeat(32))},
            {"type_name": "nav_like/action/Go_FeedbackMessage", "hash_string": format!("RIHS01_{}", "22".repeat(32))},
        ]
    })
}

#[test]
fn action_generated_types_are_rendered_from_their_type_description() {
    let a = tempfile::tempdir().unwrap();
    put_description(a.path(), "nav_like", "action", "Go", &action_description());
    let prefixes = vec![a.path().to_path_buf()];
    // Go_FeedbackMessage has no file of its own: Go.json describes it.
    let text = resolve("nav_like/action/Go_FeedbackMessage", &prefixes).unwrap();
    let want = format!(
        "unique_identifier_msgs/UUID goal_id\n\
         nav_like/action/Go_Feedback feedback\n\
         {SEPARATOR}\nMSG: unique_identifier_msgs/msg/UUID\n\
         uint8[16] uuid\n\
         {SEPARATOR}\nMSG: nav_like/action/Go_Feedback\n\
         float64 remaining\n\
         string<=8[<=4] names\n\
         unique_identifier_msgs/UUID[2] corners\n\
         float64[] trail\n"
    );
    assert_eq!(text, want);
    let schema = Schema::parse("nav_like/action/Go_FeedbackMessage", &text).unwrap();
    assert_eq!(schema.types.len(), 3);
    // The rendered schema decodes.
    let mut cdr = vec![0u8, 1, 0, 0];
    cdr.extend([7u8; 16]); // goal_id
    cdr.extend(2.5f64.to_le_bytes()); // remaining, at an 8-aligned offset
    cdr.extend(0u32.to_le_bytes()); // names: empty
    cdr.extend([1u8; 16]);
    cdr.extend([2u8; 16]); // corners
    cdr.extend(1u32.to_le_bytes()); // trail: [4.0], the count ends at 64
    cdr.extend(4.0f64.to_le_bytes());
    let v = motedb::cdr::decode(&schema, &cdr).unwrap();
    let feedback = v.field("feedback").unwrap();
    assert_eq!(feedback.field("remaining"), Some(&Value::Float(2.5)));
    assert_eq!(
        feedback.field("trail"),
        Some(&Value::Array(vec![Value::Float(4.0)]))
    );
    assert_eq!(
        v.field("goal_id").and_then(|g| g.field("uuid")),
        Some(&Value::Bytes(vec![7; 16]))
    );
    let d = motedb::cdr::type_description::find("nav_like/action/Go_FeedbackMessage", &prefixes)
        .unwrap()
        .unwrap();
    assert_eq!(d.type_hash, format!("RIHS01_{}", "22".repeat(32)));
    // A type the file does not describe is not found, with the usual error;
    // nor is the action itself, which no topic carries.
    for absent in ["nav_like/action/Go_Result", "nav_like/action/Go"] {
        let e = resolve(absent, &prefixes).unwrap_err();
        assert!(
            matches!(e, Error::DefinitionNotFound { .. }),
            "{absent}: {e}"
        );
    }
}

#[test]
fn idl_only_message_uses_its_description_and_msg_files_still_win() {
    let a = tempfile::tempdir().unwrap();
    let only_idl = serde_json::json!({
        "type_description_msg": {
            "type_description": {"type_name": "idl_pkg/msg/Blob", "fields": [
                field("data", 147, 0, 0, ""),
                field("label", 21, 0, 3, ""),
            ]},
            "referenced_type_descriptions": []
        },
        "type_hashes": []
    });
    put_description(a.path(), "idl_pkg", "msg", "Blob", &only_idl);
    let prefixes = vec![a.path().to_path_buf()];
    assert_eq!(
        resolve("idl_pkg/msg/Blob", &prefixes).unwrap(),
        "uint8[] data\nstring<=3 label\n"
    );
    // With a .msg file beside it, the .msg text (comments, constants) is kept.
    put(
        a.path(),
        "idl_pkg",
        "Blob",
        "# the blob\nuint8 KIND=1\nuint8[] data\nstring<=3 label\n",
    );
    assert!(resolve("idl_pkg/msg/Blob", &prefixes)
        .unwrap()
        .starts_with("# the blob\n"));
}

#[test]
fn unrenderable_field_types_and_bad_files_are_errors() {
    let a = tempfile::tempdir().unwrap();
    let wide = serde_json::json!({
        "type_description_msg": {
            "type_description": {"type_name": "w/msg/Wide", "fields": [field("c", 14, 0, 0, "")]},
            "referenced_type_descriptions": []
        }
    });
    put_description(a.path(), "w", "msg", "Wide", &wide);
    let prefixes = vec![a.path().to_path_buf()];
    let e = resolve("w/msg/Wide", &prefixes).unwrap_err();
    assert!(e.to_string().contains("wchar"), "{e}");
    // A field name that is no identifier does not make it into a schema.
    let spaced = serde_json::json!({
        "type_description_msg": {
            "type_description": {"type_name": "w/msg/Spaced", "fields": [field("a b", 3, 0, 0, "")]},
            "referenced_type_descriptions": []
        }
    });
    put_description(a.path(), "w", "msg", "Spaced", &spaced);
    let e = resolve("w/msg/Spaced", &prefixes).unwrap_err();
    assert!(matches!(e, Error::BadDefinition { .. }), "{e}");
    let dir = a.path().join("share/w/msg");
    std::fs::write(dir.join("Broken.json"), "{ not json").unwrap();
    let e = resolve("w/msg/Broken", &prefixes).unwrap_err();
    assert!(matches!(e, Error::ReadDefinition { .. }), "{e}");
}
