#![no_main]

// The input as ICMP and as ICMPv6 (mpterm_fuzz::wire::icmp_message).
libfuzzer_sys::fuzz_target!(|data: &[u8]| mpterm_fuzz::wire::icmp_message(data));
