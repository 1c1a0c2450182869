#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpterm_fuzz::wire::tcp_options(data));
