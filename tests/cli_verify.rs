//! `motedb verify` reports every file it checked and exits 3 naming the
//! damaged file when a checksum fails.

#[cfg(test)]
mod common;

use common::*;

#[cfg(test)]
fn s(p: &std::path::Path) -> &str {
    p.to_str().unwrap()
}

#[cfg(test)]
fn names_with(dir: &std::path::Path, ext: &str) -> Vec<String> {
    let mut v: Vec<String> = entries(dir)
        .into_iter()
        .filter(|n| n.ends_with(ext))
        .collect();
    v.sort();
    v
}

#[test]
fn clean_store_lists_every_file_and_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 200);
    let o = motedb(&["--json", "verify", s(&store)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["messages_read"], 400);
    assert_eq!(v["file_problems"], 0);
    let files = v["files"].as_array().unwrap();
    let listed = |kind: &str| {
        let mut n: Vec<String> = files
            .iter()
            .filter(|f| f["kind"] == kind)
            .map(|f| {
                let p = std::path::PathBuf::from(f["path"].as_str().unwrap());
                p.file_name().unwrap().to_str().unwrap().to_string()
            })
            .collect();
        n.sort();
        n
    };
    assert_eq!(listed("manifest"), vec!["MANIFEST".to_string()]);
    assert_eq!(listed("table"), names_with(&store, ".sst"));
    assert!(!listed("table").is_empty());
    let o = motedb(&["verify", s(&store)]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("MANIFEST"), "{text}");
    assert!(text.trim_end().ends_with("ok"), "{text}");
}

#[test]
fn flipped_table_byte_exits_3_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = make_store(dir.path(), 200);
    let sst = names_with(&store, ".sst").remove(0);
    let path = store.join(&sst);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[10] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    let o = motedb(&["verify", s(&store)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let text = stdout(&o);
    let line = text
        .lines()
        .find(|l| l.contains(&sst) && l.contains("table"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(line.ends_with("BAD"), "{text}");
    assert!(text.contains("checksum mismatch"), "{text}");

    let o = motedb(&["--json", "verify", s(&store)]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for f in v["files"].as_array().unwrap() {
        let bad = f["path"].as_str().unwrap().ends_with(&sst);
        let problems = f["problems"].as_array().unwrap();
        assert_eq!(!problems.is_empty(), bad, "{f}");
        if bad {
            assert!(problems[0].as_str().unwrap().contains("offset 0"), "{f}");
        }
    }
}
