//! Manifest: the file `MANIFEST`, a sequence of frames (codec.rs), each
//! one atomic batch of edits. Replaying all edits gives the live file set
//! and the catalog. Rewritten at open via temp file + fsync + rename +
//! directory fsync.

use super::codec::{
    corrupt, frames_after, io_err, put_bytes, put_frame, put_u32, put_u64, put_u8, read_frames, Dec,
};
use super::error::{Error, Result};
use super::fs::{FileSystem, WritableFile};
use super::marks::{Mark, MAX_TAGS};
use super::TopicSpec;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const FILE: &str = "MANIFEST";
const TMP: &str = "MANIFEST.tmp";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Edit {
    AddTable {
        level: u8,
        num: u64,
    },
    RemoveTable {
        level: u8,
        num: u64,
    },
    AddVlog {
        num: u64,
    },
    RemoveVlog {
        num: u64,
    },
    NextFile(u64),
    WalFloor(u64),
    Topic {
        id: u32,
        spec: TopicSpec,
    },
    Loss {
        id: u32,
        dropped: u64,
        gaps: u64,
    },
    NextSeq {
        id: u32,
        next: u64,
    },
    Retention {
        files: u64,
        bytes: u64,
        messages: u64,
    },
    /// Wall-clock ns when the table's newest record was written (flush
    /// time; for a compaction output, the latest of its inputs).
    TableWritten {
        num: u64,
        wall: u64,
    },
    /// Format features the store uses (bits, ORed in): a version that
    /// does not know this tag cannot open the store, and one that does
    /// refuses bits it does not know.
    Features(u64),
    /// An event mark, whole: a later edit with the same id replaces it
    /// (unpin, a pin released by retention).
    Mark(Mark),
    /// File `num` (a table or a value-log file) was dropped by retention,
    /// not replaced by compaction: an offloaded copy keeps it
    /// (`Options::remember_dropped`).
    Dropped(u64),
}

/// Value-log pointers may be encoded (entry kind 2).
pub const FEATURE_ENCODED_VALUES: u64 = 1;
/// The manifest holds `Mark` edits (tag 14).
pub const FEATURE_MARKS: u64 = 2;
/// The manifest holds `Dropped` edits (tag 15).
pub const FEATURE_DROPPED: u64 = 4;
/// Every feature this version reads.
pub const KNOWN_FEATURES: u64 = FEATURE_ENCODED_VALUES | FEATURE_MARKS | FEATURE_DROPPED;
/// The most `Dropped` file numbers a manifest keeps (the oldest go first):
/// a push long behind may miss that older ones were dropped by retention.
pub const MAX_DROPPED: usize = 100_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicEntry {
    pub spec: TopicSpec,
    pub dropped: u64,
    pub gaps: u64,
    pub next_seq: u64,
}

/// The state the edits describe.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// table number -> level
    pub tables: BTreeMap<u64, u8>,
    pub vlogs: BTreeSet<u64>,
    pub next_file: u64,
    pub wal_floor: u64,
    pub topics: BTreeMap<u32, TopicEntry>,
    pub retention: (u64, u64, u64),
    /// table number -> `TableWritten` wall time
    pub table_wall: BTreeMap<u64, u64>,
    /// `Features` bits.
    pub features: u64,
    /// Event marks by id.
    pub marks: BTreeMap<u64, Mark>,
    /// Files retention dropped (`Edit::Dropped`), at most `MAX_DROPPED`.
    pub dropped: BTreeSet<u64>,
}

