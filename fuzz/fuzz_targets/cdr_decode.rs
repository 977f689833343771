#![no_main]

libfuzzer_sys::fuzz_target!(
    init: motedb_fuzz::seeds::init("cdr_decode"),
    |data: &[u8]| motedb_fuzz::cdr::run_cdr_decode(data)
);
