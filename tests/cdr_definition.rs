//! Building full ros2msg definitions from installed share/<pkg>/msg files.

use std::path::{Path, PathBuf};

use motedb::cdr::definition::{prefixes_from_env_value, resolve, SEPARATOR};
use motedb::cdr::{Error, Schema};

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
