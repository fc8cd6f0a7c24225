//! popdns-mmdbgen: writes small, real MaxMind DB (`.mmdb`) files from a readable source.
//!
//! This is the only popdns crate that depends on an MMDB *writer* (`mmdb-writer`). It exists
//! for tests, demos and hand-made override databases: describe networks in a CSV file (or as
//! [`Entry`] values) and get a file that `maxminddb` (and therefore `popdns-geo`) reads exactly
//! like a MaxMind or ip-location-db database.
//!
//! * IPv4 networks in an IPv6 tree are stored under `::/96` (as MaxMind does) and aliased from
//!   `::ffff:0:0/96`, 6to4 and Teredo.
//! * Documentation and private ranges (192.0.2.0/24, 2001:db8::/32, 10.0.0.0/8, ...) are allowed.
//! * Output is deterministic: the build epoch is fixed ([`DEFAULT_BUILD_EPOCH`]) and entries are
//!   inserted from least to most specific, so the bytes depend only on the input.
//!
//! CSV format (see [`parse_csv`]): `#` comments, a header naming the columns, then one network
//! per line. Columns: `network` (required), `lat`, `lon`, `country`, `continent`, `city`,
//! `radius` (accuracy radius in km), `registered_country`. Empty field = absent.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::{Value, Writer};

/// The repository's test source, geoip/test-city.csv, compiled in so that other crates' tests
/// can build a database without locating the file:
///
/// ```no_run
/// # fn main() -> Result<(), popdns_mmdbgen::Error> {
/// let entries = popdns_mmdbgen::parse_csv(popdns_mmdbgen::TEST_CITY_CSV)?;
/// let path = std::env::temp_dir().join("test-city.mmdb");
/// popdns_mmdbgen::write_mmdb(&entries, popdns_mmdbgen::Schema::GeoIP2City, &path)?;
/// # Ok(())
/// # }
/// ```
pub const TEST_CITY_CSV: &str = include_str!("../../../geoip/test-city.csv");

/// Build epoch written into every database (2026-01-01T00:00:00Z), for reproducible bytes.
pub const DEFAULT_BUILD_EPOCH: u64 = 1_767_225_600;

/// One network and what the database should say about it.
///
/// Construct with struct-update syntax: `Entry { network: "192.0.2.0/24".into(), lat: Some(50.1),
/// lon: Some(8.7), country: Some("DE".into()), ..Entry::default() }`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entry {
    /// `"192.0.2.0/24"` or `"2001:db8::/48"` (host bits must be zero).
    pub network: String,
    /// Latitude in degrees (-90..=90); give both `lat` and `lon` or neither.
    pub lat: Option<f64>,
    /// Longitude in degrees (-180..=180).
    pub lon: Option<f64>,
    /// ISO 3166-1 alpha-2 country code.
    pub country: Option<String>,
    /// Continent code (AF AN AS EU NA OC SA). Written only by [`Schema::GeoIP2City`].
    pub continent: Option<String>,
    /// City name (English).
    pub city: Option<String>,
    /// GeoIP2 `registered_country.iso_code` (the only field, when `country`/`lat`/`lon` are
    /// absent, as in real GeoLite2 records for anycast networks). Written only by
    /// [`Schema::GeoIP2City`].
    pub registered_country_only: Option<String>,
    /// GeoIP2 `location.accuracy_radius` in km (MaxMind uses 1000 for country-level
    /// placeholders). Written only by [`Schema::GeoIP2City`], and only with coordinates.
    pub accuracy_radius: Option<u16>,
}

/// Record layout to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schema {
    /// MaxMind GeoIP2/GeoLite2-City layout: nested `continent.code`, `country.iso_code`,
    /// `registered_country.iso_code`, `location.{latitude,longitude}` (double),
    /// `location.accuracy_radius` (uint16), `city.names.en`.
    GeoIP2City,
    /// ip-location-db / DB-IP city layout: flat `latitude`/`longitude` (float32),
    /// `country_code`, `city`.
    FlatCity,
    /// ip-location-db country layout: flat `country_code` only.
    CountryOnly,
}

