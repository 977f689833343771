//! Stores in object storage: `push`, `fleet ls`, reading `s3://` stores in
//! place, and exporting several stores into one bag.

use std::sync::{Arc, OnceLock};

use motedb::remote::{self, Bucket, Config, Location, PushOptions, RemoteError, RemoteFs};

use super::*;

/// The S3 settings of this run (global options over the environment).
static CONFIG: OnceLock<Config> = OnceLock::new();

#[derive(Args, Clone)]
pub(crate) struct S3Args {
    /// A file of KEY=VALUE lines (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    /// AWS_REGION, MOTEDB_S3_ENDPOINT) over the environment.
    #[arg(long, global = true, value_name = "FILE")]
    s3_credentials: Option<PathBuf>,
    /// The S3 endpoint, e.g. http://127.0.0.1:3900 (default:
    /// MOTEDB_S3_ENDPOINT, AWS_ENDPOINT_URL, else AWS).
    #[arg(long, global = true, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// How long a failing request (server down, connection refused, 5xx)
    /// is retried before the command fails.
    #[arg(long, global = true, value_name = "DURATION", default_value = "60s")]
    s3_retry_for: String,
}

impl From<RemoteError> for Fail {
    fn from(e: RemoteError) -> Fail {
        let code = match e {
            RemoteError::Usage(_) => 2,
            RemoteError::NoBucket { .. }
            | RemoteError::NoStore(_)
            | RemoteError::OtherStore { .. } => 4,
            RemoteError::Corrupt { .. } => 3,
            RemoteError::Cancelled => 130,
            _ => 1,
        };
        fail(code, e.to_string())
    }
}

pub(crate) fn set_s3(args: &S3Args) -> Result<(), Fail> {
    let mut cfg = Config::from_env();
    if let Some(f) = &args.s3_credentials {
        cfg = cfg.with_file(f)?;
    }
    if let Some(e) = &args.s3_endpoint {
        cfg.endpoint = Some(e.clone());
    }
    cfg.retry_for = humantime::parse_duration(&args.s3_retry_for).map_err(|_| {
        fail(
            2,
            format!(
                "bad --s3-retry-for {:?}: use e.g. 60s or 5m",
                args.s3_retry_for
            ),
        )
    })?;
    let _ignored = CONFIG.set(cfg);
    Ok(())
}

fn location(arg: &Path) -> Result<Location, Fail> {
    let s = arg
        .to_str()
        .ok_or_else(|| fail(2, format!("{} is not valid UTF-8", arg.display())))?;
    Ok(Location::parse(s)?)
}

fn bucket(loc: &Location) -> Result<Arc<Bucket>, Fail> {
    let cfg = CONFIG.get().cloned().unwrap_or_else(Config::from_env);
    Ok(Bucket::connect(&cfg, &loc.bucket)?)
}

/// A remote store, read in place.
pub(crate) fn open_remote(arg: &Path) -> Result<(Store, Arc<RemoteFs>), Fail> {
    let rfs = remote_fs(arg)?;
    Ok((open_remote_with(&rfs)?, rfs))
}

fn remote_fs(arg: &Path) -> Result<Arc<RemoteFs>, Fail> {
    let loc = location(arg)?;
    Ok(Arc::new(RemoteFs::open(bucket(&loc)?, loc)?))
}

fn open_remote_with(rfs: &Arc<RemoteFs>) -> Result<Store, Fail> {
    remote::open_with(rfs).map_err(|e| match e {
        RemoteError::Store(e) => fail(
            1,
            format!("{}: {e} (if a push is running, try again)", rfs.location),
        ),
        e => e.into(),
    })
}

