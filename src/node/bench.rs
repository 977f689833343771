//! The end-to-end benchmark's native publisher (`bench_pub`): publishes
//! pre-serialized `std_msgs/msg/UInt8MultiArray` messages at a target rate
//! through rcl, with no client library and no per-message serialization,
//! so the publisher is not what limits the measured recorder.

use std::time::{Duration, Instant};

use super::rcl::{self, RclNode, SerializedPub, SubQos};

/// What to publish.
#[derive(Clone, Debug)]
pub struct PublishOptions {
    /// One publisher per topic, all in this process.
    pub topics: Vec<String>,
    /// Bytes of `data` per message (the CDR message is 16 bytes longer).
    pub size: usize,
    /// Messages per topic.
    pub count: u64,
    /// Messages per second per topic; 0: as fast as possible.
    pub rate: f64,
    pub reliable: bool,
    pub depth: usize,
    /// How long to wait for a subscriber on every topic before starting.
    pub match_timeout: Duration,
    /// Pause between matching and the first message: the publisher sees
    /// the match before the subscriber does, and a best-effort message
    /// sent in between is lost for reasons that are not the recorder's.
    pub settle: Duration,
    /// Unix time (seconds) not to publish before, after the settle pause.
    pub start_at: Option<f64>,
}

/// What was published.
#[derive(Clone, Debug, Default)]
pub struct PublishReport {
    pub published: u64,
    pub seconds: f64,
    /// Wall-clock (unix) seconds of the first and last publish, so a
    /// driver can combine several processes' spans.
    pub started_unix: f64,
    pub ended_unix: f64,
    /// Reliable only: every subscriber acknowledged everything in time.
    pub all_acked: bool,
}

const TYPE: &str = "std_msgs/msg/UInt8MultiArray";

/// The CDR of a UInt8MultiArray with `size` bytes of data: encapsulation
/// header (little endian), empty layout.dim, layout.data_offset 0, then
/// the data sequence. The data is pseudo-random (xorshift), so it does not
/// compress; the first 8 bytes of data are overwritten per message.
pub fn uint8_multi_array(size: usize) -> Vec<u8> {
    let mut cdr = Vec::with_capacity(16 + size);
    cdr.extend_from_slice(&[0, 1, 0, 0]);
    cdr.extend_from_slice(&0u32.to_le_bytes());
    cdr.extend_from_slice(&0u32.to_le_bytes());
    cdr.extend_from_slice(&(size as u32).to_le_bytes());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    cdr.extend((0..size).map(|_| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x as u8
    }));
    cdr
}

/// Publishes `opts.count` messages on each topic, round robin, paced to
/// `opts.rate` per topic.
pub fn publish(
    opts: &PublishOptions,
    prefixes: &[std::path::PathBuf],
) -> Result<PublishReport, String> {
    let node = RclNode::new("motedb_bench_pub", "/").map_err(|e| e.to_string())?;
    let ts = rcl::load_type_support(TYPE, prefixes)?;
    let qos = SubQos {
        reliable: opts.reliable,
        transient_local: false,
        depth: opts.depth,
    };
    let pubs = opts
        .topics
        .iter()
        .map(|t| SerializedPub::new(&node, t, ts, &qos).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let deadline = Instant::now() + opts.match_timeout;
    for (p, t) in pubs.iter().zip(&opts.topics) {
        while p.subscription_count().map_err(|e| e.to_string())? == 0 {
            if Instant::now() >= deadline {
                return Err(format!(
                    "no subscriber on {t} within {:?}",
                    opts.match_timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    std::thread::sleep(opts.settle);
    let mut cdr = uint8_multi_array(opts.size);
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    if let Some(at) = opts.start_at {
        let wait = at - unix();
        if wait > 0.0 {
            std::thread::sleep(Duration::from_secs_f64(wait));
        }
    }
    let started_unix = unix();
    let start = Instant::now();
    let mut published = 0u64;
    for i in 0..opts.count {
        if opts.rate > 0.0 {
            let due = start + Duration::from_secs_f64(i as f64 / opts.rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        for p in &pubs {
            if opts.size >= 8 {
                cdr[16..24].copy_from_slice(&published.to_le_bytes());
            }
            p.publish(&cdr).map_err(|e| e.to_string())?;
            published += 1;
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let ended_unix = unix();
    let mut all_acked = true;
    if opts.reliable {
        for p in &pubs {
            all_acked &= p
                .wait_for_all_acked(Duration::from_secs(30))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(PublishReport {
        published,
        seconds,
        started_unix,
        ended_unix,
        all_acked,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_payload_is_a_uint8_multi_array_the_decoder_reads() {
        let cdr = uint8_multi_array(300);
        assert_eq!(cdr.len(), 316);
        let schema = crate::cdr::Schema::parse(
            TYPE,
            "std_msgs/MultiArrayLayout layout\nuint8[] data\n\
             ================================================================================\n\
             MSG: std_msgs/MultiArrayLayout\nstd_msgs/MultiArrayDimension[] dim\nuint32 data_offset\n\
             ================================================================================\n\
             MSG: std_msgs/MultiArrayDimension\nstring label\nuint32 size\nuint32 stride\n",
        )
        .unwrap();
        let v = crate::cdr::decode(&schema, &cdr).unwrap();
        match v.field("data") {
            Some(crate::cdr::Value::Bytes(b)) => assert_eq!(b.as_slice(), &cdr[16..]),
            other => panic!("data decoded as {other:?}"),
        }
    }
}
