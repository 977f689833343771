//! The node's trajectory index, kept current while it records: the writer
//! hands every stored pose message to `Places::observe`, which decodes it
//! and adds it to its topic's track. At start the poses already in the
//! store are read by a thread of its own (recording does not wait for it);
//! a query waits for that build. Retention is followed with
//! `Places::follow_retention`: poses whose time no remaining table (or
//! memtable) of their topic covers are dropped from the index.
//!
//! Nothing here is written to disk: after a crash the index is rebuilt from
//! the recorded poses, so it holds exactly what the store holds.

use super::decode::{is_pose_type, PoseDecoder};
use super::{pick_track, Interval, Pose, Query, Track};
use crate::engine::{Nanos, Store, TopicId, TopicSpec};
use parking_lot::{Condvar, Mutex};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// One pose topic: its decoder and its trajectory per frame_id.
struct Source {
    id: TopicId,
    /// Err: why its messages cannot be read as poses (said by queries).
    decoder: Result<PoseDecoder, String>,
    tracks: BTreeMap<String, Track>,
    /// Stored messages that did not decode to a pose.
    undecodable: u64,
    /// Its recorded poses are still being read from the store.
    building: bool,
    /// Reading them failed (the store refused the scan).
    build_error: Option<String>,
}

impl Source {
    fn new(id: TopicId, spec: &TopicSpec) -> Source {
        let decoder = if spec.definition.trim().is_empty() {
            Err(format!(
                "recorded without the definition of {} (install its package and restart the node)",
                spec.type_name
            ))
        } else {
            PoseDecoder::new(&spec.type_name, &spec.definition)
        };
        Source {
            id,
            decoder,
            tracks: BTreeMap::new(),
            undecodable: 0,
            building: false,
            build_error: None,
        }
    }

    fn add(&mut self, log_time: Nanos, payload: &[u8]) {
        let Ok(decoder) = &self.decoder else {
            return;
        };
        match decoder.decode(payload) {
            Ok((frame, p)) => {
                self.tracks
                    .entry(frame)
                    .or_default()
                    .insert(Pose { t: log_time, p });
            }
            Err(_) => self.undecodable += 1,
        }
    }
}

#[derive(Default)]
struct State {
    /// By topic name: the default pose topic is the first.
    sources: BTreeMap<String, Source>,
    /// Topic id -> name, for the writer's lookup.
    ids: HashMap<TopicId, String>,
    /// `Store::retention_dropped_files` when the index last followed
    /// retention; None: follow it at the next chance.
    retention_seen: Option<u64>,
}

/// What `Places::near` found.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub topic: String,
    pub frame: String,
    pub intervals: Vec<Interval>,
    /// The newest pose of that track (0: none).
    pub newest: Nanos,
    pub undecodable: u64,
}

/// The index of every pose topic the node records (`places.pose_topics`,
/// empty: every topic of a pose type).
pub struct Places {
    /// To read a topic's recorded poses once its definition is known.
    store: Weak<Store>,
    wanted: Vec<String>,
    state: Mutex<State>,
    built: Condvar,
}

/// How long a query waits for the poses recorded before the node started
/// to be read.
pub const BUILD_WAIT: Duration = Duration::from_secs(30);

impl Places {
    /// The index of `store`'s pose topics; the ones already recorded are
    /// read on a thread of its own.
    pub fn open(store: &Arc<Store>, wanted: Vec<String>) -> std::io::Result<Arc<Places>> {
        let places = Arc::new(Places {
            store: Arc::downgrade(store),
            wanted,
            state: Mutex::new(State::default()),
            built: Condvar::new(),
        });
        let mut todo = Vec::new();
        {
            let mut st = places.state.lock();
            for info in store.topics() {
                if places.wants(&info.spec) {
                    let mut source = Source::new(info.id, &info.spec);
                    source.building = source.decoder.is_ok();
                    if source.building {
                        todo.push(info.spec.name.clone());
                    }
                    st.ids.insert(info.id, info.spec.name.clone());
                    st.sources.insert(info.spec.name.clone(), source);
                }
            }
        }
        places.spawn_build(Arc::clone(store), todo)?;
        Ok(places)
    }