impl State {
    pub fn apply(&mut self, e: &Edit) {
        match e {
            Edit::AddTable { level, num } => {
                self.tables.insert(*num, *level);
            }
            Edit::RemoveTable { num, .. } => {
                self.tables.remove(num);
                self.table_wall.remove(num);
            }
            Edit::AddVlog { num } => {
                self.vlogs.insert(*num);
            }
            Edit::RemoveVlog { num } => {
                self.vlogs.remove(num);
            }
            Edit::NextFile(n) => self.next_file = self.next_file.max(*n),
            Edit::WalFloor(n) => self.wal_floor = self.wal_floor.max(*n),
            Edit::Topic { id, spec } => self.topics.entry(*id).or_default().spec = spec.clone(),
            Edit::Loss { id, dropped, gaps } => {
                let t = self.topics.entry(*id).or_default();
                t.dropped = *dropped;
                t.gaps = *gaps;
            }
            Edit::NextSeq { id, next } => {
                let t = self.topics.entry(*id).or_default();
                t.next_seq = t.next_seq.max(*next);
            }
            Edit::Retention {
                files,
                bytes,
                messages,
            } => self.retention = (*files, *bytes, *messages),
            Edit::TableWritten { num, wall } => {
                self.table_wall.insert(*num, *wall);
            }
            Edit::Features(bits) => self.features |= bits,
            Edit::Mark(m) => {
                self.marks.insert(m.id, m.clone());
            }
            Edit::Dropped(n) => {
                self.dropped.insert(*n);
                while self.dropped.len() > MAX_DROPPED {
                    self.dropped.pop_first();
                }
            }
        }
    }

    /// Edits that recreate this state from nothing.
    pub fn snapshot(&self) -> Vec<Edit> {
        let mut out = Vec::new();
        if self.features != 0 {
            // First, so a version without the tag stops before anything.
            out.push(Edit::Features(self.features));
        }
        out.extend([
            Edit::NextFile(self.next_file),
            Edit::WalFloor(self.wal_floor),
            Edit::Retention {
                files: self.retention.0,
                bytes: self.retention.1,
                messages: self.retention.2,
            },
        ]);
        for (id, t) in &self.topics {
            out.push(Edit::Topic {
                id: *id,
                spec: t.spec.clone(),
            });
            out.push(Edit::Loss {
                id: *id,
                dropped: t.dropped,
                gaps: t.gaps,
            });
            out.push(Edit::NextSeq {
                id: *id,
                next: t.next_seq,
            });
        }
        out.extend(self.vlogs.iter().map(|n| Edit::AddVlog { num: *n }));
        out.extend(self.marks.values().cloned().map(Edit::Mark));
        out.extend(self.dropped.iter().map(|n| Edit::Dropped(*n)));
        for (n, l) in &self.tables {
            out.push(Edit::AddTable { level: *l, num: *n });
            if let Some(w) = self.table_wall.get(n) {
                out.push(Edit::TableWritten { num: *n, wall: *w });
            }
        }
        out
    }
}

fn encode_edit(b: &mut Vec<u8>, e: &Edit) {
    match e {
        Edit::AddTable { level, num } => {
            put_u8(b, 1);
            put_u8(b, *level);
            put_u64(b, *num);
        }
        Edit::RemoveTable { level, num } => {
            put_u8(b, 2);
            put_u8(b, *level);
            put_u64(b, *num);
        }
        Edit::AddVlog { num } => {
            put_u8(b, 3);
            put_u64(b, *num);
        }
        Edit::RemoveVlog { num } => {
            put_u8(b, 4);
            put_u64(b, *num);
        }
        Edit::NextFile(n) => {
            put_u8(b, 5);
            put_u64(b, *n);
        }
        Edit::WalFloor(n) => {
            put_u8(b, 6);
            put_u64(b, *n);
        }
        Edit::Topic { id, spec } => {
            // Tag 12 adds the type hash; a spec without one keeps tag 7,
            // the layout written before type hashes were kept.
            put_u8(b, if spec.type_hash.is_empty() { 7 } else { 12 });
            put_u32(b, *id);
            for s in [
                &spec.name,
                &spec.type_name,
                &spec.serialization_format,
                &spec.definition,
                &spec.offered_qos,
            ] {
                put_bytes(b, s.as_bytes());
            }
            if !spec.type_hash.is_empty() {
                put_bytes(b, spec.type_hash.as_bytes());
            }
        }
        Edit::Loss { id, dropped, gaps } => {
            put_u8(b, 8);
            put_u32(b, *id);
            put_u64(b, *dropped);
            put_u64(b, *gaps);
        }
        Edit::NextSeq { id, next } => {
            put_u8(b, 9);
            put_u32(b, *id);
            put_u64(b, *next);
        }
        Edit::Retention {
            files,
            bytes,
            messages,
        } => {
            put_u8(b, 10);
            put_u64(b, *files);
            put_u64(b, *bytes);
            put_u64(b, *messages);
        }
        Edit::TableWritten { num, wall } => {
            put_u8(b, 11);
            put_u64(b, *num);
            put_u64(b, *wall);
        }
        Edit::Dropped(n) => {
            put_u8(b, 15);
            put_u64(b, *n);
        }
        Edit::Features(bits) => {
            put_u8(b, 13);
            put_u64(b, *bits);
        }
        Edit::Mark(m) => {
            put_u8(b, 14);
            put_u64(b, m.id);
            put_u64(b, m.start);
            put_u64(b, m.end);
            put_u64(b, m.created);
            put_u8(b, u8::from(m.pinned) | (u8::from(m.released) << 1));
            put_bytes(b, m.label.as_bytes());
            put_u32(b, m.tags.len() as u32);
            for t in &m.tags {
                put_bytes(b, t.as_bytes());
            }
        }
    }
}