impl Schema {
    /// The `database_type` written to the metadata.
    pub fn database_type(self) -> &'static str {
        match self {
            Schema::GeoIP2City => "popdns-Test-GeoIP2-City",
            Schema::FlatCity => "popdns-Test-Flat-City",
            Schema::CountryOnly => "popdns-Test-Country",
        }
    }
}

impl FromStr for Schema {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "geoip2-city" => Ok(Schema::GeoIP2City),
            "flat-city" => Ok(Schema::FlatCity),
            "country" => Ok(Schema::CountryOnly),
            other => Err(Error::Usage(format!(
                "unknown schema {other:?} (expected geoip2-city, flat-city or country)"
            ))),
        }
    }
}

impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Schema::GeoIP2City => "geoip2-city",
            Schema::FlatCity => "flat-city",
            Schema::CountryOnly => "country",
        })
    }
}

/// Address family of the search tree.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IpVersion {
    /// IPv4-only tree (`ip_version` 4); IPv6 entries are an error.
    V4,
    /// IPv6 tree (`ip_version` 6); IPv4 entries go under `::/96`. Default.
    #[default]
    V6,
}

/// All knobs of [`write_mmdb_with`] / [`to_bytes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Record layout.
    pub schema: Schema,
    /// Tree family.
    pub ip_version: IpVersion,
    /// Seconds since the Unix epoch written as `build_epoch`.
    pub build_epoch: u64,
}

impl Options {
    /// IPv6 tree, [`DEFAULT_BUILD_EPOCH`].
    pub fn new(schema: Schema) -> Options {
        Options {
            schema,
            ip_version: IpVersion::V6,
            build_epoch: DEFAULT_BUILD_EPOCH,
        }
    }
}

