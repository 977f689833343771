//! Small valid seed inputs for every fuzz target, generated rather than
//! committed. A target started with MOTEDB_FUZZ_SEED_DIR=<dir> writes its
//! seeds into <dir> and exits (scripts/fuzz does this before fuzzing).

use std::path::Path;

use crate::{cdr, mcap, store};

type Seeds = Vec<(String, Vec<u8>)>;

/// Called from each target's libFuzzer `init`.
pub fn init(target: &str) {
    let Some(dir) = std::env::var_os("MOTEDB_FUZZ_SEED_DIR") else {
        return;
    };
    match write(Path::new(&dir), target) {
        Ok(n) => {
            eprintln!("{target}: wrote {n} seeds to {}", Path::new(&dir).display());
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{target}: cannot write seeds: {e}");
            std::process::exit(2);
        }
    }
}

/// Writes the seeds of `target` into `dir`; returns how many.
pub fn write(dir: &Path, target: &str) -> Result<usize, Box<dyn std::error::Error>> {
    let seeds = match target {
        "cdr_decode" => cdr_seeds(),
        "msgdef_parse" => msgdef_seeds(),
        "store_files" => store::seeds(),
        "mcap_import" => mcap::seeds()?,
        other => return Err(format!("unknown target {other}").into()),
    };
    std::fs::create_dir_all(dir)?;
    for (name, bytes) in &seeds {
        std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
    }
    Ok(seeds.len())
}

/// Little-endian XCDR1 writer.
struct Cdr(Vec<u8>);

impl Cdr {
    fn new() -> Cdr {
        Cdr(vec![0, 1, 0, 0])
    }
    fn pad(&mut self, a: usize) {
        while (self.0.len() - 4) % a != 0 {
            self.0.push(0);
        }
    }
    fn raw(&mut self, a: usize, b: &[u8]) -> &mut Cdr {
        self.pad(a);
        self.0.extend(b);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Cdr {
        self.raw(4, &v.to_le_bytes())
    }
    fn f64(&mut self, v: f64) -> &mut Cdr {
        self.raw(8, &v.to_le_bytes())
    }
    fn str(&mut self, s: &str) -> &mut Cdr {
        self.u32(s.len() as u32 + 1);
        self.0.extend(s.as_bytes());
        self.0.push(0);
        self
    }
}

fn imu() -> Vec<u8> {
    let mut w = Cdr::new();
    w.u32(7).u32(500).str("imu_link");
    for v in [0.0, 0.0, 0.0, 1.0] {
        w.f64(v);
    }
    for _ in 0..9 {
        w.f64(0.01);
    }
    for _ in 0..2 {
        for v in [0.1, 0.2, 9.81] {
            w.f64(v);
        }
        for _ in 0..9 {
            w.f64(0.02);
        }
    }
    w.0
}

fn mixed() -> Vec<u8> {
    let mut w = Cdr::new();
    w.raw(1, &[1, 2, b'c', 0xfe]); // flag, b, c, i8
    w.raw(2, &(-3i16).to_le_bytes()).raw(8, &9u64.to_le_bytes());
    w.raw(4, &1.5f32.to_le_bytes()).str("hi");
    // wstring: count of 4-byte chars then the chars (no NUL).
    w.u32(2).raw(4, &[b'h', 0, 0, 0, b'i', 0, 0, 0]);
    w.str("bounded");
    w.u32(2).u32(10).u32(20); // seq
    w.raw(1, &[1, 2, 3, 4]); // fixed
    w.u32(1).f64(2.5); // bounded
    w.u32(2).str("a").str("b"); // names
    w.u32(1).str("xy"); // small_names
    w.u32(1); // inners: one
    inner(&mut w);
    inner(&mut w); // pair[2]
    inner(&mut w);
    w.raw(1, &[0]); // empty
    w.0
}

fn inner(w: &mut Cdr) {
    w.raw(2, &5i16.to_le_bytes())
        .str("in")
        .u32(1)
        .f64(1.0)
        .raw(1, &[0]);
}

fn recursive() -> Vec<u8> {
    let mut w = Cdr::new();
    w.raw(1, &[1]).u32(1).raw(1, &[2]).u32(0);
    w.0
}

fn cdr_seeds() -> Seeds {
    let mut out = Vec::new();
    for (i, body) in [imu(), mixed(), recursive()].into_iter().enumerate() {
        let mut input = vec![i as u8];
        input.extend(&body);
        out.push((format!("fixed{i}"), input));
    }
    // Free-text definition, NUL, then the message.
    let mut input = vec![0xff];
    input.extend(b"int16 a\nstring s\nint32[] c\n\0");
    input.extend([
        0, 1, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, b'h', b'i', 0, 0, 1, 0, 0, 0, 9, 0, 0, 0,
    ]);
    out.push(("text".into(), input));
    out
}

fn msgdef_seeds() -> Seeds {
    let mut out = Vec::new();
    for (i, (_, text)) in cdr::DEFINITIONS.iter().enumerate() {
        let mut input = vec![i as u8];
        input.extend(text.as_bytes());
        out.push((format!("def{i}"), input));
    }
    let mut input = vec![3u8];
    input.extend(b"pkg/msg/Named\nint32 x 5\nstring<=10 y \"d\"\n");
    out.push(("named".into(), input));
    out
}
