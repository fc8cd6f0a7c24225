//! popdns-geo: IP address → location, from MaxMind-format (`.mmdb`) databases.
//!
//! This is the only popdns crate that depends on `maxminddb`. [`GeoDb::open`] memory-maps one
//! or more databases; [`GeoDb::lookup`] is called on every query and neither allocates nor
//! panics. Supported record layouts, detected per record:
//!
//! 1. MaxMind GeoIP2/GeoLite2-City: `location.latitude/longitude`, `country.iso_code`,
//!    `continent.code`, `location.accuracy_radius`.
//! 2. ip-location-db / DB-IP flat city: `latitude`/`longitude` (float32 or double),
//!    `country_code`.
//! 3. Country-only (GeoLite2-Country, flat `country_code`): coordinates come from the
//!    country table (geoip/country-coords.csv, built in) with [`Precision::Country`].
//!
//! Updating a database file: write the new file elsewhere on the same file system and
//! `rename` it over the old path, then open it again. Never rewrite a mapped file in place.

mod record;
mod table;

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{MaxMindDbError, Mmap, Reader};

use crate::record::Record;
use crate::table::CountryTable;

/// Records with an accuracy radius at least this large (km) are country-level placeholders
/// (MaxMind's "centre of the country" points use 1000).
pub const PLACEHOLDER_RADIUS_KM: f64 = 1000.0;

/// The cache slot of a record offset (Fibonacci hashing).
#[inline]
fn slot_of(offset: usize) -> usize {
    ((offset as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 54) as usize & (CACHE_SLOTS - 1)
}

/// How many records [`GeoDb::open`] decodes from each database as a sanity check.
const PROBE_RECORDS: usize = 2000;

/// Errors from opening databases. Messages name the file.
#[derive(Debug, thiserror::Error)]
pub enum GeoError {
    /// `GeoDb::open` was given no database path.
    #[error("no GeoIP database configured")]
    NoDatabase,
    /// The file could not be opened or is not a valid MaxMind DB.
    #[error("GeoIP database {}: {source}", path.display())]
    Open {
        /// The database file.
        path: PathBuf,
        /// Cause.
        source: MaxMindDbError,
    },
    /// The database is valid but its records do not look like a location database.
    #[error("GeoIP database {}: {message}", path.display())]
    Schema {
        /// The database file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The country coordinates table could not be read.
    #[error("country coordinates table {}: {source}", path.display())]
    CountryTableIo {
        /// The CSV file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The country coordinates table has a bad line.
    #[error("country coordinates table {source_name}, line {line}: {message}")]
    CountryTable {
        /// The CSV file (or the built-in table's name).
        source_name: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// How exact a [`Location`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// The record had its own coordinates (city level or better).
    City,
    /// Country level: coordinates from the country table, or a record whose accuracy radius
    /// marks a country placeholder (>= [`PLACEHOLDER_RADIUS_KM`]).
    Country,
}

/// Where an address is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Location {
    /// Latitude in degrees, -90..=90.
    pub lat: f64,
    /// Longitude in degrees, -180..=180.
    pub lon: f64,
    /// ISO 3166-1 alpha-2 code, uppercase ASCII.
    pub country: Option<[u8; 2]>,
    /// Continent code: AF AN AS EU NA OC SA (from the record, else from the country table).
    pub continent: Option<[u8; 2]>,
    /// City or country level.
    pub precision: Precision,
}

/// Result of [`GeoDb::lookup`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GeoHit {
    /// `None` = unknown location.
    pub location: Option<Location>,
    /// Prefix length of the database network the answer holds for, in the family of the
    /// looked-up address (an IPv4 address in an IPv6 tree gives e.g. 24, not 120). When
    /// nothing matched, the prefix of the empty network the lookup ended in. When several
    /// databases were consulted, the longest of their prefixes, so that the answer is the
    /// same for every address in the prefix (a safe ECS scope).
    pub prefix_len: u8,
}

struct Db {
    path: PathBuf,
    reader: Reader<Mmap>,
    /// `ip_version` is 6 (IPv6 addresses can be looked up).
    v6: bool,
    /// Some probed record had its own coordinates (for `describe`).
    city_level: bool,
}

/// One or more memory-mapped databases plus the country → coordinates table.
///
/// `Send + Sync`; share it behind an `Arc`/`ArcSwap` and swap in a freshly opened one to reload.
pub struct GeoDb {
    dbs: Vec<Db>,
    countries: CountryTable,
    /// Unique per opened instance (a [`LocationCache`] key part).
    id: u64,
}

/// Source of [`GeoDb::id`].
static NEXT_DB_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Slots of a [`LocationCache`] (a power of two).
const CACHE_SLOTS: usize = 1024;

/// A small per-thread memo of decoded records for [`GeoDb::lookup_cached`]:
/// direct-mapped, keyed by (database instance, file, record offset). A
/// database's records are immutable, so an entry never goes stale; a
/// reloaded database is a new instance with new keys. Many networks share
/// one record (every network of a city points at the same data), so the
/// hit rate is high even for clients spread over the whole address space.
pub struct LocationCache {
    slots: Box<[CacheSlot]>,
    hits: u64,
}

#[derive(Clone, Copy)]
struct CacheSlot {
    /// `(db instance id << 8) | file index`; 0 = empty.
    tag: u64,
    offset: usize,
    location: Option<Location>,
}

impl Default for LocationCache {
    fn default() -> Self {
        Self::new()
    }
}

impl LocationCache {
    /// An empty cache (allocates its fixed slot array once).
    pub fn new() -> Self {
        LocationCache {
            slots: vec![
                CacheSlot {
                    tag: 0,
                    offset: 0,
                    location: None,
                };
                CACHE_SLOTS
            ]
            .into_boxed_slice(),
            hits: 0,
        }
    }

    /// Lookups that found their record already decoded.
    pub fn hits(&self) -> u64 {
        self.hits
    }
}

impl fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GeoDb")
            .field("databases", &self.describe())
            .finish()
    }
}