/// Errors of this crate. Messages name the offending line, network or file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad CSV input.
    #[error("line {line}: {message}")]
    Csv {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// An entry is invalid (bad network, coordinates or code).
    #[error("entry {network:?}: {message}")]
    Entry {
        /// The entry's `network` field.
        network: String,
        /// What is wrong.
        message: String,
    },
    /// The writer rejected an insert (e.g. IPv6 network in an IPv4 tree, aliased network).
    #[error("entry {network:?}: {source}")]
    Insert {
        /// The entry's `network` field.
        network: String,
        /// Writer error.
        source: mmdb_writer::Error,
    },
    /// Serialising the database failed.
    #[error("cannot serialise database: {0}")]
    Serialise(#[source] mmdb_writer::Error),
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Bad command line.
    #[error("{0}")]
    Usage(String),
}

/// Parse the CSV source format.
///
/// * Lines starting with `#` and blank lines are ignored.
/// * The first other line is the header, naming the columns in any order: `network`
///   (required), `lat`, `lon`, `country`, `continent`, `city`, `radius`, `registered_country`.
/// * Fields are separated by `,` and trimmed; there is no quoting, so values cannot contain
///   commas. An empty field means "absent".
///
/// Values are validated here (network syntax, coordinate ranges, two-letter codes) so that
/// errors carry the line number.
pub fn parse_csv(text: &str) -> Result<Vec<Entry>, Error> {
    let mut columns: Option<Vec<Column>> = None;
    let mut entries = Vec::new();
    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
        let Some(cols) = &columns else {
            columns = Some(parse_header(&fields, line)?);
            continue;
        };
        if fields.len() > cols.len() {
            return Err(Error::Csv {
                line,
                message: format!(
                    "{} fields but the header has {} columns",
                    fields.len(),
                    cols.len()
                ),
            });
        }
        let mut entry = Entry::default();
        for (col, value) in cols.iter().zip(fields.iter().copied()) {
            if value.is_empty() {
                continue;
            }
            let owned = Some(value.to_owned());
            match col {
                Column::Network => entry.network = value.to_owned(),
                Column::Lat => entry.lat = Some(parse_num(value, "lat", line)?),
                Column::Lon => entry.lon = Some(parse_num(value, "lon", line)?),
                Column::Country => entry.country = owned,
                Column::Continent => entry.continent = owned,
                Column::City => entry.city = owned,
                Column::Radius => entry.accuracy_radius = Some(parse_num(value, "radius", line)?),
                Column::RegisteredCountry => entry.registered_country_only = owned,
            }
        }
        if entry.network.is_empty() {
            return Err(Error::Csv {
                line,
                message: "empty network".into(),
            });
        }
        validate(&entry).map_err(|e| Error::Csv {
            line,
            message: e.to_string(),
        })?;
        entries.push(entry);
    }
    if columns.is_none() {
        return Err(Error::Csv {
            line: 1,
            message: "no header line (expected e.g. network,lat,lon,country,continent,city)".into(),
        });
    }
    Ok(entries)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Column {
    Network,
    Lat,
    Lon,
    Country,
    Continent,
    City,
    Radius,
    RegisteredCountry,
}

fn parse_header(fields: &[&str], line: usize) -> Result<Vec<Column>, Error> {
    let mut cols = Vec::with_capacity(fields.len());
    for name in fields {
        let col = match name.to_ascii_lowercase().as_str() {
            "network" => Column::Network,
            "lat" | "latitude" => Column::Lat,
            "lon" | "longitude" => Column::Lon,
            "country" => Column::Country,
            "continent" => Column::Continent,
            "city" => Column::City,
            "radius" | "accuracy_radius" => Column::Radius,
            "registered_country" => Column::RegisteredCountry,
            other => {
                return Err(Error::Csv {
                    line,
                    message: format!("unknown column {other:?} in header"),
                });
            }
        };
        if cols.contains(&col) {
            return Err(Error::Csv {
                line,
                message: format!("duplicate column {name:?} in header"),
            });
        }
        cols.push(col);
    }
    if !cols.contains(&Column::Network) {
        return Err(Error::Csv {
            line,
            message: "header has no \"network\" column".into(),
        });
    }
    Ok(cols)
}

fn parse_num<T: FromStr>(value: &str, what: &str, line: usize) -> Result<T, Error> {
    value.parse().map_err(|_| Error::Csv {
        line,
        message: format!("invalid {what} {value:?}"),
    })
}

fn entry_err(entry: &Entry, message: impl Into<String>) -> Error {
    Error::Entry {
        network: entry.network.clone(),
        message: message.into(),
    }
}

fn parse_network(entry: &Entry) -> Result<IpNet, Error> {
    let net: IpNet = entry
        .network
        .parse()
        .map_err(|_| entry_err(entry, "not a network in CIDR notation (e.g. 192.0.2.0/24)"))?;
    if net.trunc() != net {
        return Err(entry_err(
            entry,
            format!("host bits set (did you mean {}?)", net.trunc()),
        ));
    }
    Ok(net)
}

fn check_code(entry: &Entry, what: &str, code: Option<&String>) -> Result<(), Error> {
    match code {
        Some(c) if !(c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())) => Err(entry_err(
            entry,
            format!("{what} {c:?} is not a two-letter uppercase code"),
        )),
        _ => Ok(()),
    }
}

fn validate(entry: &Entry) -> Result<IpNet, Error> {
    let net = parse_network(entry)?;
    match (entry.lat, entry.lon) {
        (Some(lat), Some(lon)) => {
            if !(lat.is_finite() && (-90.0..=90.0).contains(&lat)) {
                return Err(entry_err(entry, format!("latitude {lat} out of range")));
            }
            if !(lon.is_finite() && (-180.0..=180.0).contains(&lon)) {
                return Err(entry_err(entry, format!("longitude {lon} out of range")));
            }
        }
        (None, None) => {}
        _ => return Err(entry_err(entry, "give both lat and lon, or neither")),
    }
    check_code(entry, "country", entry.country.as_ref())?;
    check_code(entry, "continent", entry.continent.as_ref())?;
    check_code(
        entry,
        "registered_country",
        entry.registered_country_only.as_ref(),
    )?;
    Ok(net)
}

fn names_en(name: &str) -> Value {
    Value::map([("en", Value::from(name))])
}

