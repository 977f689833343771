#![no_main]

libfuzzer_sys::fuzz_target!(
    init: motedb_fuzz::seeds::init("store_files"),
    |data: &[u8]| motedb_fuzz::store::run(data)
);
