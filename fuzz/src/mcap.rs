//! MCAP import harness: the input is a bare `.mcap` file imported into a
//! fresh store, and whatever was imported is then read back.

use motedb::engine::Store;
use motedb::export::{import_bag, ImportOptions};

pub fn run(data: &[u8]) {
    let dir = crate::store::scratch_dir();
    let file = dir.path().join("input.mcap");
    if let Err(e) = std::fs::write(&file, data) {
        panic!("writing {}: {e}", file.display());
    }
    let store = match Store::open(dir.path().join("store"), crate::store::options()) {
        Ok(s) => s,
        Err(e) => panic!("opening an empty store: {e}"),
    };
    if let Ok(report) = import_bag(&store, &file, &ImportOptions::default()) {
        let stored: u64 = store.topics().iter().map(|t| t.message_count).sum();
        assert_eq!(
            stored, report.messages,
            "import reported {} messages but the store holds {stored}",
            report.messages
        );
        crate::store::read_everything(&store);
    }
    let _ = store.close();
}

/// Seed `.mcap` files: a small store exported with each compression.
pub fn seeds() -> Result<Vec<(String, Vec<u8>)>, Box<dyn std::error::Error>> {
    use motedb::export::{export_bag, ExportOptions, McapCompression};
    let dir = crate::store::scratch_dir();
    let store_dir = dir.path().join("store");
    for (name, bytes) in &crate::store::template().files {
        if name != "LOCK" {
            std::fs::create_dir_all(&store_dir)?;
            std::fs::write(store_dir.join(name), bytes)?;
        }
    }
    let store = Store::open_read_only(&store_dir)?;
    let mut out = Vec::new();
    for (i, compression) in [
        McapCompression::None,
        McapCompression::Lz4,
        McapCompression::Zstd,
    ]
    .into_iter()
    .enumerate()
    {
        let opts = ExportOptions {
            output: dir.path().join(format!("bag{i}")),
            compression,
            ..ExportOptions::default()
        };
        let summary = export_bag(&store, &opts)?;
        for f in &summary.files {
            out.push((format!("{compression:?}").to_lowercase(), std::fs::read(f)?));
        }
    }
    Ok(out)
}