/// The record for one entry, or `None` when it would be an empty map (nothing is inserted).
fn record(entry: &Entry, schema: Schema) -> Option<Value> {
    let mut map: BTreeMap<String, Value> = BTreeMap::new();
    let coords = entry.lat.zip(entry.lon);
    match schema {
        Schema::GeoIP2City => {
            if let Some(c) = &entry.continent {
                map.insert(
                    "continent".into(),
                    Value::map([("code", Value::from(c.as_str()))]),
                );
            }
            if let Some(c) = &entry.country {
                let country = Value::map([
                    ("iso_code", Value::from(c.as_str())),
                    ("names", names_en(c)),
                ]);
                map.insert("country".into(), country);
            }
            if let Some(c) = entry
                .registered_country_only
                .as_ref()
                .or(entry.country.as_ref())
            {
                map.insert(
                    "registered_country".into(),
                    Value::map([("iso_code", Value::from(c.as_str()))]),
                );
            }
            if let Some((lat, lon)) = coords {
                let mut loc = BTreeMap::new();
                loc.insert("latitude".to_owned(), Value::from(lat));
                loc.insert("longitude".to_owned(), Value::from(lon));
                if let Some(r) = entry.accuracy_radius {
                    loc.insert("accuracy_radius".to_owned(), Value::from(r));
                }
                map.insert("location".into(), Value::from(loc));
            }
            if let Some(city) = &entry.city {
                map.insert("city".into(), Value::map([("names", names_en(city))]));
            }
        }
        Schema::FlatCity => {
            if let Some(c) = &entry.country {
                map.insert("country_code".into(), Value::from(c.as_str()));
            }
            if let Some((lat, lon)) = coords {
                // ip-location-db stores float32; the narrowing is the point of this schema.
                #[allow(clippy::cast_possible_truncation)]
                let (lat, lon) = (lat as f32, lon as f32);
                map.insert("latitude".into(), Value::from(lat));
                map.insert("longitude".into(), Value::from(lon));
            }
            if let Some(city) = &entry.city {
                map.insert("city".into(), Value::from(city.as_str()));
            }
        }
        Schema::CountryOnly => {
            if let Some(c) = &entry.country {
                map.insert("country_code".into(), Value::from(c.as_str()));
            }
        }
    }
    (!map.is_empty()).then(|| Value::from(map))
}

/// Serialise `entries` into the bytes of an `.mmdb` file.
///
/// Entries are inserted from least to most specific network (stable for equal lengths), so a
/// more specific network always wins over a covering one whatever the input order. Entries
/// whose record would be empty for the chosen schema (e.g. coordinates-only entries in a
/// [`Schema::CountryOnly`] database) are left out, i.e. lookups there find no data.
pub fn to_bytes(entries: &[Entry], options: &Options) -> Result<Vec<u8>, Error> {
    let mut nets = Vec::with_capacity(entries.len());
    for entry in entries {
        nets.push((validate(entry)?, entry));
    }
    nets.sort_by_key(|(net, _)| net.prefix_len());

    let ip_version = match options.ip_version {
        IpVersion::V4 => mmdb_writer::IpVersion::V4,
        IpVersion::V6 => mmdb_writer::IpVersion::V6,
    };
    let mut writer = Writer::builder(options.schema.database_type())
        .languages(["en"])
        .description(&[("en", "popdns test database written by popdns-mmdbgen")])
        .ip_version(ip_version)
        .build_epoch(UNIX_EPOCH + Duration::from_secs(options.build_epoch))
        .build();
    for (net, entry) in nets {
        if let Some(value) = record(entry, options.schema) {
            writer
                .insert_value(net, value)
                .map_err(|source| Error::Insert {
                    network: entry.network.clone(),
                    source,
                })?;
        }
    }
    writer.to_bytes().map_err(Error::Serialise)
}

/// Write `entries` as an IPv6-tree database with the given schema to `out`.
///
/// The file is written next to `out` and renamed over it, so a reader that has the old file
/// memory-mapped is never disturbed.
pub fn write_mmdb(entries: &[Entry], schema: Schema, out: &Path) -> Result<(), Error> {
    write_mmdb_with(entries, &Options::new(schema), out)
}

/// [`write_mmdb`] with all options.
pub fn write_mmdb_with(entries: &[Entry], options: &Options, out: &Path) -> Result<(), Error> {
    let bytes = to_bytes(entries, options)?;
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(format!(".tmp.{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, &bytes).map_err(|source| Error::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, out).map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io {
            path: out.to_path_buf(),
            source,
        }
    })
}

