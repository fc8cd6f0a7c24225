//! popdns on the wire: the snapshot the query path reads, the pure request
//! handler, the UDP workers and the TCP listeners.
//!
//! Query path invariants:
//! - one `ArcSwap::load` of the [`Snapshot`] per query, no lock, no channel;
//! - the UDP path allocates nothing per query: each worker owns its receive
//!   and send buffers;
//! - [`handle`] is total: any input gives an answer or `None`, never a panic.

mod cache;
mod geo;
mod handler;
#[cfg(target_os = "linux")]
mod mmsg;
mod net;
mod rrl;
mod snapshot;
mod stats;
mod xfr;

pub use cache::{CacheHits, QueryCache};
pub use geo::{GeoInfo, GeoState, Source};
pub use handler::{
    Handled, Kind, MAX_UDP_PAYLOAD, Transport, handle, handle_cached, handle_with_health,
};
pub use net::{Listeners, Shared, TcpLimits, bind, serve_tcp, spawn_udp_workers};
pub use popdns_route::Family;
pub use popdns_wire::name_to_text;
pub use rrl::{Rrl, RrlConfig, Verdict};
pub use snapshot::{Snapshot, build};
pub use stats::{DECISIONS, QTYPES, RCODES, Stats, Totals, WorkerStats};
pub use xfr::{allowed, axfr_messages, notify_message};

/// Give memory freed by a load back to the operating system (glibc keeps
/// freed heap otherwise: a 1M-name zone load leaves ~100 MB behind).
pub fn release_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}
