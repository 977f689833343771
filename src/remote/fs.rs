//! Read-only file systems for the engine: `ReadOnlyFs` over a `Source` of
//! named files. Two sources: `RemoteFs` (a pushed store, read with range
//! requests through a page cache) and `Snapshot` (a local store cut to the
//! manifest bytes and file sizes a push uploads, to check the copy opens).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::Mutex;

use super::index::{Chunk, Index, RemoteFile};
use super::{Bucket, Location, RemoteError, Result, INDEX};
use crate::engine::fs::{FileSystem, LockGuard, RandomAccessFile, WritableFile};
use crate::engine::{Options, Store};

/// Named read-only files.
pub trait Source: Send + Sync + 'static {
    fn size(&self, name: &str) -> Option<u64>;
    fn names(&self) -> Vec<String>;
    /// Fills `buf` from `off`; the caller has checked the bounds.
    fn read_at(&self, name: &str, buf: &mut [u8], off: u64) -> io::Result<()>;
}

/// The engine's view of a `Source`: every write is refused.
pub struct ReadOnlyFs<S>(pub Arc<S>);

impl<S> std::fmt::Debug for ReadOnlyFs<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadOnlyFs")
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn refused() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "a remote or snapshot store is read-only",
    )
}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{} is not in the store", path.display()),
    )
}

struct ReadOnlyFile<S> {
    src: Arc<S>,
    name: String,
    size: u64,
}

impl<S: Source> RandomAccessFile for ReadOnlyFile<S> {
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if offset.saturating_add(buf.len() as u64) > self.size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{}: read past its end", self.name),
            ));
        }
        self.src.read_at(&self.name, buf, offset)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }
}

