//! Pure routing core of popdns: for a service name, pick the nearest healthy
//! Points of Presence (PoPs) for a client.
//!
//! No I/O, no async, no locks, no GeoIP: the caller passes the client's
//! normalised address ([`normalize`], [`ecs_client`], [`source_client`]) and
//! its already looked-up [`Location`]. A [`Router`] is built once from a
//! [`RouterSpec`] (validated, see [`RouteError`]) and is then immutable;
//! [`Router::decide`] writes into a caller-owned [`Answer`] and never
//! allocates.
//!
//! # Rules, in order
//!
//! 1. **Overrides.** Every network override is tried before any country
//!    override, countries before continents. Among networks the longest
//!    matching prefix wins (networks longer than the client's effective
//!    prefix are not considered); at equal specificity, and for countries and
//!    continents, the first override in configuration order wins. Network
//!    lookup is one binary search per distinct prefix length (longest first),
//!    never a scan over all networks. The override's PoPs come first in listed
//!    order (skipping PoPs outside the service's subset, without addresses of
//!    the family, or down), then the remaining PoPs by distance (rules 2/3).
//! 2. **Geo.** Haversine great-circle distance from the client location,
//!    nearest first, ties broken by PoP id.
//! 3. **Unknown location** (or unusable coordinates): distance from the local
//!    PoP (precomputed order per service); without a local PoP, configuration
//!    order (the service's `pops` list order, else PoP declaration order).
//! 4. **Family.** PoPs without addresses of the queried family never appear;
//!    the next PoP takes their place.
//! 5. **Health.** Down PoPs are skipped (setting [`Decision::degraded`] when
//!    one would have been answered). If every PoP of the service with
//!    addresses of the family is down, the answer is computed as if all were
//!    up ([`DecisionKind::FailOpen`], degraded).
//! 6. The answer holds the service's `answers` best PoPs (at most
//!    [`MAX_ANSWERS`]); each contributes all its addresses of the family
//!    ([`Router::addresses`]).
//!
//! # Geo ranking without scanning every PoP
//!
//! For each distinct PoP set (a service's PoPs ∩ PoPs with addresses of one
//! family; services with equal sets share a table) of more than 16 PoPs the
//! router precomputes a 1°×1° lat/lon grid (180 × 360 cells; smaller sets
//! are simply scanned). Each cell stores the PoPs that can be
//! among the `k` nearest (`k` = largest `answers` of the services using the
//! set + [`DOWN_MARGIN`]) of *any* point in the cell: with the cell as a
//! spherical cap of centre `c` and angular radius `r`, and `θ_k` the k-th
//! smallest angle from `c` to a PoP, a PoP can qualify only if its angle from
//! `c` is at most `θ_k + 2r` (triangle inequality; a small epsilon absorbs
//! rounding). Cells are computed from 10°×10° coarse cells' lists, so building
//! touches every PoP only once per coarse cell (≈ 20 ms per table for 1 000
//! PoPs in release).
//!
//! **Invariant:** ranking a cell's candidates exactly (haversine, ties by id)
//! yields exactly the first `k` PoPs of the full brute-force ranking. A query
//! computes the haversine term only for its cell's candidates (typically
//! `k`..`2k` of them, independent of the total number of PoPs), keeps the top
//! `k` in a fixed array, and walks them skipping down PoPs. If that leaves the
//! answer short (more than the margin of PoPs down), it falls back to a full
//! scan of the set, so results always equal the brute-force ranking.
//!
//! Memory per table: 64 801 `u32` offsets (253 KiB) plus one `u16` per
//! (cell, candidate), about 1.1 MiB in total for 1 000 PoPs; see
//! [`Router::table_stats`]. Tables exist per distinct PoP set, so 10 services
//! with distinct subsets and differing A/AAAA sets need at most 20.
//!
//! Exactness is checked against a brute-force ranking on random points and
//! random down sets (`tests/brute_force.rs`).

mod addr;
mod error;
mod geo;
mod router;
mod spec;
#[cfg(test)]
mod tests;

pub use addr::{
    ECS_MAX_PREFIX_V4, ECS_MAX_PREFIX_V6, convert_prefix, ecs_client, mask, normalize,
    source_client,
};
pub use error::RouteError;
pub use geo::{EARTH_RADIUS_KM, distance_km};
pub use router::{
    Answer, Client, DOWN_MARGIN, Decision, DecisionKind, Explanation, Family, Location,
    MAX_ANSWERS, Pop, PopId, RankedPop, Router, ServiceId, ServiceInfo, TableStats,
};
pub use spec::{OverrideSpec, PopSpec, RouterSpec, ServiceSpec};
