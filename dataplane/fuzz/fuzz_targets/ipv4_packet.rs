#![no_main]

// IPv4, or IPv6 when the version nibble is 6 (mpterm_fuzz::wire::ip_packet).
libfuzzer_sys::fuzz_target!(|data: &[u8]| mpterm_fuzz::wire::ip_packet(data));