/// Read a CSV source file and write the database: the whole job of the `mmdbgen` binary.
pub fn convert_file(input: &Path, out: &Path, options: &Options) -> Result<usize, Error> {
    let text = std::fs::read_to_string(input).map_err(|source| Error::Io {
        path: input.to_path_buf(),
        source,
    })?;
    let entries = parse_csv(&text).map_err(|e| match e {
        Error::Csv { line, message } => Error::Csv {
            line,
            message: format!("{}: {message}", input.display()),
        },
        other => other,
    })?;
    write_mmdb_with(&entries, options, out)?;
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
# comment
network,lat,lon,country,continent,city,radius,registered_country
192.0.2.0/26,50.11,8.68,DE,EU,Frankfurt,20,
198.18.0.0/16,,,FR,,,,
198.19.0.0/16,,,,,,,US

2001:db8:1::/48,50.11,8.68,DE,EU,Frankfurt
";

    #[test]
    fn parses_sample() -> Result<(), Error> {
        let e = parse_csv(SAMPLE)?;
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].lat, Some(50.11));
        assert_eq!(e[0].accuracy_radius, Some(20));
        assert_eq!(e[0].city.as_deref(), Some("Frankfurt"));
        assert_eq!(e[1].country.as_deref(), Some("FR"));
        assert_eq!(e[1].lat, None);
        assert_eq!(e[2].registered_country_only.as_deref(), Some("US"));
        assert_eq!(e[3].network, "2001:db8:1::/48");
        Ok(())
    }

    #[test]
    fn rejects_bad_input() {
        let bad = [
            ("network,lat\n192.0.2.1/24,1\n", "host bits"),
            ("network,lat,lon\n192.0.2.0/24,91,0\n", "latitude"),
            ("network,lat,lon\n192.0.2.0/24,1,\n", "both"),
            ("network,country\n192.0.2.0/24,de\n", "two-letter"),
            ("network,colour\n", "unknown column"),
            ("lat,lon\n", "no \"network\""),
            ("network\nnot-a-net\n", "CIDR"),
            ("network\n192.0.2.0/24,x\n", "fields"),
            ("# only a comment\n", "no header"),
        ];
        for (text, want) in bad {
            match parse_csv(text) {
                Err(e) => assert!(e.to_string().contains(want), "{text:?}: {e}"),
                Ok(v) => panic!("{text:?} parsed: {v:?}"),
            }
        }
    }

    #[test]
    fn deterministic_and_all_schemas_write() -> Result<(), Error> {
        let e = parse_csv(SAMPLE)?;
        for schema in [Schema::GeoIP2City, Schema::FlatCity, Schema::CountryOnly] {
            let a = to_bytes(&e, &Options::new(schema))?;
            let b = to_bytes(&e, &Options::new(schema))?;
            assert_eq!(a, b, "{schema}");
            assert!(a.len() > 100);
        }
        Ok(())
    }

    #[test]
    fn ipv6_entry_in_ipv4_tree_is_an_error() -> Result<(), Error> {
        let e = parse_csv(SAMPLE)?;
        let opts = Options {
            ip_version: IpVersion::V4,
            ..Options::new(Schema::GeoIP2City)
        };
        let err = to_bytes(&e, &opts).err().map(|e| e.to_string());
        assert!(err.is_some_and(|m| m.contains("2001:db8:1::/48")));
        let v4: Vec<Entry> = e.into_iter().filter(|x| !x.network.contains(':')).collect();
        assert!(to_bytes(&v4, &opts).is_ok());
        Ok(())
    }

    #[test]
    fn shipped_test_source_parses() -> Result<(), Error> {
        let e = parse_csv(TEST_CITY_CSV)?;
        assert!(e.len() >= 14);
        assert!(e.iter().any(|x| x.registered_country_only.is_some()));
        Ok(())
    }

    #[test]
    fn schema_names_round_trip() -> Result<(), Error> {
        for s in [Schema::GeoIP2City, Schema::FlatCity, Schema::CountryOnly] {
            assert_eq!(s.to_string().parse::<Schema>()?, s);
        }
        assert!("nope".parse::<Schema>().is_err());
        Ok(())
    }
}
