//! "Where was the robot": a trajectory index over recorded pose messages
//! (`nav_msgs/msg/Odometry`, `geometry_msgs/msg/PoseStamped`,
//! `geometry_msgs/msg/PoseWithCovarianceStamped`), and the intervals when
//! the robot was within a radius of a point.
//!
//! The index is derived data: it is built from the recorded poses (log
//! time, position, frame_id) and can always be rebuilt from them, so it is
//! exactly as crash-safe as the store. Poses go into buckets of
//! `BUCKET_POSES` consecutive poses with their bounding box; a query skips
//! every bucket whose box is farther than the radius and looks at the
//! poses of the others.

pub mod decode;
pub mod live;

use crate::engine::{Nanos, Store, TopicInfo};
use decode::{is_pose_type, PoseDecoder};
use std::collections::BTreeMap;

/// Poses per bucket: a bucket's box is checked before its poses.
pub const BUCKET_POSES: usize = 64;

/// One recorded pose: log time and position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Pose {
    pub t: Nanos,
    pub p: [f64; 3],
}

#[derive(Clone, Debug)]
struct Bucket {
    lo: [f64; 3],
    hi: [f64; 3],
    poses: Vec<Pose>,
}

impl Bucket {
    fn new(pose: Pose) -> Bucket {
        Bucket {
            lo: pose.p,
            hi: pose.p,
            poses: vec![pose],
        }
    }

    fn add(&mut self, pose: Pose) {
        for i in 0..3 {
            self.lo[i] = self.lo[i].min(pose.p[i]);
            self.hi[i] = self.hi[i].max(pose.p[i]);
        }
        self.poses.push(pose);
    }

    /// A bucket of `poses` (in time order); None when there are none.
    fn of(poses: &[Pose]) -> Option<Bucket> {
        let (first, rest) = poses.split_first()?;
        let mut b = Bucket::new(*first);
        for p in rest {
            b.add(*p);
        }
        Some(b)
    }

    fn first(&self) -> Nanos {
        self.poses.first().map_or(0, |p| p.t)
    }

    fn last(&self) -> Nanos {
        self.poses.last().map_or(0, |p| p.t)
    }

    /// Squared distance from `q` to the box (0 inside it).
    fn distance2(&self, q: &[f64; 3], dims: usize) -> f64 {
        (0..dims)
            .map(|i| {
                let d = (self.lo[i] - q[i]).max(0.0).max(q[i] - self.hi[i]);
                d * d
            })
            .sum()
    }
}

/// The trajectory of one pose topic in one frame, in log-time order.
#[derive(Clone, Debug, Default)]
pub struct Track {
    buckets: Vec<Bucket>,
    poses: usize,
}

/// Where and when to look.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Query {
    pub point: [f64; 3],
    pub radius: f64,
    /// Distance in 3D (else in the x-y plane).
    pub use_z: bool,
    /// Log-time range, both ends included.
    pub start: Nanos,
    pub end: Nanos,
}

/// A time the robot was within the radius: the first and last pose of a
/// run of consecutive poses inside it, and the closest of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interval {
    pub start: Nanos,
    pub end: Nanos,
    pub closest: Nanos,
    pub distance: f64,
}

impl Track {
    pub fn len(&self) -> usize {
        self.poses
    }

    pub fn is_empty(&self) -> bool {
        self.poses == 0
    }

    /// Log times of the first and last pose.
    pub fn span(&self) -> Option<(Nanos, Nanos)> {
        Some((self.buckets.first()?.first(), self.buckets.last()?.last()))
    }

    /// Adds a pose. Poses usually come in log-time order; one that does not
    /// (a late message) goes where its time puts it.
    pub fn push(&mut self, pose: Pose) {
        self.poses += 1;
        let in_order = self.buckets.last().is_none_or(|b| b.last() <= pose.t);
        if in_order {
            match self.buckets.last_mut() {
                Some(b) if b.poses.len() < BUCKET_POSES => b.add(pose),
                _ => self.buckets.push(Bucket::new(pose)),
            }
            return;
        }
        // The bucket holding the poses just before it (buckets may then
        // grow past BUCKET_POSES; only order matters for correctness).
        let i = self
            .buckets
            .partition_point(|b| b.first() <= pose.t)
            .saturating_sub(1);
        if let Some(b) = self.buckets.get_mut(i) {
            b.add(pose);
            b.poses.sort_by_key(|p| p.t);
        }
    }