fn decode_edit(d: &mut Dec<'_>) -> Option<Edit> {
    Some(match d.u8()? {
        1 => Edit::AddTable {
            level: d.u8()?,
            num: d.u64()?,
        },
        2 => Edit::RemoveTable {
            level: d.u8()?,
            num: d.u64()?,
        },
        3 => Edit::AddVlog { num: d.u64()? },
        4 => Edit::RemoveVlog { num: d.u64()? },
        5 => Edit::NextFile(d.u64()?),
        6 => Edit::WalFloor(d.u64()?),
        tag @ (7 | 12) => Edit::Topic {
            id: d.u32()?,
            spec: TopicSpec {
                name: d.string()?,
                type_name: d.string()?,
                serialization_format: d.string()?,
                definition: d.string()?,
                offered_qos: d.string()?,
                type_hash: if tag == 12 {
                    d.string()?
                } else {
                    String::new()
                },
            },
        },
        8 => Edit::Loss {
            id: d.u32()?,
            dropped: d.u64()?,
            gaps: d.u64()?,
        },
        9 => Edit::NextSeq {
            id: d.u32()?,
            next: d.u64()?,
        },
        10 => Edit::Retention {
            files: d.u64()?,
            bytes: d.u64()?,
            messages: d.u64()?,
        },
        11 => Edit::TableWritten {
            num: d.u64()?,
            wall: d.u64()?,
        },
        13 => Edit::Features(d.u64()?),
        14 => Edit::Mark(decode_mark(d)?),
        15 => Edit::Dropped(d.u64()?),
        _ => return None,
    })
}

fn decode_mark(d: &mut Dec<'_>) -> Option<Mark> {
    let (id, start, end, created, flags) = (d.u64()?, d.u64()?, d.u64()?, d.u64()?, d.u8()?);
    let label = d.string()?;
    let count = usize::try_from(d.u32()?).ok()?;
    // Bounded before anything is allocated for it: tags are what
    // `NewMark::check` lets in.
    if flags > 3 || start > end || id == 0 || count > MAX_TAGS {
        return None;
    }
    let tags = (0..count).map(|_| d.string()).collect::<Option<Vec<_>>>()?;
    Some(Mark {
        id,
        label,
        tags,
        start,
        end,
        pinned: flags & 1 != 0,
        released: flags & 2 != 0,
        created,
    })
}

/// Topic ids are dense (register_topic hands out the next one), so an
/// edit may name a known id or the next one; anything beyond is damage,
/// and applying it would make the catalog allocate one slot per id.
fn check_topic_id(st: &State, e: &Edit) -> std::result::Result<(), String> {
    let id = match e {
        Edit::Topic { id, .. } | Edit::Loss { id, .. } | Edit::NextSeq { id, .. } => *id,
        _ => return Ok(()),
    };
    let known = st.topics.len();
    if usize::try_from(id).map_or(true, |i| i > known) {
        return Err(format!(
            "topic id {id} beyond the {known} registered topics"
        ));
    }
    Ok(())
}

