#![no_main]

libfuzzer_sys::fuzz_target!(
    init: motedb_fuzz::seeds::init("mcap_import"),
    |data: &[u8]| motedb_fuzz::mcap::run(data)
);