impl GeoDb {
    /// Open one or more MaxMind-format databases with mmap.
    ///
    /// Lookups try the databases in the given order (e.g. an IPv4 file then an IPv6 file, or a
    /// city database then a country database as fallback). `country_coords`: optional CSV
    /// path of the country → coordinates table; `None` uses the table compiled into the crate
    /// (geoip/country-coords.csv).
    ///
    /// Each database is sanity-checked by decoding its first records: a file whose records
    /// cannot be decoded, or that has neither coordinates nor a country in any of them (an ASN
    /// database, say), is rejected with [`GeoError::Schema`].
    pub fn open(paths: &[PathBuf], country_coords: Option<&Path>) -> Result<GeoDb, GeoError> {
        if paths.is_empty() {
            return Err(GeoError::NoDatabase);
        }
        let countries = match country_coords {
            Some(p) => CountryTable::load(p)?,
            None => CountryTable::builtin()?,
        };
        let mut dbs = Vec::with_capacity(paths.len());
        for path in paths {
            // SAFETY: the mapping is only valid while the file is not modified. popdns
            // documents that database files are replaced by rename (a new inode), never
            // rewritten in place; a mapped old inode stays intact until unmapped.
            let reader = unsafe { Reader::open_mmap(path) }.map_err(|source| GeoError::Open {
                path: path.clone(),
                source,
            })?;
            let v6 = reader.metadata().ip_version == 6;
            let city_level = probe(&reader, path)?;
            dbs.push(Db {
                path: path.clone(),
                reader,
                v6,
                city_level,
            });
        }
        Ok(GeoDb {
            dbs,
            countries,
            id: NEXT_DB_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Look up an address (already normalised by the caller: IPv4 as `IpAddr::V4`).
    ///
    /// Databases are tried in order; one whose family cannot hold the address (IPv6 address,
    /// IPv4-only database) is skipped. The first that yields a location answers. Never
    /// panics and never allocates.
    pub fn lookup(&self, ip: IpAddr) -> GeoHit {
        self.lookup_with(ip, None)
    }

    /// [`GeoDb::lookup`] with a memo of decoded records: the same answer,
    /// without decoding a record seen recently again.
    pub fn lookup_cached(&self, ip: IpAddr, cache: &mut LocationCache) -> GeoHit {
        self.lookup_with(ip, Some(cache))
    }

    fn lookup_with(&self, ip: IpAddr, mut cache: Option<&mut LocationCache>) -> GeoHit {
        let mut prefix_len = 0u8;
        for (i, db) in self.dbs.iter().enumerate() {
            if ip.is_ipv6() && !db.v6 {
                continue;
            }
            let Ok(result) = db.reader.lookup(ip) else {
                continue;
            };
            let prefix = match (ip, result.network()) {
                (IpAddr::V4(_), Ok(n)) if n.is_ipv4() => n.prefix(),
                // An IPv6 tree without an IPv4 subtree: the empty (or data) node sits above
                // ::/96, so it covers all of IPv4.
                (IpAddr::V4(_), Ok(_)) => 0,
                (IpAddr::V6(_), Ok(n)) => n.prefix(),
                // Cannot happen for a valid tree; answer for this address only.
                (IpAddr::V4(_), Err(_)) => 32,
                (IpAddr::V6(_), Err(_)) => 128,
            };
            prefix_len = prefix_len.max(prefix);
            let Some(offset) = result.offset() else {
                continue;
            };
            let location = match cache.as_deref_mut() {
                Some(c) => {
                    let tag = (self.id << 8) | (i as u64 & 0xFF);
                    let slot = &mut c.slots[slot_of(offset)];
                    if slot.tag != tag || slot.offset != offset {
                        *slot = CacheSlot {
                            tag,
                            offset,
                            location: self.decode_at(&result),
                        };
                    } else {
                        c.hits += 1;
                    }
                    slot.location
                }
                None => self.decode_at(&result),
            };
            if let Some(location) = location {
                return GeoHit {
                    location: Some(location),
                    prefix_len,
                };
            }
        }
        GeoHit {
            location: None,
            prefix_len,
        }
    }

    /// Decode the record a lookup found and turn it into a location.
    fn decode_at(&self, result: &maxminddb::LookupResult<'_, Mmap>) -> Option<Location> {
        match result.decode::<Record>() {
            Ok(Some(rec)) => self.locate(&rec),
            _ => None,
        }
    }

    /// Turn a decoded record into a location (see the crate docs for the rules).
    fn locate(&self, rec: &Record) -> Option<Location> {
        let country = rec.country.0.or(rec.country_code.0);
        let info = country.and_then(|c| self.countries.get(c));
        let continent = rec.continent.0.or(info.and_then(|i| i.continent));
        let lat = rec.location.latitude.0.or(rec.latitude.0);
        let lon = rec.location.longitude.0.or(rec.longitude.0);
        match (lat, lon) {
            (Some(lat), Some(lon)) if valid_coords(lat, lon) => {
                let placeholder = country.is_some()
                    && rec
                        .location
                        .accuracy_radius
                        .0
                        .is_some_and(|r| r >= PLACEHOLDER_RADIUS_KM);
                Some(Location {
                    lat,
                    lon,
                    country,
                    continent,
                    precision: if placeholder {
                        Precision::Country
                    } else {
                        Precision::City
                    },
                })
            }
            _ => info.map(|i| Location {
                lat: i.lat,
                lon: i.lon,
                country,
                continent,
                precision: Precision::Country,
            }),
        }
    }

    /// One line per database for logs and `popdns check`, e.g.
    /// `geoip/x.mmdb (GeoIP2-City, IPv6, built 2026-06-01, 12345 nodes, city-level)`,
    /// joined with "; ", followed by the country table in use.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for (i, db) in self.dbs.iter().enumerate() {
            let m = db.reader.metadata();
            if i > 0 {
                out.push_str("; ");
            }
            out.push_str(&format!(
                "{} ({}, IPv{}, built {}, {} nodes, {}-level)",
                db.path.display(),
                m.database_type,
                m.ip_version,
                ymd(m.build_epoch),
                m.node_count,
                if db.city_level { "city" } else { "country" },
            ));
        }
        out.push_str(&format!(
            "; country table {} ({} countries)",
            self.countries.source(),
            self.countries.len()
        ));
        out
    }
}

fn valid_coords(lat: f64, lon: f64) -> bool {
    lat.is_finite() && lon.is_finite() && lat.abs() <= 90.0 && lon.abs() <= 180.0
}

/// Decode the first records of a freshly opened database. Returns whether any record has its
/// own coordinates.
fn probe(reader: &Reader<Mmap>, path: &Path) -> Result<bool, GeoError> {
    let schema_err = |message: String| GeoError::Schema {
        path: path.to_path_buf(),
        message,
    };
    let mut seen = 0usize;
    let mut with_coords = false;
    let mut with_country = false;
    let networks = reader
        .networks(Default::default())
        .map_err(|e| schema_err(format!("cannot iterate networks: {e}")))?;
    for item in networks.take(PROBE_RECORDS) {
        let result = item.map_err(|e| schema_err(format!("corrupt search tree: {e}")))?;
        let rec = match result.decode::<Record>() {
            Ok(Some(rec)) => rec,
            Ok(None) => continue,
            Err(e) => {
                let net = result
                    .network()
                    .map_or_else(|_| "?".to_owned(), |n| n.to_string());
                return Err(schema_err(format!("cannot decode record of {net}: {e}")));
            }
        };
        seen += 1;
        with_coords |= rec.location.latitude.0.is_some() || rec.latitude.0.is_some();
        with_country |= rec.country.0.is_some() || rec.country_code.0.is_some();
    }
    if seen > 0 && !with_coords && !with_country {
        return Err(schema_err(format!(
            "none of the first {seen} records has coordinates or a country \
             (is this a GeoIP city or country database?)"
        )));
    }
    Ok(with_coords)
}

/// `YYYY-MM-DD` of a Unix timestamp (UTC), without a date crate.
fn ymd(epoch: u64) -> String {
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let days = i64::try_from(epoch / 86_400).unwrap_or(0);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Convenience for callers that receive IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`):
/// returns the address with such forms turned into `IpAddr::V4`, everything else unchanged.
pub fn normalise(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ymd_formats_dates() {
        assert_eq!(ymd(0), "1970-01-01");
        assert_eq!(ymd(1_767_225_600), "2026-01-01");
        assert_eq!(ymd(1_780_345_920), "2026-06-01");
        assert_eq!(ymd(951_782_400), "2000-02-29");
    }

    #[test]
    fn normalise_maps_v4_mapped_only() {
        let mapped: IpAddr = "::ffff:192.0.2.1"
            .parse()
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(normalise(mapped), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(normalise(v6), v6);
    }
}