    /// Keeps only the poses whose time lies in one of `ranges` (each
    /// `(min, max)`, both included, in any order): what remains of the
    /// store's data after retention (`Store::topic_time_ranges`).
    pub fn retain_covered(&mut self, ranges: &[(Nanos, Nanos)]) {
        let mut merged: Vec<(Nanos, Nanos)> = ranges.to_vec();
        merged.sort_unstable();
        let mut disjoint: Vec<(Nanos, Nanos)> = Vec::with_capacity(merged.len());
        for (lo, hi) in merged {
            match disjoint.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => disjoint.push((lo, hi)),
            }
        }
        // The range that could hold `t`: the last starting at or before it.
        let covering = |t: Nanos| {
            let i = disjoint.partition_point(|r| r.0 <= t);
            i.checked_sub(1).map(|i| disjoint[i]).filter(|r| t <= r.1)
        };
        let mut poses = 0;
        let mut kept = Vec::with_capacity(self.buckets.len());
        for b in self.buckets.drain(..) {
            let whole = covering(b.first()).is_some_and(|r| b.last() <= r.1);
            let b = if whole {
                Some(b)
            } else {
                let left: Vec<Pose> = b
                    .poses
                    .iter()
                    .copied()
                    .filter(|p| covering(p.t).is_some())
                    .collect();
                Bucket::of(&left)
            };
            if let Some(b) = b {
                poses += b.poses.len();
                kept.push(b);
            }
        }
        self.buckets = kept;
        self.poses = poses;
    }

    /// Every pose, in log-time order.
    pub fn poses(&self) -> impl Iterator<Item = &Pose> {
        self.buckets.iter().flat_map(|b| b.poses.iter())
    }

    /// Adds a pose unless one at the same time and place is there already
    /// (it may have been read from the store and also seen as it was
    /// written); false when it was. Only a pose not newer than the last
    /// is looked up.
    pub fn insert(&mut self, pose: Pose) -> bool {
        let newer = self.buckets.last().is_none_or(|b| b.last() < pose.t);
        if !newer && self.contains(&pose) {
            return false;
        }
        self.push(pose);
        true
    }

    /// True when a pose at the same time and place is in the track.
    pub fn contains(&self, pose: &Pose) -> bool {
        let i = self.buckets.partition_point(|b| b.last() < pose.t);
        self.buckets[i..]
            .iter()
            .take_while(|b| b.first() <= pose.t)
            .flat_map(|b| b.poses.iter())
            .any(|p| p == pose)
    }

    /// Every interval inside `q.start ..= q.end` when the robot was within
    /// `q.radius` of `q.point`, oldest first. A run of consecutive poses
    /// inside the radius is one interval; a pose outside it (or the edge
    /// of the time range) ends it.
    pub fn near(&self, q: &Query) -> Vec<Interval> {
        let dims = if q.use_z { 3 } else { 2 };
        let r2 = q.radius * q.radius;
        let mut out = Vec::new();
        let mut open: Option<Interval> = None;
        let first = self.buckets.partition_point(|b| b.last() < q.start);
        for b in &self.buckets[first..] {
            if b.first() > q.end {
                break;
            }
            if b.distance2(&q.point, dims) > r2 {
                out.extend(open.take());
                continue;
            }
            for pose in &b.poses {
                if pose.t < q.start || pose.t > q.end {
                    continue;
                }
                let d2: f64 = (0..dims).map(|i| (pose.p[i] - q.point[i]).powi(2)).sum();
                if d2 > r2 {
                    out.extend(open.take());
                    continue;
                }
                let d = d2.sqrt();
                let run = open.get_or_insert(Interval {
                    start: pose.t,
                    end: pose.t,
                    closest: pose.t,
                    distance: d,
                });
                run.end = pose.t;
                if d < run.distance {
                    run.closest = pose.t;
                    run.distance = d;
                }
            }
        }
        out.extend(open);
        out
    }
}

/// The log-time windows `[start, end)` holding the messages of each
/// interval (both of its ends included), oldest first and never
/// overlapping: intervals can share a log time (poses stamped alike), and
/// it goes to the first. A window can be empty (`start == end`).
pub fn windows(intervals: &[Interval]) -> Vec<(Nanos, Nanos)> {
    let mut next: Nanos = 0;
    intervals
        .iter()
        .map(|i| {
            let end = i.end.saturating_add(1);
            let start = i.start.max(next).min(end);
            next = end;
            (start, end)
        })
        .collect()
}

/// Why an index could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadError {
    /// No such pose topic (or none at all).
    NotFound(String),
    /// The topic is there but cannot be read: its definition, the store.
    Failed(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::NotFound(s) | LoadError::Failed(s) => f.write_str(s),
        }
    }
}