/// Batch payload: `count u32 | edit*` (edit = tag u8 + fields).
fn encode_batch(edits: &[Edit]) -> Vec<u8> {
    let mut b = Vec::new();
    put_u32(&mut b, edits.len() as u32);
    for e in edits {
        encode_edit(&mut b, e);
    }
    b
}

/// Replays the manifest. A missing file is an empty state.
pub fn load(fs: &dyn FileSystem, dir: &Path) -> Result<(State, u64, bool)> {
    let path = dir.join(FILE);
    if !fs.exists(&path) {
        return Ok((State::default(), 0, false));
    }
    let data = fs.read_all(&path).map_err(io_err(&path))?;
    let (st, dropped, _) = parse(&data, &path)?;
    Ok((st, dropped, true))
}

/// Replays manifest bytes; returns the state, the bytes of a torn last
/// batch and the number of batches. Every batch is fsynced, then followed
/// by an empty commit batch, fsynced too, before it is acknowledged, and
/// nothing is written after a failed one. So an acknowledged batch always
/// has a valid frame after it: damage that no valid frame follows is the
/// torn last write (never acknowledged) and is dropped; damage followed by
/// a valid frame is corruption.
pub fn parse(data: &[u8], path: &Path) -> Result<(State, u64, u64)> {
    let frames = read_frames(data, path);
    if let Some(damage) = frames.damage {
        if let Some((off, _)) = frames_after(data, frames.valid_len).first() {
            return Err(corrupt(
                path,
                frames.valid_len,
                format!("{damage}; a valid batch follows at offset {off}, so this is not a torn last batch"),
            ));
        }
    }
    let mut st = State::default();
    for (off, payload) in &frames.frames {
        let mut d = Dec::new(payload);
        let n = d
            .u32()
            .ok_or_else(|| corrupt(path, *off, "bad edit batch"))?;
        for _ in 0..n {
            let e = decode_edit(&mut d).ok_or_else(|| corrupt(path, *off, "bad edit"))?;
            check_topic_id(&st, &e).map_err(|reason| corrupt(path, *off, reason))?;
            st.apply(&e);
            // At once: a feature's edits follow it in later batches, and
            // this version would read them as damage.
            let unknown = st.features & !KNOWN_FEATURES;
            if unknown != 0 {
                return Err(Error::InvalidArgument(format!(
                    "{}: the store uses format features {unknown:#x} that this version of motedb does not read; open it with the version that wrote it or a newer one",
                    path.display()
                )));
            }
        }
    }
    Ok((st, frames.dropped, frames.frames.len() as u64))
}

/// The manifest is rewritten as a snapshot once its log grows past this
/// many bytes beyond the last snapshot (a long recording logs an edit
/// batch per flush and compaction).
const REWRITE_AFTER: u64 = if cfg!(test) { 4 << 10 } else { 16 << 20 };

pub struct ManifestWriter {
    fs: Arc<dyn FileSystem>,
    dir: PathBuf,
    path: PathBuf,
    file: Box<dyn WritableFile>,
    buf: Vec<u8>,
    state: State,
    logged: u64,
    /// Set by the first failed append or fsync: the file's tail is then
    /// unknown, so no later batch may follow it; the next `log` rewrites
    /// the file first.
    broken: Option<String>,
}

/// A whole manifest holding `state`: its snapshot batch and a commit frame.
pub fn snapshot_bytes(state: &State) -> Vec<u8> {
    let mut buf = Vec::new();
    put_frame(&mut buf, &encode_batch(&state.snapshot()));
    put_frame(&mut buf, &encode_batch(&[]));
    buf
}

fn write_snapshot(fs: &dyn FileSystem, dir: &Path, state: &State) -> Result<Box<dyn WritableFile>> {
    let tmp = dir.join(TMP);
    let path = dir.join(FILE);
    let buf = snapshot_bytes(state);
    let mut f = fs.create(&tmp).map_err(io_err(&tmp))?;
    f.append(&buf).map_err(io_err(&tmp))?;
    f.sync().map_err(io_err(&tmp))?;
    drop(f);
    fs.rename(&tmp, &path).map_err(io_err(&path))?;
    fs.sync_dir(dir).map_err(io_err(dir))?;
    fs.open_append(&path).map_err(io_err(&path))
}

