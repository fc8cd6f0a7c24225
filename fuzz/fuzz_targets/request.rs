//! The whole request path: raw bytes + client address -> response bytes,
//! over a snapshot with zones, PoPs, services, overrides and a GeoIP DB.
//! Every response must be a valid DNS message that matches its query.
//!
//! Input: see `popdns_fuzz::decode_request` (a 1-3 byte prefix choosing the
//! transport, the client address and optionally PoP health, then the DNS
//! message without a TCP length prefix).

#![no_main]

use libfuzzer_sys::fuzz_target;
use popdns_server::{handle, handle_with_health};

fuzz_target!(|data: &[u8]| {
    let snap = popdns_fuzz::snapshot();
    let Some(input) = popdns_fuzz::decode_request(data) else {
        return;
    };
    if popdns_fuzz::skip_question_pointers() && popdns_fuzz::question_has_pointer(input.message) {
        return;
    }
    let mut out = Vec::with_capacity(4096);
    let handled = match &input.health {
        None => handle(snap, input.message, input.src, input.transport, &mut out),
        Some(up) => handle_with_health(
            snap,
            up,
            input.message,
            input.src,
            input.transport,
            &mut out,
        ),
    };
    let Some(h) = handled else {
        return;
    };
    assert!(
        h.len <= out.len(),
        "Handled.len {} > buffer {}",
        h.len,
        out.len()
    );
    popdns_fuzz::check_response(input.message, &out[..h.len], input.transport);
});
