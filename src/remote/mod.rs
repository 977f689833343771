//! Stores in S3-compatible object storage (issue 14): `push` mirrors a
//! local store, live or not, to a bucket prefix as immutable chunk objects
//! plus an index written last (the commit point); `RemoteFs` serves such a
//! copy to the engine as a read-only file system with range reads, so every
//! read-only command works on `s3://bucket/prefix` without downloading it.
//!
//! The S3 client is the `object_store` crate (signing, retries); this
//! module wraps it in a blocking API on a runtime of its own, since the
//! engine's file layer is synchronous.
//!
//! Remote layout under the prefix (docs/format.md, "Remote stores"):
//!   motedb-index.json                      the index, replaced by each push
//!   chunks/<file>/<offset>-<len>-<crc32>   immutable byte ranges of files

pub mod fs;
pub mod index;
pub mod offload;
pub mod push;

use std::fmt;
use std::ops::Range;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutPayload, RetryConfig};

pub use fs::{open_store, open_with, RemoteFs};
pub use index::{Chunk, Index, RemoteFile, Summary, TopicSummary};
pub use offload::{offloaded_guard, OffloadSettings, OffloadStatus, Offloaded, Offloader};
pub use push::{push, PushOptions, PushReport};

/// The name of the index object under a store's prefix.
pub const INDEX: &str = "motedb-index.json";

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{0}")]
    Usage(String),
    #[error("bucket {bucket:?} does not exist at {endpoint} (create it, or check the URL)")]
    NoBucket { bucket: String, endpoint: String },
    #[error("access denied by {endpoint} for bucket {bucket:?}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the credentials file) and the key's permissions ({detail})")]
    Denied {
        bucket: String,
        endpoint: String,
        detail: String,
    },
    #[error("no motedb store at {0} (no {INDEX}): push one with `motedb push`")]
    NoStore(String),
    #[error("object {key} is missing from {url}: the remote store changed or is damaged")]
    Missing { url: String, key: String },
    #[error("object {key} in {url} is corrupt: {detail}")]
    Corrupt {
        url: String,
        key: String,
        detail: String,
    },
    #[error("{url}: {detail}")]
    Request { url: String, detail: String },
    #[error("reading {path}: {source}")]
    Local {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url} holds the copy of another store (pushed from {source_name}, generation {generation}): pushing this one would replace it and then delete what only that copy holds. Push to another prefix, or replace that copy on purpose with `motedb push --replace`")]
    OtherStore {
        url: String,
        source_name: String,
        generation: u64,
    },
    #[error("{url}: another push committed generation {theirs} while this one ran (it started from generation {ours}), so this one did not commit. One pusher per prefix: stop the other (a node's offload or a `motedb push --every`)")]
    Conflict { url: String, ours: u64, theirs: u64 },
    #[error("the local store: {0}")]
    Store(#[from] crate::engine::Error),
    #[error("cancelled")]
    Cancelled,
}

pub type Result<T> = std::result::Result<T, RemoteError>;

/// `s3://bucket/prefix`: a store's place in a bucket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub bucket: String,
    /// Without leading or trailing slashes; may be empty (the bucket root).
    pub prefix: String,
}