/// `verify` of a remote store: first every object whole against the
/// index's checksums, then what `verify` reads through the engine; a store
/// too damaged to open is reported, exit 3, like any other damage.
pub(crate) fn verify_remote(arg: &Path, decode: bool, json: bool) -> CliResult {
    let rfs = remote_fs(arg)?;
    let mut problems: Vec<String> = rfs
        .verify_chunks()?
        .into_iter()
        .map(|(key, why)| format!("object {key}: {why}"))
        .collect();
    match remote::open_with(&rfs) {
        Ok(store) => verify(&store, problems, decode, json),
        Err(RemoteError::Store(e))
            if !problems.is_empty()
                || matches!(
                    e,
                    engine::Error::Corrupt { .. } | engine::Error::ChecksumMismatch { .. }
                ) =>
        {
            let f = fail(3, format!("{}: {e}", rfs.location));
            problems.push(format!("opening the store: {}", f.msg));
            if json {
                print_json(&json!({"problems": problems, "files": [], "messages_read": 0}));
            } else {
                for p in &problems {
                    println!("  PROBLEM: {p}");
                }
            }
            Ok(3)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Args)]
pub(crate) struct PushArgs {
    /// The local store (a node may be recording into it).
    store: PathBuf,
    /// s3://bucket/prefix
    url: PathBuf,
    /// Upload at most this many bytes a second, e.g. 10MiB.
    #[arg(long)]
    max_bytes_per_s: Option<String>,
    /// Push again every this often until stopped (Ctrl-C), e.g. 30s; a
    /// failed push is reported and tried again the next time.
    #[arg(long)]
    every: Option<String>,
    /// Objects the new index no longer names are deleted once retired this
    /// long, so readers of an older copy keep working meanwhile.
    #[arg(long, default_value = "10m")]
    keep_retired_for: String,
    /// Replace the copy of another store at this URL (refused otherwise:
    /// the copy may hold what exists nowhere else); with --every, only
    /// until the first push succeeds.
    #[arg(long)]
    replace: bool,
}

pub(crate) fn push_cmd(args: &PushArgs, json: bool) -> CliResult {
    require_store(&args.store)?;
    let loc = location(&args.url)?;
    let rate = args
        .max_bytes_per_s
        .as_deref()
        .map(parse_size)
        .transpose()?;
    if rate == Some(0) {
        return Err(fail(2, "--max-bytes-per-s must be above 0"));
    }
    let every = args
        .every
        .as_deref()
        .map(|s| {
            humantime::parse_duration(s)
                .ok()
                .filter(|d| !d.is_zero())
                .ok_or_else(|| fail(2, format!("bad --every {s:?}: use e.g. 30s or 5m")))
        })
        .transpose()?;
    let keep_retired_for = humantime::parse_duration(&args.keep_retired_for).map_err(|_| {
        fail(
            2,
            format!(
                "bad --keep-retired-for {:?}: use e.g. 10m or 0s",
                args.keep_retired_for
            ),
        )
    })?;
    let b = bucket(&loc)?;
    catch_sigint();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut opts = PushOptions {
        max_bytes_per_s: rate,
        cancel: Some(cancel.clone()),
        keep_retired_for,
        replace: args.replace,
        ..PushOptions::default()
    };
    loop {
        let started = std::time::Instant::now();
        let watcher = {
            let cancel = cancel.clone();
            std::thread::spawn(move || {
                while !cancel.load(Ordering::Relaxed) {
                    if INTERRUPTED.load(Ordering::Relaxed) {
                        cancel.store(true, Ordering::Relaxed);
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            })
        };
        let r = remote::push(&args.store, &b, &loc, &opts);
        cancel.store(true, Ordering::Relaxed);
        let _ignored = watcher.join();
        cancel.store(false, Ordering::Relaxed);
        let r = match r {
            // --replace is for the copy that was there: once this store's
            // copy replaced it, another store's is refused again.
            Ok(r) => {
                opts.replace = false;
                r
            }
            Err(RemoteError::Cancelled) => return Ok(130),
            // Trying again cannot help: it needs another URL or --replace.
            Err(e @ RemoteError::OtherStore { .. }) => return Err(e.into()),
            Err(e) if every.is_some() => {
                eprintln!("motedb: push failed, trying again at the next period: {e}");
                wait_period(started, every)?;
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        if json {
            print_json(&serde_json::to_value(&r).unwrap_or_default());
        } else {
            println!(
                "pushed {} to {} (generation {}{}): {} files, {}; uploaded {} chunks, {}; \
                 {} found from an earlier push; {} objects deleted",
                args.store.display(),
                r.url,
                r.generation,
                if r.changed { "" } else { ", unchanged" },
                r.files,
                human_bytes(r.store_bytes),
                r.uploaded_chunks,
                human_bytes(r.uploaded_bytes),
                r.found_chunks,
                r.deleted_objects
            );
        }
        if every.is_none() {
            return Ok(0);
        }
        wait_period(started, every)?;
    }
}

/// Sleeps out the rest of a `--every` period; Err(exit 130) on Ctrl-C.
fn wait_period(
    started: std::time::Instant,
    every: Option<std::time::Duration>,
) -> Result<(), Fail> {
    let every = every.unwrap_or_default();
    while started.elapsed() < every {
        if INTERRUPTED.load(Ordering::Relaxed) {
            return Err(fail(130, "interrupted"));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}

#[derive(Subcommand)]
pub(crate) enum FleetCmd {
    /// The stores under s3://bucket/prefix, with their time spans.
    Ls {
        /// s3://bucket or s3://bucket/prefix
        url: PathBuf,
    },
}

/// How deep `fleet ls` looks below the prefix for stores.
const LS_DEPTH: usize = 4;

pub(crate) fn fleet_cmd(cmd: &FleetCmd, json: bool) -> CliResult {
    let FleetCmd::Ls { url } = cmd;
    let loc = location(url)?;
    let b = bucket(&loc)?;
    b.check()?;
    let mut found = Vec::new();
    let mut level = vec![loc.prefix.clone()];
    for _ in 0..=LS_DEPTH {
        let mut next = Vec::new();
        for prefix in level {
            let at = Location {
                bucket: loc.bucket.clone(),
                prefix,
            };
            match b.get_opt(&at.key(remote::INDEX))? {
                Some(bytes) => {
                    found.push((at.clone(), remote::Index::parse(&bytes, &at.to_string())))
                }
                None => next.extend(b.list_dirs(&at.prefix)?),
            }
        }
        level = next;
    }
    found.sort_by(|a, b| a.0.prefix.cmp(&b.0.prefix));
    if json {
        let v: Vec<serde_json::Value> = found
            .iter()
            .map(|(l, ix)| match ix {
                Ok(ix) => json!({
                    "url": l.to_string(), "generation": ix.generation,
                    "pushed_at": ix.pushed_at_ns, "source": ix.source,
                    "size_bytes": ix.files.values().map(|f| f.size).sum::<u64>(),
                    "message_count": ix.summary.messages,
                    "start": ix.summary.first_ns, "end": ix.summary.last_ns,
                    "topics": ix.summary.topics,
                }),
                Err(e) => json!({"url": l.to_string(), "error": e.to_string()}),
            })
            .collect();
        print_json(&json!(v));
    } else {
        for (l, ix) in &found {
            match ix {
                Ok(ix) => {
                    let (s, e) = (
                        ix.summary.first_ns.unwrap_or(0),
                        ix.summary.last_ns.unwrap_or(0),
                    );
                    println!(
                        "{l}  {} messages, {} topics, {}  {} .. {} ({}s)  pushed {} from {}",
                        ix.summary.messages,
                        ix.summary.topics.len(),
                        human_bytes(ix.files.values().map(|f| f.size).sum()),
                        format_time(s),
                        format_time(e),
                        format_unix(e.saturating_sub(s)),
                        format_time(ix.pushed_at_ns),
                        ix.source
                    );
                }
                Err(e) => println!("{l}  UNREADABLE: {e}"),
            }
        }
        if found.is_empty() {
            println!("no stores under {loc}");
        }
    }
    Ok(if found.iter().any(|(_, ix)| ix.is_err()) {
        3
    } else {
        0
    })
}

/// `motedb export A B... --merge`: several stores into one bag, each
/// store's topics under `/<store name>` (its last path segment).
/// Relative times count from the first and last message of them all.
/// Event marks are not exported this way.
pub(crate) fn export_merged(args: &ExportArgs) -> Result<export::ExportSummary, Fail> {
    let mut names = std::collections::BTreeSet::new();
    let mut topics = Vec::new();
    let mut streams = Vec::new();
    let all: Vec<&PathBuf> = std::iter::once(&args.store).chain(&args.merge).collect();
    let mut stores = Vec::new();
    for path in &all {
        let name = store_name(path)?;
        if !names.insert(name.clone()) {
            return Err(fail(
                2,
                format!("two stores are named {name:?}: their topics would collide"),
            ));
        }
        stores.push((name, open_read(path)?));
    }
    let every: Vec<TopicInfo> = stores.iter().flat_map(|(_, s)| s.topics()).collect();
    let (opts, total) = export_options(args, &every)?;
    let end = if opts.end == 0 { Nanos::MAX } else { opts.end };
    let mut found = std::collections::BTreeSet::new();
    for (i, (name, store)) in stores.iter().enumerate() {
        let base = (i as u32) << 20;
        let mut ids = Vec::new();
        for t in store.topics() {
            if !opts.topics.is_empty() && !opts.topics.contains(&t.spec.name) {
                continue;
            }
            found.insert(t.spec.name.clone());
            let mut spec = t.spec.clone();
            spec.name = format!("/{name}{}", t.spec.name);
            ids.push(t.id);
            topics.push((base + t.id, spec));
        }
        let records = store.iter(&ids, opts.start, end, false)?;
        streams.push(Box::new(records.map(move |r| {
            r.map(|mut r| {
                r.topic += base;
                r
            })
        }))
            as Box<dyn Iterator<Item = engine::Result<Record>> + '_>);
    }
    if let Some(t) = opts.topics.iter().find(|t| !found.contains(*t)) {
        return Err(fail(4, format!("topic {t} is in none of the stores")));
    }
    let merged = motedb::play::merge_by_log_time(streams);
    Ok(with_progress(total, |ctl| {
        export::export_stream(&topics, merged, &opts, ctl)
    })?)
}

/// The namespace a store's topics get in a merged export: its last path
/// segment, with what a ROS name may not hold replaced by `_`.
fn store_name(path: &Path) -> Result<String, Fail> {
    let s = path.to_string_lossy();
    let last = s
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let mut name: String = last
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, '_');
    }
    if name.is_empty() || last.ends_with(':') {
        return Err(fail(
            2,
            format!("{s}: cannot name its topics by it; use a store path with a last segment"),
        ));
    }
    Ok(name)
}
