#![no_main]

libfuzzer_sys::fuzz_target!(
    init: motedb_fuzz::seeds::init("msgdef_parse"),
    |data: &[u8]| motedb_fuzz::cdr::run_msgdef_parse(data)
);
