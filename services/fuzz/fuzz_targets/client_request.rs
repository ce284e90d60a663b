//! Client requests: see `fuzz::check_client_request`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::check_client_request(data));