/// The trajectory of one pose topic, per frame_id, read from a store.
#[derive(Clone, Debug, Default)]
pub struct Index {
    pub topic: String,
    pub tracks: BTreeMap<String, Track>,
    /// Messages that did not decode to a pose (counted, not indexed).
    pub undecodable: u64,
}

/// The recorded pose topics (types the index reads), by name.
pub fn pose_topics(store: &Store) -> Vec<TopicInfo> {
    let mut topics: Vec<TopicInfo> = store
        .topics()
        .into_iter()
        .filter(|t| is_pose_type(&t.spec.type_name))
        .collect();
    topics.sort_by(|a, b| a.spec.name.cmp(&b.spec.name));
    topics
}

impl Index {
    /// Reads every recorded pose of `topic` (None: the first pose topic
    /// by name) with the definition `definition` gives for it (the stored
    /// one, or the installed one for a topic recorded without).
    pub fn load(
        store: &Store,
        topic: Option<&str>,
        definition: impl Fn(&TopicInfo) -> Result<String, String>,
    ) -> Result<Index, LoadError> {
        use LoadError::{Failed, NotFound};
        let topics = pose_topics(store);
        let info = match topic {
            Some(name) => topics
                .into_iter()
                .find(|t| t.spec.name == name)
                .ok_or_else(|| match store.topic_by_name(name) {
                    Some(t) => NotFound(format!(
                        "{name} is a {}, not a pose topic (Odometry, PoseStamped, PoseWithCovarianceStamped)",
                        t.spec.type_name
                    )),
                    None => NotFound(format!("no topic {name} in the store")),
                })?,
            None => topics.into_iter().next().ok_or_else(|| {
                NotFound("no pose topic recorded (nav_msgs/msg/Odometry, geometry_msgs/msg/PoseStamped or PoseWithCovarianceStamped)".to_string())
            })?,
        };
        let text = definition(&info).map_err(Failed)?;
        let decoder = PoseDecoder::new(&info.spec.type_name, &text).map_err(Failed)?;
        let mut index = Index {
            topic: info.spec.name.clone(),
            ..Index::default()
        };
        let records = store
            .iter(&[info.id], 0, Nanos::MAX, false)
            .map_err(|e| Failed(e.to_string()))?;
        for record in records {
            let record = record.map_err(|e| Failed(e.to_string()))?;
            match decoder.decode(&record.payload) {
                Ok((frame, p)) => index.tracks.entry(frame).or_default().push(Pose {
                    t: record.log_time,
                    p,
                }),
                Err(_) => index.undecodable += 1,
            }
        }
        Ok(index)
    }

    /// The track of `frame` (None: the only one there is).
    pub fn track(&self, frame: Option<&str>) -> Result<(&str, &Track), String> {
        pick_track(&self.topic, &self.tracks, frame)
    }
}

