//! Place index benchmark (release build; docs/benchmarks.md, "Places").
//!
//! One hour of 50 Hz nav_msgs/Odometry (180 000 poses) of a robot
//! patrolling a 40 m x 25 m loop with aisles, written to a store. In the
//! same run it measures:
//! - the index's share of recording CPU: `Store::append` of every pose
//!   message alone, against `Places::observe` (decode + index) of the same
//!   messages;
//! - the rebuild at start (`Places::open` reading every recorded pose);
//! - `near` for random places and radii over the whole hour: p50, p99 and
//!   max, against a scan of every pose (the anchor), with equal answers
//!   asserted for each query.
//!
//! Usage: bench_places [--poses N] [--queries K] [--dir D]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use motedb::engine::{Nanos, Options, Store, TopicSpec};
use motedb::places::live::{Places, BUILD_WAIT};
use motedb::places::{Interval, Query};

const ODOMETRY_DEF: &str = "std_msgs/Header header\nstring child_frame_id\ngeometry_msgs/PoseWithCovariance pose\ngeometry_msgs/TwistWithCovariance twist\n================================================================================\nMSG: std_msgs/Header\nbuiltin_interfaces/Time stamp\nstring frame_id\n================================================================================\nMSG: builtin_interfaces/Time\nint32 sec\nuint32 nanosec\n================================================================================\nMSG: geometry_msgs/PoseWithCovariance\nPose pose\nfloat64[36] covariance\n================================================================================\nMSG: geometry_msgs/Pose\nPoint position\nQuaternion orientation\n================================================================================\nMSG: geometry_msgs/Point\nfloat64 x\nfloat64 y\nfloat64 z\n================================================================================\nMSG: geometry_msgs/Quaternion\nfloat64 x 0\nfloat64 y 0\nfloat64 z 0\nfloat64 w 1\n================================================================================\nMSG: geometry_msgs/TwistWithCovariance\nTwist twist\nfloat64[36] covariance\n================================================================================\nMSG: geometry_msgs/Twist\nVector3 linear\nVector3 angular\n================================================================================\nMSG: geometry_msgs/Vector3\nfloat64 x\nfloat64 y\nfloat64 z\n";

const S: u64 = 1_000_000_000;
const T0: u64 = 1_700_000_000 * S;
const HZ: u64 = 50;

/// Little-endian CDR of an Odometry at `p` (XCDR1, header + 2 strings +
/// pose and twist with their covariances), 720 bytes.
fn odometry(t: Nanos, p: [f64; 3]) -> Vec<u8> {
    let mut b = vec![0, 1, 0, 0];
    let align = |b: &mut Vec<u8>, n: usize| {
        while (b.len() - 4) % n != 0 {
            b.push(0);
        }
    };
    let string = |b: &mut Vec<u8>, s: &str| {
        b.extend((s.len() as u32 + 1).to_le_bytes());
        b.extend(s.as_bytes());
        b.push(0);
    };
    b.extend(((t / S) as i32).to_le_bytes());
    b.extend(((t % S) as u32).to_le_bytes());
    string(&mut b, "odom");
    align(&mut b, 4);
    string(&mut b, "base_link");
    align(&mut b, 8);
    let mut floats: Vec<f64> = vec![p[0], p[1], p[2], 0.0, 0.0, 0.0, 1.0];
    floats.extend([0.01; 36]);
    floats.extend([0.5, 0.0, 0.0, 0.0, 0.0, 0.1]);
    floats.extend([0.02; 36]);
    for f in floats {
        b.extend(f.to_le_bytes());
    }
    b
}

/// A deterministic pseudo-random sequence (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Where the robot is at pose `i`: a 130 m loop (40 x 25 m) at 1 m/s with
/// a serpentine through three aisles inside it, plus 5 cm of jitter.
fn patrol(i: u64, rng: &mut Rng) -> [f64; 3] {
    let s = (i as f64 / HZ as f64) % 190.0;
    let (x, y) = if s < 40.0 {
        (s, 0.0)
    } else if s < 65.0 {
        (40.0, s - 40.0)
    } else if s < 105.0 {
        (105.0 - s, 25.0)
    } else if s < 130.0 {
        (0.0, 130.0 - s)
    } else {
        // Aisles at x = 10, 20, 30 from y = 0 to 25 and back (60 m).
        let a = s - 130.0;
        let aisle = (a / 20.0).floor();
        let along = a % 20.0;
        let y = if along < 10.0 {
            along * 2.5
        } else {
            (20.0 - along) * 2.5
        };
        (10.0 + 10.0 * aisle, y)
    };
    let j = |rng: &mut Rng| (rng.unit() - 0.5) * 0.1;
    [x + j(rng), y + j(rng), 0.0]
}

