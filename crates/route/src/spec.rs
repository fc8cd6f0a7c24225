//! Plain configuration types consumed by [`Router::new`](crate::Router::new).
//!
//! The config crate converts its TOML into these; they carry no behaviour and
//! are validated only when the router is built.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Everything the router needs, as written by the operator.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RouterSpec {
    /// Points of presence, in configuration order (this order is the PoP id).
    pub pops: Vec<PopSpec>,
    /// Services (DNS names) answered with PoP addresses; index = service id.
    pub services: Vec<ServiceSpec>,
    /// Overrides, in configuration order (index = override index).
    pub overrides: Vec<OverrideSpec>,
    /// Name of the PoP this server runs in, used to rank PoPs for clients
    /// whose location is unknown.
    pub local_pop: Option<String>,
}

/// One point of presence.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PopSpec {
    /// Unique name (compared exactly, case-sensitive).
    pub name: String,
    /// Latitude in degrees, `-90.0..=90.0`.
    pub latitude: f64,
    /// Longitude in degrees, `-180.0..=180.0`.
    pub longitude: f64,
    /// Addresses returned for A queries (may be empty: the PoP is then never
    /// answered for A).
    pub ipv4: Vec<Ipv4Addr>,
    /// Addresses returned for AAAA queries (may be empty).
    pub ipv6: Vec<Ipv6Addr>,
}

/// One service (a DNS name answered with PoP addresses).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceSpec {
    /// Name; stored lower-cased ASCII with any trailing dot removed.
    pub name: String,
    /// TTL of the answers in seconds.
    pub ttl: u32,
    /// How many PoPs each answer holds, nearest first (`>= 1`; clamped to
    /// [`MAX_ANSWERS`](crate::MAX_ANSWERS)).
    pub answers: usize,
    /// Subset of PoP names this service may use; `None` means all PoPs.
    pub pops: Option<Vec<String>>,
}

/// An operator override: clients matching it get its PoPs first.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OverrideSpec {
    /// Client networks as (address, prefix length). IPv6 networks that embed
    /// IPv4 (e.g. `::ffff:10.0.0.0/104`) are converted like client addresses.
    pub networks: Vec<(IpAddr, u8)>,
    /// ISO 3166-1 alpha-2 country codes (case-insensitive ASCII).
    pub countries: Vec<[u8; 2]>,
    /// Continent codes as used by the GeoIP database (`EU`, `NA`, ...).
    pub continents: Vec<[u8; 2]>,
    /// PoP names in order of preference.
    pub pops: Vec<String>,
}