/// The track of `frame` among `topic`'s (None: the only one there is).
pub fn pick_track<'a>(
    topic: &str,
    tracks: &'a BTreeMap<String, Track>,
    frame: Option<&str>,
) -> Result<(&'a str, &'a Track), String> {
    match frame {
        Some(f) => tracks
            .get_key_value(f)
            .map(|(k, t)| (k.as_str(), t))
            .ok_or_else(|| format!("{topic} has no poses in frame {f:?}")),
        None if tracks.len() == 1 => tracks
            .iter()
            .next()
            .map(|(k, t)| (k.as_str(), t))
            .ok_or_else(|| "no poses".to_string()),
        None if tracks.is_empty() => Err(format!("{topic} holds no poses")),
        None => Err(format!(
            "{topic} has poses in frames {}: name one",
            tracks.keys().cloned().collect::<Vec<_>>().join(", ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_never_overlap_when_intervals_share_a_log_time() {
        let iv = |start, end| Interval {
            start,
            end,
            closest: start,
            distance: 0.0,
        };
        // Three poses stamped 5: inside, outside, inside.
        let got = windows(&[iv(1, 5), iv(5, 5), iv(5, 9), iv(12, 14)]);
        assert_eq!(got, [(1, 6), (6, 6), (6, 10), (12, 15)]);
        assert!(got.windows(2).all(|w| w[0].1 <= w[1].0));
    }

    const MS: Nanos = 1_000_000;

    /// A robot at 1 m/s along x from x = 0, one pose every 20 ms (50 Hz),
    /// back along the same line after t = 10 s.
    fn shuttle() -> Track {
        let mut t = Track::default();
        for i in 0..1000u64 {
            // Exact in binary at the interval edges the tests expect.
            let x = if i <= 500 { i } else { 1000 - i } as f64 / 50.0;
            t.push(Pose {
                t: i * 20 * MS,
                p: [x, 1.0, 0.5],
            });
        }
        t
    }

    fn query(x: f64, radius: f64) -> Query {
        Query {
            point: [x, 1.0, 0.0],
            radius,
            use_z: false,
            start: 0,
            end: Nanos::MAX,
        }
    }

    #[test]
    fn a_shuttle_passes_a_point_twice_and_the_intervals_are_exact() {
        let t = shuttle();
        assert_eq!(t.len(), 1000);
        // Within 1 m of x = 5: x in [4, 6], i.e. t in [4, 6] s going out
        // and [14, 16] s coming back (poses every 20 ms land on the edges).
        let got = t.near(&query(5.0, 1.0));
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].start, got[0].end), (4000 * MS, 6000 * MS));
        assert_eq!((got[1].start, got[1].end), (14000 * MS, 16000 * MS));
        assert_eq!(got[0].closest, 5000 * MS);
        assert!(got[0].distance < 1e-9);
        // In 3D the z offset of 0.5 m counts.
        let q = Query {
            use_z: true,
            ..query(5.0, 0.4)
        };
        assert!(t.near(&q).is_empty());
        let q = Query {
            use_z: true,
            ..query(5.0, 0.5)
        };
        assert_eq!(t.near(&q).len(), 2);
    }

    #[test]
    fn the_time_range_cuts_intervals_and_far_points_find_nothing() {
        let t = shuttle();
        let q = Query {
            start: 5000 * MS,
            end: 15000 * MS,
            ..query(5.0, 1.0)
        };
        let got = t.near(&q);
        assert_eq!(
            got.iter().map(|i| (i.start, i.end)).collect::<Vec<_>>(),
            vec![(5000 * MS, 6000 * MS), (14000 * MS, 15000 * MS)]
        );
        assert!(t.near(&query(50.0, 10.0)).is_empty());
        // The turning point: one interval around t = 10 s.
        let got = t.near(&query(10.0, 0.5));
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].start, got[0].end), (9500 * MS, 10500 * MS));
    }

    #[test]
    fn the_index_answers_like_a_scan_of_every_pose() {
        // A random walk, checked against the obvious scan.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 2001) as f64 / 1000.0 - 1.0
        };
        let mut track = Track::default();
        let mut poses = Vec::new();
        let mut p = [0.0f64; 3];
        for i in 0..5000u64 {
            p[0] += rnd() * 0.3;
            p[1] += rnd() * 0.3;
            let pose = Pose { t: i * 20 * MS, p };
            track.push(pose);
            poses.push(pose);
        }
        for k in 0..50 {
            let q = Query {
                point: [rnd() * 5.0, rnd() * 5.0, 0.0],
                radius: 0.5 + (k % 5) as f64,
                ..query(0.0, 1.0)
            };
            let mut expect = Vec::new();
            let mut open: Option<(Nanos, Nanos)> = None;
            for pose in &poses {
                let inside = (pose.p[0] - q.point[0]).hypot(pose.p[1] - q.point[1]) <= q.radius;
                match (inside, open.as_mut()) {
                    (true, Some(run)) => run.1 = pose.t,
                    (true, None) => open = Some((pose.t, pose.t)),
                    (false, _) => expect.extend(open.take()),
                }
            }
            expect.extend(open);
            let got: Vec<(Nanos, Nanos)> =
                track.near(&q).iter().map(|i| (i.start, i.end)).collect();
            assert_eq!(got, expect, "query {k}");
        }
    }

    #[test]
    fn late_poses_land_in_order_and_pruning_follows_retention() {
        let mut t = Track::default();
        for i in (0..200u64).filter(|i| i % 10 != 3) {
            t.push(Pose {
                t: i * MS,
                p: [i as f64, 0.0, 0.0],
            });
        }
        // Late arrivals, after newer poses were indexed.
        for i in (0..200u64).filter(|i| i % 10 == 3) {
            t.push(Pose {
                t: i * MS,
                p: [i as f64, 0.0, 0.0],
            });
        }
        assert_eq!(t.len(), 200);
        let around_100 = Query {
            point: [100.0, 0.0, 0.0],
            radius: 5.0,
            use_z: false,
            start: 0,
            end: Nanos::MAX,
        };
        let got = t.near(&around_100);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].start, got[0].end), (95 * MS, 105 * MS));
        t.retain_covered(&[(100 * MS, Nanos::MAX)]);
        assert_eq!(t.len(), 100);
        assert_eq!(t.span(), Some((100 * MS, 199 * MS)));
        let got = t.near(&around_100);
        assert_eq!((got[0].start, got[0].end), (100 * MS, 105 * MS));
        t.retain_covered(&[]);
        assert!(t.is_empty() && t.span().is_none());
    }
}
