//! Bus envelopes: see `fuzz::check_bus_envelope`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| fuzz::check_bus_envelope(data));