impl Location {
    pub fn parse(url: &str) -> Result<Location> {
        let bad = |why: &str| {
            RemoteError::Usage(format!(
                "bad store URL {url:?}: {why} (expected s3://bucket/prefix)"
            ))
        };
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| bad("it does not start with s3://"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let valid_bucket = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !bucket.starts_with(['-', '.'])
            && !bucket.ends_with(['-', '.']);
        if !valid_bucket {
            return Err(bad(
                "the bucket name must be 3-63 lowercase letters, digits, '-' or '.'",
            ));
        }
        let prefix = prefix.trim_matches('/');
        if prefix
            .split('/')
            .any(|p| p.is_empty() && !prefix.is_empty())
            || prefix.split('/').any(|p| p == "." || p == "..")
        {
            return Err(bad("empty, '.' or '..' path segments"));
        }
        if prefix
            .bytes()
            .any(|b| b.is_ascii_control() || b == b'\\' || b == b'*' || b == b'?')
        {
            return Err(bad("control characters, '\\\\', '*' or '?' in the prefix"));
        }
        Ok(Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// `prefix/name`, or `name` at the bucket root.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Whether a command-line store argument names a remote store.
pub fn is_remote(arg: &Path) -> bool {
    arg.to_str().is_some_and(|s| s.starts_with("s3://"))
}

/// Where and as whom to connect. From the environment (`from_env`): the
/// usual AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN,
/// AWS_REGION (or AWS_DEFAULT_REGION), and the endpoint from
/// MOTEDB_S3_ENDPOINT or AWS_ENDPOINT_URL (unset: AWS itself).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
    /// How long a request is retried (connection refused, 5xx, timeouts)
    /// before it fails.
    pub retry_for: Duration,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_env() -> Config {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Config {
            endpoint: var("MOTEDB_S3_ENDPOINT").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION").or_else(|| var("AWS_DEFAULT_REGION")),
            access_key_id: var("AWS_ACCESS_KEY_ID"),
            secret_access_key: var("AWS_SECRET_ACCESS_KEY"),
            session_token: var("AWS_SESSION_TOKEN"),
            retry_for: Duration::from_secs(60),
        }
    }

    /// Overrides from a credentials file of `KEY=VALUE` lines (an optional
    /// `export ` before each, `#` comments, values optionally quoted) with
    /// the same keys as the environment; the form `scripts/garage` writes.
    pub fn with_file(mut self, path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).map_err(|e| RemoteError::Local {
            path: path.display().to_string(),
            source: e,
        })?;
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((k, v)) = line.split_once('=') else {
                return Err(RemoteError::Usage(format!(
                    "{}:{}: expected KEY=VALUE",
                    path.display(),
                    n + 1
                )));
            };
            let v = v.trim().trim_matches(|c| c == '"' || c == '\'').to_string();
            let slot = match k.trim() {
                "AWS_ACCESS_KEY_ID" => &mut self.access_key_id,
                "AWS_SECRET_ACCESS_KEY" => &mut self.secret_access_key,
                "AWS_SESSION_TOKEN" => &mut self.session_token,
                "AWS_REGION" | "AWS_DEFAULT_REGION" => &mut self.region,
                "MOTEDB_S3_ENDPOINT" | "AWS_ENDPOINT_URL" => &mut self.endpoint,
                other => {
                    return Err(RemoteError::Usage(format!(
                        "{}:{}: unknown key {other:?}",
                        path.display(),
                        n + 1
                    )))
                }
            };
            *slot = Some(v);
        }
        Ok(self)
    }
}

/// Request and byte counters of one `Bucket` (benchmarks, `--json`).
#[derive(Debug, Default)]
pub struct Traffic {
    pub gets: AtomicU64,
    pub bytes_in: AtomicU64,
    pub puts: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// Restores the cancel flag `Bucket::cancel_on` replaced.
pub struct CancelGuard<'a> {
    bucket: &'a Bucket,
    before: Option<Arc<AtomicBool>>,
}

impl Drop for CancelGuard<'_> {
    fn drop(&mut self) {
        *self.bucket.cancel.lock() = self.before.take();
    }
}

/// A blocking client for one bucket.
pub struct Bucket {
    store: AmazonS3,
    rt: tokio::runtime::Runtime,
    cancel: parking_lot::Mutex<Option<Arc<AtomicBool>>>,
    pub bucket: String,
    pub endpoint: String,
    pub traffic: Traffic,
}

impl fmt::Debug for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bucket({} at {})", self.bucket, self.endpoint)
    }
}

impl Bucket {
    pub fn connect(cfg: &Config, bucket: &str) -> Result<Arc<Bucket>> {
        let endpoint = cfg
            .endpoint
            .clone()
            .unwrap_or_else(|| "https://s3.amazonaws.com".to_string());
        if cfg.access_key_id.is_none() || cfg.secret_access_key.is_none() {
            return Err(RemoteError::Usage(
                "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass a \
                 credentials file"
                    .to_string(),
            ));
        }
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(cfg.region.clone().unwrap_or_else(|| "us-east-1".into()))
            .with_access_key_id(cfg.access_key_id.clone().unwrap_or_default())
            .with_secret_access_key(cfg.secret_access_key.clone().unwrap_or_default())
            .with_retry(RetryConfig {
                max_retries: 1000,
                retry_timeout: cfg.retry_for,
                backoff: object_store::BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(5),
                    base: 2.0,
                },
            });
        if let Some(t) = &cfg.session_token {
            b = b.with_token(t.clone());
        }
        if let Some(e) = &cfg.endpoint {
            b = b
                .with_endpoint(e.clone())
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = b.build().map_err(|e| {
            RemoteError::Usage(format!(
                "S3 client for bucket {bucket:?} at {endpoint}: {e}"
            ))
        })?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("motedb-s3")
            .enable_all()
            .build()
            .map_err(|e| RemoteError::Local {
                path: "tokio runtime".into(),
                source: e,
            })?;
        Ok(Arc::new(Bucket {
            store,
            rt,
            cancel: parking_lot::Mutex::new(None),
            bucket: bucket.to_string(),
            endpoint,
            traffic: Traffic::default(),
        }))
    }

    fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Maps a client error to what the user can act on.
    fn error(&self, key: &str, e: object_store::Error) -> RemoteError {
        let text = e.to_string();
        let deny = || RemoteError::Denied {
            bucket: self.bucket.clone(),
            endpoint: self.endpoint.clone(),
            detail: text.lines().next().unwrap_or_default().to_string(),
        };
        if text.contains("RequestTimeTooSkewed") {
            return RemoteError::Request {
                url: self.url(key),
                detail: "the server refused the request because this machine's clock differs \
                         too much from its own: set the clock (NTP) and try again"
                    .into(),
            };
        }
        match &e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => deny(),
            _ if text.contains("NoSuchBucket") => RemoteError::NoBucket {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
            },
            _ if text.contains("AccessDenied")
                || text.contains("InvalidAccessKeyId")
                || text.contains("SignatureDoesNotMatch")
                || text.contains("403 Forbidden") =>
            {
                deny()
            }
            object_store::Error::NotFound { .. } => RemoteError::Missing {
                url: format!("s3://{}", self.bucket),
                key: key.to_string(),
            },
            _ => RemoteError::Request {
                url: self.url(key),
                detail: text,
            },
        }
    }

    /// Requests from now on give up (`RemoteError::Cancelled`) within
    /// 20 ms of `flag` being set, also while they are being retried; the
    /// previous flag is back when the guard drops.
    pub fn cancel_on(&self, flag: Option<Arc<AtomicBool>>) -> CancelGuard<'_> {
        let before = std::mem::replace(&mut *self.cancel.lock(), flag);
        CancelGuard {
            bucket: self,
            before,
        }
    }

    /// Runs a request on the runtime, given up when the cancel flag is set.
    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> Result<T> {
        let Some(cancel) = self.cancel.lock().clone() else {
            return Ok(self.rt.block_on(f));
        };
        self.rt.block_on(async {
            tokio::select! {
                r = f => Ok(r),
                _ = async {
                    while !cancel.load(Ordering::Relaxed) {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                } => Err(RemoteError::Cancelled),
            }
        })
    }

    /// The whole object; None when it does not exist.
    pub fn get_opt(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = ObjPath::from(key);
        let r = self.block(async {
            let g = self.store.get(&path).await?;
            g.bytes().await
        })?;
        match r {
            Ok(b) => {
                self.traffic.gets.fetch_add(1, Ordering::Relaxed);
                self.traffic
                    .bytes_in
                    .fetch_add(b.len() as u64, Ordering::Relaxed);
                Ok(Some(b.to_vec()))
            }
            Err(e) => match self.error(key, e) {
                RemoteError::Missing { .. } => Ok(None),
                other => Err(other),
            },
        }
    }

    pub fn get_range(&self, key: &str, range: Range<u64>) -> Result<Vec<u8>> {
        let path = ObjPath::from(key);
        let want = range.end - range.start;
        let b = self
            .block(self.store.get_range(&path, range))?
            .map_err(|e| self.error(key, e))?;
        self.traffic.gets.fetch_add(1, Ordering::Relaxed);
        self.traffic
            .bytes_in
            .fetch_add(b.len() as u64, Ordering::Relaxed);
        if b.len() as u64 != want {
            return Err(RemoteError::Corrupt {
                url: format!("s3://{}", self.bucket),
                key: key.to_string(),
                detail: format!("a range read gave {} of {want} bytes", b.len()),
            });
        }
        Ok(b.to_vec())
    }

    pub fn put(&self, key: &str, data: Vec<u8>) -> Result<()> {
        let n = data.len() as u64;
        let path = ObjPath::from(key);
        self.block(self.store.put(&path, PutPayload::from(data)))?
            .map_err(|e| self.error(key, e))?;
        self.traffic.puts.fetch_add(1, Ordering::Relaxed);
        self.traffic.bytes_out.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    pub fn delete(&self, key: &str) -> Result<()> {
        let path = ObjPath::from(key);
        match self.block(self.store.delete(&path))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(key, e)),
        }
    }

    /// Every object under `prefix/` (recursively): key and size.
    pub fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>> {
        let path = ObjPath::from(prefix);
        let r: std::result::Result<Vec<_>, _> = self.block(async {
            let mut out = Vec::new();
            let mut s = self.store.list(Some(&path));
            while let Some(m) = s.next().await {
                let m = m?;
                out.push((m.location.to_string(), m.size));
            }
            Ok(out)
        })?;
        r.map_err(|e| self.error(prefix, e))
    }

    /// The "directories" directly under `prefix/`.
    pub fn list_dirs(&self, prefix: &str) -> Result<Vec<String>> {
        let path = ObjPath::from(prefix);
        let r = self
            .block(self.store.list_with_delimiter(Some(&path)))?
            .map_err(|e| self.error(prefix, e))?;
        Ok(r.common_prefixes.iter().map(|p| p.to_string()).collect())
    }

    /// Fails with a clear error when the bucket is missing or the
    /// credentials are refused (one small listing).
    pub fn check(&self) -> Result<()> {
        let r = self.block(async {
            let mut s = self.store.list(None);
            s.next().await.transpose()
        })?;
        r.map(|_| ()).map_err(|e| match self.error("", e) {
            RemoteError::Missing { .. } => RemoteError::NoBucket {
                bucket: self.bucket.clone(),
                endpoint: self.endpoint.clone(),
            },
            other => other,
        })
    }
}
