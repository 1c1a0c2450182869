#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mpterm_fuzz::wire::icmp_packet(data));