/// The anchor: every pose looked at, runs found as `Track::near` defines
/// them.
fn scan(poses: &[(Nanos, [f64; 3])], q: &Query) -> Vec<Interval> {
    let mut out = Vec::new();
    let mut open: Option<Interval> = None;
    for (t, p) in poses.iter().filter(|(t, _)| *t >= q.start && *t <= q.end) {
        let d2 = (p[0] - q.point[0]).powi(2) + (p[1] - q.point[1]).powi(2);
        if d2 > q.radius * q.radius {
            out.extend(open.take());
            continue;
        }
        let d = d2.sqrt();
        let run = open.get_or_insert(Interval {
            start: *t,
            end: *t,
            closest: *t,
            distance: d,
        });
        run.end = *t;
        if d < run.distance {
            run.closest = *t;
            run.distance = d;
        }
    }
    out.extend(open);
    out
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let poses: u64 = arg("--poses").map_or(180_000, |v| v.parse().expect("--poses N"));
    let queries: usize = arg("--queries").map_or(1000, |v| v.parse().expect("--queries K"));
    let dir = arg("--dir")
        .map_or_else(std::env::temp_dir, PathBuf::from)
        .join(format!("bench_places-{}", std::process::id()));

    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let messages: Vec<(Nanos, [f64; 3], Vec<u8>)> = (0..poses)
        .map(|i| {
            let t = T0 + i * S / HZ;
            let p = patrol(i, &mut rng);
            (t, p, odometry(t, p))
        })
        .collect();
    let spec = TopicSpec {
        name: "/odom".into(),
        type_name: "nav_msgs/msg/Odometry".into(),
        serialization_format: "cdr".into(),
        definition: ODOMETRY_DEF.into(),
        ..TopicSpec::default()
    };

    // Recording: append alone, then observe alone, each over every pose.
    let store = Arc::new(Store::open(&dir, Options::default()).expect("open the store"));
    // Opened on the empty store: nothing to read at start, every pose is
    // observed as the node's writer would.
    let places = Places::open(&store, Vec::new()).expect("index thread");
    let id = store.register_topic(spec.clone()).expect("register /odom");
    places.register(id, &spec);
    let started = Instant::now();
    for (t, _, payload) in &messages {
        store.append(id, *t, *t, payload).expect("append a pose");
    }
    let append = started.elapsed();
    let started = Instant::now();
    for (t, _, payload) in &messages {
        places.observe(id, *t, payload);
    }
    let observe = started.elapsed();
    assert_eq!(places.poses(), poses as usize);
    store.flush().expect("flush");

    // Rebuild at start, from the store.
    let started = Instant::now();
    let rebuilt = Places::open(&store, Vec::new()).expect("index thread");
    let first = rebuilt.near(
        None,
        None,
        &Query {
            point: [0.0; 3],
            radius: 1.0,
            use_z: false,
            start: 0,
            end: Nanos::MAX,
        },
        None,
        BUILD_WAIT,
    );
    let rebuild = started.elapsed();
    assert!(first.is_ok(), "{first:?}");
    assert_eq!(rebuilt.poses(), poses as usize);

    // Queries: random places in and around the site, radius 0.5-5 m.
    let track: Vec<(Nanos, [f64; 3])> = messages.iter().map(|(t, p, _)| (*t, *p)).collect();
    let (mut index_times, mut scan_times) = (Vec::new(), Vec::new());
    let mut found = 0usize;
    for _ in 0..queries {
        let q = Query {
            point: [rng.unit() * 50.0 - 5.0, rng.unit() * 35.0 - 5.0, 0.0],
            radius: 0.5 + rng.unit() * 4.5,
            use_z: false,
            start: 0,
            end: Nanos::MAX,
        };
        let started = Instant::now();
        let got = places
            .near(None, None, &q, None, BUILD_WAIT)
            .expect("query the index");
        index_times.push(started.elapsed());
        let started = Instant::now();
        let want = scan(&track, &q);
        scan_times.push(started.elapsed());
        assert_eq!(got.intervals, want, "index and scan differ for {q:?}");
        found += want.len();
    }
    index_times.sort();
    scan_times.sort();

    let per = |d: Duration| d.as_secs_f64() * 1e6 / poses as f64;
    println!(
        "poses: {poses} ({} s at {HZ} Hz), queries: {queries}, intervals found: {found}",
        poses / HZ
    );
    println!(
        "recording: append {:.2} us/pose, index (decode + insert) {:.2} us/pose: {:.1}% of append + index",
        per(append),
        per(observe),
        100.0 * observe.as_secs_f64() / (append + observe).as_secs_f64()
    );
    println!(
        "rebuild at start: {:.0} ms ({:.2} us/pose)",
        ms(rebuild),
        per(rebuild)
    );
    for (name, t) in [("index", &index_times), ("scan (anchor)", &scan_times)] {
        println!(
            "near {name}: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
            ms(percentile(t, 0.5)),
            ms(percentile(t, 0.99)),
            ms(t.last().copied().unwrap_or_default())
        );
    }
    println!(
        "index / scan at p50: {:.3}",
        percentile(&index_times, 0.5).as_secs_f64() / percentile(&scan_times, 0.5).as_secs_f64()
    );
    drop((places, rebuilt));
    if let Ok(store) = Arc::try_unwrap(store) {
        store.close().expect("close the store");
    }
    std::fs::remove_dir_all(&dir).expect("remove the store");
}