impl<S: Source> FileSystem for ReadOnlyFs<S> {
    fn create_dir_all(&self, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn create(&self, _: &Path) -> io::Result<Box<dyn WritableFile>> {
        Err(refused())
    }
    fn open_append(&self, _: &Path) -> io::Result<Box<dyn WritableFile>> {
        Err(refused())
    }
    fn open_read(&self, path: &Path) -> io::Result<Arc<dyn RandomAccessFile>> {
        let name = file_name(path);
        let size = self.0.size(&name).ok_or_else(|| not_found(path))?;
        Ok(Arc::new(ReadOnlyFile {
            src: self.0.clone(),
            name,
            size,
        }))
    }
    fn read_all(&self, path: &Path) -> io::Result<Vec<u8>> {
        let f = self.open_read(path)?;
        let mut buf = vec![0; f.size()? as usize];
        f.read_at(&mut buf, 0)?;
        Ok(buf)
    }
    fn truncate(&self, _: &Path, _: u64) -> io::Result<()> {
        Err(refused())
    }
    fn rename(&self, _: &Path, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn remove(&self, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Err(refused())
    }
    fn list(&self, _: &Path) -> io::Result<Vec<String>> {
        Ok(self.0.names())
    }
    fn exists(&self, path: &Path) -> bool {
        self.0.size(&file_name(path)).is_some()
    }
    fn lock(&self, _: &Path) -> io::Result<Box<dyn LockGuard>> {
        Err(refused())
    }
    fn lock_owner(&self, _: &Path) -> Option<u32> {
        None
    }
}

/// Bytes per cached page of a remote file.
const PAGE: u64 = 256 << 10;
/// Pages kept, about 64 MiB.
const CACHED_PAGES: usize = 256;

/// A pushed store read in place: the index names the chunks, reads fetch
/// the pages they need with range requests. Each chunk fetched whole is
/// checked against its checksum; partial reads rely on the engine's own
/// checksums (every table block, value-log entry, WAL record and manifest
/// batch carries one), so damaged bytes are never served as data.
pub struct RemoteFs {
    pub bucket: Arc<Bucket>,
    pub location: Location,
    pub index: Index,
    cache: Mutex<PageCache>,
}

#[derive(Default)]
struct PageCache {
    pages: HashMap<(String, u64), Arc<Vec<u8>>>,
    order: VecDeque<(String, u64)>,
}

impl PageCache {
    fn insert(&mut self, key: (String, u64), page: Arc<Vec<u8>>) {
        if self.pages.insert(key.clone(), page).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > CACHED_PAGES {
            if let Some(old) = self.order.pop_front() {
                self.pages.remove(&old);
            }
        }
    }
}

fn io_error(e: RemoteError) -> io::Error {
    let kind = match e {
        RemoteError::Corrupt { .. } => io::ErrorKind::InvalidData,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

impl RemoteFs {
    /// Reads the index of the store at `location`.
    pub fn open(bucket: Arc<Bucket>, location: Location) -> Result<RemoteFs> {
        let url = location.to_string();
        let bytes = match bucket.get_opt(&location.key(INDEX)) {
            Ok(Some(b)) => b,
            Ok(None) => {
                bucket.check()?;
                return Err(RemoteError::NoStore(url));
            }
            Err(e) => return Err(e),
        };
        let index = Index::parse(&bytes, &url)?;
        Ok(RemoteFs::over(bucket, location, index))
    }

    /// The files an index names, without reading it from the bucket.
    pub fn over(bucket: Arc<Bucket>, location: Location, index: Index) -> RemoteFs {
        RemoteFs {
            bucket,
            location,
            index,
            cache: Mutex::new(PageCache::default()),
        }
    }

    fn chunk_key(&self, name: &str, c: &Chunk) -> String {
        self.location.key(&c.key(name))
    }

    /// One whole chunk, checked against its length and checksum.
    pub fn fetch_chunk(&self, name: &str, c: &Chunk) -> Result<Vec<u8>> {
        let key = self.chunk_key(name, c);
        let data = self.bucket.get_range(&key, 0..c.len)?;
        let got = crc32fast::hash(&data);
        if got != c.crc32 {
            return Err(RemoteError::Corrupt {
                url: format!("s3://{}", self.bucket.bucket),
                key,
                detail: format!("checksum {got:08x}, the index says {:08x}", c.crc32),
            });
        }
        Ok(data)
    }

    /// Bytes `[start, end)` of a file, one request per chunk it meets.
    fn fetch(&self, name: &str, file: &RemoteFile, start: u64, end: u64) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity((end - start) as usize);
        for c in file
            .chunks
            .iter()
            .filter(|c| c.end() > start && c.offset < end)
        {
            let (s, e) = (start.max(c.offset), end.min(c.end()));
            if s == c.offset && e == c.end() {
                out.extend(self.fetch_chunk(name, c)?);
            } else {
                let key = self.chunk_key(name, c);
                out.extend(self.bucket.get_range(&key, s - c.offset..e - c.offset)?);
            }
        }
        Ok(out)
    }

    /// Fetches every chunk whole and checks it: the damaged or missing
    /// ones with why. Any other failure (the server, the network) is an
    /// error, not damage.
    pub fn verify_chunks(&self) -> Result<Vec<(String, String)>> {
        let mut bad = Vec::new();
        for (name, f) in &self.index.files {
            for c in &f.chunks {
                match self.fetch_chunk(name, c) {
                    Ok(_) => {}
                    Err(e @ (RemoteError::Corrupt { .. } | RemoteError::Missing { .. })) => {
                        bad.push((self.chunk_key(name, c), e.to_string()))
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(bad)
    }
}

impl Source for RemoteFs {
    fn size(&self, name: &str) -> Option<u64> {
        self.index.files.get(name).map(|f| f.size)
    }

    fn names(&self) -> Vec<String> {
        self.index.files.keys().cloned().collect()
    }

    fn read_at(&self, name: &str, buf: &mut [u8], off: u64) -> io::Result<()> {
        let Some(file) = self.index.files.get(name) else {
            return Err(io::Error::new(io::ErrorKind::NotFound, name.to_string()));
        };
        if buf.is_empty() {
            return Ok(());
        }
        let end = off + buf.len() as u64;
        let (first, last) = (off / PAGE, (end - 1) / PAGE);
        let mut pages: BTreeMap<u64, Arc<Vec<u8>>> = BTreeMap::new();
        {
            let cache = self.cache.lock();
            for p in first..=last {
                if let Some(page) = cache.pages.get(&(name.to_string(), p)) {
                    pages.insert(p, page.clone());
                }
            }
        }
        // Each run of missing pages is fetched with one request per chunk.
        let mut p = first;
        while p <= last {
            if pages.contains_key(&p) {
                p += 1;
                continue;
            }
            let mut q = p;
            while q < last && !pages.contains_key(&(q + 1)) {
                q += 1;
            }
            let (s, e) = (p * PAGE, ((q + 1) * PAGE).min(file.size));
            let data = self.fetch(name, file, s, e).map_err(io_error)?;
            let mut cache = self.cache.lock();
            for (i, bytes) in data.chunks(PAGE as usize).enumerate() {
                let page = Arc::new(bytes.to_vec());
                cache.insert((name.to_string(), p + i as u64), page.clone());
                pages.insert(p + i as u64, page);
            }
            p = q + 1;
        }
        let mut at = 0usize;
        for (p, page) in pages {
            let page_start = p * PAGE;
            let from = (off.max(page_start) - page_start) as usize;
            let to = ((end.min(page_start + page.len() as u64)) - page_start) as usize;
            let n = to - from;
            buf[at..at + n].copy_from_slice(&page[from..to]);
            at += n;
        }
        Ok(())
    }
}

/// A remote store opened for reading; the engine sees its files under the
/// path `s3://bucket/prefix`, so errors name the remote file.
pub fn open_store(bucket: Arc<Bucket>, location: &Location) -> Result<(Store, Arc<RemoteFs>)> {
    let rfs = Arc::new(RemoteFs::open(bucket, location.clone())?);
    Ok((open_with(&rfs)?, rfs))
}

/// The store whose index `rfs` holds.
pub fn open_with(rfs: &Arc<RemoteFs>) -> Result<Store> {
    let options = Options {
        fs: Arc::new(ReadOnlyFs(rfs.clone())),
        ..Options::default()
    };
    Ok(Store::open_read_only_with(
        PathBuf::from(rfs.location.to_string()),
        options,
    )?)
}

/// A local store as a push uploads it: the manifest bytes it read and
/// each file as opened then, cut to the size uploaded.
pub struct Snapshot {
    pub manifest: Vec<u8>,
    pub files: BTreeMap<String, (Arc<std::fs::File>, u64)>,
    /// Files only the copy holds (dropped here by retention), read from it.
    pub archived: Option<RemoteFs>,
}

impl Source for Snapshot {
    fn size(&self, name: &str) -> Option<u64> {
        if name == crate::engine::MANIFEST_FILE {
            return Some(self.manifest.len() as u64);
        }
        self.files
            .get(name)
            .map(|f| f.1)
            .or_else(|| self.archived.as_ref().and_then(|a| a.size(name)))
    }

    fn names(&self) -> Vec<String> {
        let mut n: Vec<String> = self.files.keys().cloned().collect();
        n.extend(self.archived.iter().flat_map(|a| a.names()));
        n.push(crate::engine::MANIFEST_FILE.to_string());
        n
    }

    fn read_at(&self, name: &str, buf: &mut [u8], off: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        if name == crate::engine::MANIFEST_FILE {
            let s = off as usize;
            buf.copy_from_slice(&self.manifest[s..s + buf.len()]);
            return Ok(());
        }
        match (self.files.get(name), &self.archived) {
            (Some((f, _)), _) => f.read_exact_at(buf, off),
            (None, Some(a)) => a.read_at(name, buf, off),
            (None, None) => Err(io::Error::new(io::ErrorKind::NotFound, name.to_string())),
        }
    }
}