impl ManifestWriter {
    /// Writes `state` as a fresh manifest atomically (temp file, fsync,
    /// rename, directory fsync) and opens it for appending edits.
    pub fn rewrite(fs: Arc<dyn FileSystem>, dir: &Path, state: &State) -> Result<ManifestWriter> {
        let file = write_snapshot(&*fs, dir, state)?;
        Ok(ManifestWriter {
            fs,
            dir: dir.to_path_buf(),
            path: dir.join(FILE),
            file,
            buf: Vec::new(),
            state: state.clone(),
            logged: 0,
            broken: None,
        })
    }

    /// Appends one atomic batch and fsyncs it; Ok means the batch is
    /// durable. Compacts the log into a snapshot when it has grown large.
    pub fn log(&mut self, edits: &[Edit]) -> Result<()> {
        if let Some(why) = &self.broken {
            // The old file's tail is unknown: replace the whole file with a
            // snapshot of the acknowledged state, then go on.
            match write_snapshot(&*self.fs, &self.dir, &self.state) {
                Ok(f) => {
                    self.file = f;
                    self.logged = 0;
                    self.broken = None;
                }
                Err(e) => {
                    return Err(Error::WriteStopped(format!(
                        "manifest write failed earlier ({why}); rewriting it failed too: {e}"
                    )))
                }
            }
        }
        self.buf.clear();
        put_frame(&mut self.buf, &encode_batch(edits));
        let batch = self.buf.len();
        put_frame(&mut self.buf, &encode_batch(&[]));
        let (edit, commit) = self.buf.split_at(batch);
        // Two fsyncs: the commit may only reach the disk after the batch.
        let r = self
            .file
            .append(edit)
            .and_then(|()| self.file.sync())
            .and_then(|()| self.file.append(commit))
            .and_then(|()| self.file.sync())
            .map_err(io_err(&self.path));
        if let Err(e) = r {
            self.broken = Some(e.to_string());
            return Err(e);
        }
        for e in edits {
            self.state.apply(e);
        }
        self.logged += self.buf.len() as u64;
        if self.logged > REWRITE_AFTER {
            // The batch is durable either way; a failed rewrite only stops
            // later batches.
            match write_snapshot(&*self.fs, &self.dir, &self.state) {
                Ok(f) => {
                    self.file = f;
                    self.logged = 0;
                }
                Err(e) => self.broken = Some(e.to_string()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fs::FaultFs;

    #[test]
    fn manifest_round_trip_through_rewrite_and_log() {
        let fault = FaultFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(fault.clone());
        let dir = Path::new("/db");
        let mut st = State::default();
        st.apply(&Edit::Topic {
            id: 0,
            spec: TopicSpec {
                name: "/a".into(),
                ..TopicSpec::default()
            },
        });
        let mut w = ManifestWriter::rewrite(fs.clone(), dir, &st).unwrap();
        let edits = [
            Edit::AddTable { level: 0, num: 5 },
            Edit::AddVlog { num: 6 },
            Edit::NextFile(7),
            Edit::NextSeq { id: 0, next: 42 },
        ];
        w.log(&edits).unwrap();
        w.log(&[Edit::RemoveTable { level: 0, num: 5 }]).unwrap();
        // Enough edits to force a snapshot rewrite on the way.
        for i in 0..(REWRITE_AFTER / 20) {
            w.log(&[Edit::NextSeq { id: 1, next: i }]).unwrap();
        }
        assert!(fault.contents(&dir.join(FILE)).unwrap().len() < REWRITE_AFTER as usize);
        let (got, dropped, existed) = load(&*fs, dir).unwrap();
        assert_eq!(got.topics[&1].next_seq, REWRITE_AFTER / 20 - 1);
        assert!(existed);
        assert_eq!(dropped, 0);
        assert!(got.tables.is_empty());
        assert_eq!(got.vlogs.iter().copied().collect::<Vec<_>>(), vec![6]);
        assert_eq!(got.next_file, 7);
        assert_eq!(got.topics[&0].next_seq, 42);
        assert_eq!(got.topics[&0].spec.name, "/a");
    }

    #[test]
    fn an_unknown_feature_is_refused_by_name_before_the_edits_it_announces() {
        // What a later version writes: its feature bit in a batch of its
        // own, then an edit with a tag this version does not know.
        let mut data = Vec::new();
        put_frame(&mut data, &encode_batch(&[Edit::Features(1 << 9)]));
        let mut unknown = Vec::new();
        put_u32(&mut unknown, 1);
        put_u8(&mut unknown, 200);
        put_frame(&mut data, &unknown);
        let err = parse(&data, Path::new("/db/MANIFEST"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("format features 0x200"), "{err}");
    }

    #[test]
    fn a_mark_edit_round_trips_replaces_by_id_and_damage_is_refused() {
        let m = Mark {
            id: 3,
            label: "estop".into(),
            tags: vec!["a".into(), "bb".into()],
            start: 10,
            end: 20,
            pinned: true,
            released: false,
            created: 99,
        };
        let mut b = Vec::new();
        encode_edit(&mut b, &Edit::Mark(m.clone()));
        let mut d = Dec::new(&b);
        assert_eq!(decode_edit(&mut d), Some(Edit::Mark(m.clone())));
        let mut st = State::default();
        st.apply(&Edit::Mark(m.clone()));
        let released = Mark {
            pinned: false,
            released: true,
            ..m.clone()
        };
        st.apply(&Edit::Mark(released.clone()));
        assert_eq!(st.marks.values().collect::<Vec<_>>(), vec![&released]);
        assert!(st.snapshot().contains(&Edit::Mark(released)));
        // Damage: unknown flag bits, a reversed window, id 0, a tag count
        // beyond the limit (refused before anything is allocated for it).
        let flags_at = 1 + 8 * 4;
        for (at, byte) in [(flags_at, 4u8), (1 + 8, 0xFF), (1, 0)] {
            let mut bad = b.clone();
            bad[at] = byte;
            if at == 1 {
                bad[1..9].fill(0);
            }
            assert_eq!(decode_edit(&mut Dec::new(&bad)), None, "byte {at}");
        }
        let count_at = flags_at + 1 + 4 + m.label.len();
        let mut bad = b.clone();
        bad[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_edit(&mut Dec::new(&bad)), None);
    }

    #[test]
    fn topic_edit_keeps_its_type_hash_and_old_tag_7_still_decodes() {
        let with = TopicSpec {
            name: "/a".into(),
            type_name: "std_msgs/msg/String".into(),
            type_hash: format!("RIHS01_{}", "ab".repeat(32)),
            ..TopicSpec::default()
        };
        let without = TopicSpec {
            type_hash: String::new(),
            ..with.clone()
        };
        // Tag 7 as it has always been written: id 3, then five strings.
        let mut old = vec![7u8, 3, 0, 0, 0];
        for s in ["/a", "std_msgs/msg/String", "", "", ""] {
            old.extend((s.len() as u32).to_le_bytes());
            old.extend(s.as_bytes());
        }
        match decode_edit(&mut Dec::new(&old)) {
            Some(Edit::Topic { id: 3, spec: got }) => assert_eq!(got, without),
            other => panic!("decoded {other:?}"),
        }
        for spec in [with, without] {
            let mut b = Vec::new();
            encode_edit(
                &mut b,
                &Edit::Topic {
                    id: 3,
                    spec: spec.clone(),
                },
            );
            assert_eq!(b[0], if spec.type_hash.is_empty() { 7 } else { 12 });
            let mut d = Dec::new(&b);
            match decode_edit(&mut d) {
                Some(Edit::Topic { id: 3, spec: got }) => assert_eq!(got, spec),
                other => panic!("decoded {other:?}"),
            }
        }
    }

    #[test]
    fn manifest_flipped_byte_is_an_error() {
        let fault = FaultFs::new();
        let fs: Arc<dyn FileSystem> = Arc::new(fault.clone());
        let dir = Path::new("/db");
        let mut w = ManifestWriter::rewrite(fs.clone(), dir, &State::default()).unwrap();
        w.log(&[Edit::AddTable { level: 0, num: 5 }]).unwrap();
        fault.flip_byte(&dir.join(FILE), 9);
        assert!(load(&*fs, dir).is_err());
    }
}