    /// Reads the recorded poses of `names` on a thread of its own.
    fn spawn_build(self: &Arc<Self>, store: Arc<Store>, names: Vec<String>) -> std::io::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let p = Arc::clone(self);
        std::thread::Builder::new()
            .name("motedb-places".into())
            .spawn(move || {
                for name in names {
                    p.build(&store, &name);
                }
            })
            .map(drop)
    }

    fn wants(&self, spec: &TopicSpec) -> bool {
        is_pose_type(&spec.type_name)
            && (self.wanted.is_empty() || self.wanted.contains(&spec.name))
    }

    /// Reads `name`'s recorded poses and merges the ones observed since.
    fn build(&self, store: &Store, name: &str) {
        let Some((id, decoder)) = self.state.lock().sources.get(name).and_then(|s| {
            let d = s.decoder.as_ref().ok()?;
            Some((s.id, d.clone()))
        }) else {
            return;
        };
        let mut read = Source {
            id,
            decoder: Ok(decoder),
            tracks: BTreeMap::new(),
            undecodable: 0,
            building: false,
            build_error: None,
        };
        // A panic while reading must not leave queries waiting for good.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            store.iter(&[id], 0, Nanos::MAX, false).and_then(|records| {
                for record in records {
                    let record = record?;
                    read.add(record.log_time, &record.payload);
                }
                Ok(())
            })
        }))
        .unwrap_or_else(|_| Err(crate::engine::Error::InvalidArgument("a panic".into())));
        let mut st = self.state.lock();
        if let Some(source) = st.sources.get_mut(name) {
            // Poses observed while reading may also have been read, and a
            // pose written before the read may be observed after it:
            // `Track::insert` adds no pose twice (same time and place).
            let observed = std::mem::replace(&mut source.tracks, read.tracks);
            for (frame, track) in observed {
                let into = source.tracks.entry(frame).or_default();
                for pose in track.poses() {
                    into.insert(*pose);
                }
            }
            source.undecodable += read.undecodable;
            source.building = false;
            source.build_error = result.err().map(|e| format!("reading {name}: {e}"));
        }
        // What was read may predate a retention pass made meanwhile.
        st.retention_seen = None;
        drop(st);
        self.built.notify_all();
    }

    /// The recorder registered topic `id`: a pose topic is indexed from
    /// now on (kept as is when it already is). A topic recorded before
    /// without a readable definition that has one now is read again.
    pub fn register(self: &Arc<Self>, id: TopicId, spec: &TopicSpec) {
        if !self.wants(spec) {
            return;
        }
        let mut st = self.state.lock();
        st.ids.insert(id, spec.name.clone());
        let Some(source) = st.sources.get_mut(&spec.name) else {
            st.sources.insert(spec.name.clone(), Source::new(id, spec));
            return;
        };
        if source.decoder.is_ok() {
            return;
        }
        let fresh = Source::new(id, spec);
        if fresh.decoder.is_err() {
            return;
        }
        *source = Source {
            building: true,
            ..fresh
        };
        drop(st);
        let started = self
            .store
            .upgrade()
            .map(|store| self.spawn_build(store, vec![spec.name.clone()]));
        if !matches!(started, Some(Ok(()))) {
            let mut st = self.state.lock();
            if let Some(source) = st.sources.get_mut(&spec.name) {
                source.building = false;
                source.build_error = Some(format!(
                    "the poses of {} recorded before could not be read (no thread)",
                    spec.name
                ));
            }
            drop(st);
            self.built.notify_all();
        }
    }

    /// A message of topic `id` was stored: a pose is indexed.
    pub fn observe(&self, id: TopicId, log_time: Nanos, payload: &[u8]) {
        let mut st = self.state.lock();
        let State { sources, ids, .. } = &mut *st;
        if let Some(source) = ids.get(&id).and_then(|name| sources.get_mut(name)) {
            source.add(log_time, payload);
        }
    }

    /// Drops the poses retention dropped from the store since the last
    /// call (cheap when it dropped nothing).
    pub fn follow_retention(&self, store: &Store) {
        let dropped = store.retention_dropped_files();
        let mut st = self.state.lock();
        if st.retention_seen == Some(dropped) {
            return;
        }
        for source in st.sources.values_mut().filter(|s| !s.building) {
            let ranges = store.topic_time_ranges(source.id);
            for track in source.tracks.values_mut() {
                track.retain_covered(&ranges);
            }
            source.tracks.retain(|_, t| !t.is_empty());
        }
        if st.sources.values().all(|s| !s.building) {
            st.retention_seen = Some(dropped);
        }
    }

    /// The indexed pose topics, by name.
    pub fn topics(&self) -> Vec<String> {
        self.state.lock().sources.keys().cloned().collect()
    }

    /// Poses indexed, over every topic and frame.
    pub fn poses(&self) -> usize {
        let st = self.state.lock();
        st.sources
            .values()
            .flat_map(|s| s.tracks.values())
            .map(Track::len)
            .sum()
    }

    /// The intervals of `q` on `topic` (None: the first pose topic) in
    /// `frame` (None: its only frame). `end` of `q` is cut at `until` when
    /// given (a later page of one query sees the poses the first saw).
    /// Waits up to `wait` for the recorded poses to be read.
    pub fn near(
        &self,
        topic: Option<&str>,
        frame: Option<&str>,
        q: &Query,
        until: Option<Nanos>,
        wait: Duration,
    ) -> Result<Found, String> {
        let deadline = Instant::now() + wait;
        let mut st = self.state.lock();
        let name = match topic {
            Some(t) => t.to_string(),
            None => st
                .sources
                .keys()
                .next()
                .cloned()
                .ok_or_else(|| self.none_recorded())?,
        };
        loop {
            let Some(source) = st.sources.get(&name) else {
                return Err(self.unknown(&name, &st));
            };
            if !source.building {
                break;
            }
            if self.built.wait_until(&mut st, deadline).timed_out() {
                return Err(format!(
                    "the poses of {name} recorded before the node started are still being indexed; ask again in a moment"
                ));
            }
        }
        let source = &st.sources[&name];
        if let Err(why) = &source.decoder {
            return Err(format!("{name} cannot be read as poses: {why}"));
        }
        if let Some(e) = &source.build_error {
            return Err(e.clone());
        }
        let (frame, track) = pick_track(&name, &source.tracks, frame)?;
        let newest = until.unwrap_or_else(|| track.span().map_or(0, |s| s.1));
        let q = Query {
            end: q.end.min(newest),
            ..*q
        };
        Ok(Found {
            topic: name.clone(),
            frame: frame.to_string(),
            intervals: if q.start <= q.end {
                track.near(&q)
            } else {
                Vec::new()
            },
            newest,
            undecodable: source.undecodable,
        })
    }

    fn none_recorded(&self) -> String {
        if self.wanted.is_empty() {
            "no pose source recorded: no topic of nav_msgs/msg/Odometry, geometry_msgs/msg/PoseStamped or geometry_msgs/msg/PoseWithCovarianceStamped in the store".into()
        } else {
            format!(
                "no pose source recorded yet: none of places.pose_topics ({}) is in the store with a pose type",
                self.wanted.join(", ")
            )
        }
    }

    fn unknown(&self, name: &str, st: &State) -> String {
        let known: Vec<&str> = st.sources.keys().map(String::as_str).collect();
        let why = if !self.wanted.is_empty() && !self.wanted.iter().any(|w| w == name) {
            format!("{name} is not in places.pose_topics")
        } else {
            format!("{name} is not a recorded pose topic (Odometry, PoseStamped, PoseWithCovarianceStamped)")
        };
        if known.is_empty() {
            format!("{why}; {}", self.none_recorded())
        } else {
            format!("{why}; pose topics: {}", known.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::testing::{definition, pose_stamped};
    use super::*;
    use crate::engine::{Options, Retention};

    const S: Nanos = 1_000_000_000;

    fn spec(name: &str) -> TopicSpec {
        TopicSpec {
            name: name.into(),
            type_name: "geometry_msgs/msg/PoseStamped".into(),
            serialization_format: "cdr".into(),
            definition: definition(),
            ..TopicSpec::default()
        }
    }

    fn everywhere() -> Query {
        Query {
            point: [0.0; 3],
            radius: 1e9,
            use_z: false,
            start: 0,
            end: Nanos::MAX,
        }
    }

    fn times(p: &Places, topic: &str) -> Vec<Nanos> {
        let st = p.state.lock();
        st.sources[topic].tracks["map"]
            .poses()
            .map(|p| p.t)
            .collect()
    }

    #[test]
    fn recorded_poses_are_read_at_start_and_observed_ones_are_not_counted_twice() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
        let id = store.register_topic(spec("/pose")).unwrap();
        for i in 1..=200u64 {
            store
                .append(id, i * S, 0, &pose_stamped("map", [i as f64, 0.0, 0.0]))
                .unwrap();
        }
        let places = Places::open(&store, Vec::new()).unwrap();
        // The recorder registers the topic again and the writer observes
        // poses while the old ones are read, some of them read as well.
        places.register(id, &spec("/pose"));
        for i in 195..=210u64 {
            let payload = pose_stamped("map", [i as f64, 0.0, 0.0]);
            if i > 200 {
                store.append(id, i * S, 0, &payload).unwrap();
            }
            places.observe(id, i * S, &payload);
        }
        let found = places
            .near(None, None, &everywhere(), None, BUILD_WAIT)
            .unwrap();
        assert_eq!(found.topic, "/pose");
        // A pose written before the read and observed only after it (the
        // writer stalled between append and observe) is not added again.
        for i in [150u64, 199, 200] {
            places.observe(id, i * S, &pose_stamped("map", [i as f64, 0.0, 0.0]));
        }
        assert_eq!(
            times(&places, "/pose"),
            (1..=210).map(|i| i * S).collect::<Vec<_>>()
        );
        assert_eq!(found.newest, 210 * S);
        let q = Query {
            point: [20.0, 0.0, 0.0],
            radius: 2.5,
            ..everywhere()
        };
        let found = places.near(None, None, &q, None, BUILD_WAIT).unwrap();
        assert_eq!(found.intervals.len(), 1);
        assert_eq!(
            (found.intervals[0].start, found.intervals[0].end),
            (18 * S, 22 * S)
        );
        assert_eq!(found.intervals[0].closest, 20 * S);
        // A later page sees only the poses the first one saw.
        let q = Query {
            point: [210.0, 0.0, 0.0],
            radius: 0.5,
            ..everywhere()
        };
        let cut = places
            .near(None, None, &q, Some(209 * S), BUILD_WAIT)
            .unwrap();
        assert!(cut.intervals.is_empty());
    }

    #[test]
    fn a_topic_recorded_without_its_definition_is_read_once_it_has_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
        let bare = TopicSpec {
            definition: String::new(),
            ..spec("/pose")
        };
        let id = store.register_topic(bare).unwrap();
        for i in 1..=5u64 {
            let payload = pose_stamped("map", [i as f64, 0.0, 0.0]);
            store.append(id, i * S, 0, &payload).unwrap();
        }
        let places = Places::open(&store, Vec::new()).unwrap();
        let e = places
            .near(None, None, &everywhere(), None, BUILD_WAIT)
            .unwrap_err();
        assert!(e.contains("cannot be read as poses"), "{e}");
        // The recorder finds the definition installed and registers it.
        let id = store.register_topic(spec("/pose")).unwrap();
        places.register(id, &spec("/pose"));
        let found = places
            .near(None, None, &everywhere(), None, BUILD_WAIT)
            .unwrap();
        assert_eq!(found.newest, 5 * S);
        assert_eq!(
            times(&places, "/pose"),
            (1..=5).map(|i| i * S).collect::<Vec<_>>()
        );
    }

    #[test]
    fn other_topics_and_unwanted_pose_topics_are_not_indexed_and_queries_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
        let places = Places::open(&store, vec!["/odom".into()]).unwrap();
        let e = places
            .near(None, None, &everywhere(), None, BUILD_WAIT)
            .unwrap_err();
        assert!(e.contains("none of places.pose_topics (/odom)"), "{e}");
        places.register(1, &spec("/pose"));
        let mut imu = spec("/imu");
        imu.type_name = "sensor_msgs/msg/Imu".into();
        places.register(2, &imu);
        places.observe(1, S, &pose_stamped("map", [0.0; 3]));
        assert!(places.topics().is_empty());
        let e = places
            .near(Some("/pose"), None, &everywhere(), None, BUILD_WAIT)
            .unwrap_err();
        assert!(e.contains("/pose is not in places.pose_topics"), "{e}");
        places.register(3, &spec("/odom"));
        let e = places
            .near(Some("/odom"), None, &everywhere(), None, BUILD_WAIT)
            .unwrap_err();
        assert!(e.contains("holds no poses"), "{e}");
    }

    #[test]
    fn poses_retention_dropped_leave_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
        let id = store.register_topic(spec("/pose")).unwrap();
        let places = Places::open(&store, Vec::new()).unwrap();
        places.register(id, &spec("/pose"));
        let padding = vec![0u8; 1000];
        let filler = store
            .register_topic(TopicSpec {
                name: "/bulk".into(),
                type_name: "std_msgs/msg/String".into(),
                serialization_format: "cdr".into(),
                ..TopicSpec::default()
            })
            .unwrap();
        // Four tables, each with 10 poses and 20 kB of other data.
        for table in 0..4u64 {
            for i in 0..10u64 {
                let t = (table * 10 + i + 1) * S;
                let payload = pose_stamped("map", [t as f64, 0.0, 0.0]);
                store.append(id, t, 0, &payload).unwrap();
                places.observe(id, t, &payload);
                for _ in 0..2 {
                    store.append(filler, t, 0, &padding).unwrap();
                }
            }
            store.flush().unwrap();
        }
        places.follow_retention(&store);
        assert_eq!(places.poses(), 40, "nothing dropped yet");
        // A pin keeps the second table: retention leaves a hole.
        store
            .add_mark(crate::engine::NewMark {
                label: "keep".into(),
                tags: Vec::new(),
                start: 12 * S,
                end: 13 * S,
                pin: true,
            })
            .unwrap();
        let disk = store.health().disk_bytes;
        store
            .set_retention(Retention {
                max_bytes: disk * 55 / 100,
                ..Retention::default()
            })
            .unwrap();
        store.compact().unwrap();
        assert!(store.retention_dropped_files() > 0);
        let left: Vec<Nanos> = store
            .iter(&[id], 0, Nanos::MAX, false)
            .unwrap()
            .map(|r| r.unwrap().log_time)
            .collect();
        let expected: Vec<Nanos> = (11..=20).chain(31..=40).map(|i| i * S).collect();
        assert_eq!(left, expected, "the pinned table and the newest are left");
        places.follow_retention(&store);
        assert_eq!(times(&places, "/pose"), left);
    }
}
