//! Allocation-free decoding of the few fields popdns needs from a MaxMind DB record.
//!
//! One struct covers every supported layout; each field is optional and lenient about its
//! MMDB type, so an unexpected type in one field only loses that field's information:
//!
//! * MaxMind GeoIP2/GeoLite2 (City or Country): `location.latitude/longitude` (double),
//!   `location.accuracy_radius` (uint16), `country.iso_code`, `continent.code`.
//! * ip-location-db / DB-IP flat: `latitude`/`longitude` (float32, sometimes double),
//!   `country_code`.
//!
//! `registered_country` is deliberately not read: it is where the network is registered,
//! not where its users are.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// The decoded subset of one record.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Record {
    /// GeoIP2 `country` map (or a bare code string).
    pub country: Code,
    /// GeoIP2 `continent` map (or a bare code string).
    pub continent: Code,
    /// GeoIP2 `location` map.
    pub location: Loc,
    /// Flat `country_code`.
    pub country_code: Code,
    /// Flat `latitude`.
    pub latitude: Num,
    /// Flat `longitude`.
    pub longitude: Num,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Loc {
    pub latitude: Num,
    pub longitude: Num,
    pub accuracy_radius: Num,
}

/// Any numeric MMDB value (float, double, any integer) as `f64`; other types give `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Num(pub Option<f64>);

/// A two-letter code, uppercased. Accepts a string, or a map whose `iso_code` / `code` entry
/// is one (GeoIP2 `country` / `continent`). Anything else, or a string that is not two ASCII
/// letters, gives `None`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Code(pub Option<[u8; 2]>);

pub(crate) fn parse_code(s: &str) -> Option<[u8; 2]> {
    match s.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            Some([a.to_ascii_uppercase(), b.to_ascii_uppercase()])
        }
        _ => None,
    }
}

/// Skip the rest of a sequence without allocating.
fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f32<E>(self, v: f32) -> Result<Num, E> {
                Ok(Num(Some(f64::from(v))))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Num, E> {
                Ok(Num(Some(v)))
            }
            // Integers beyond 2^53 lose precision; no coordinate or radius is that large.
            #[allow(clippy::cast_precision_loss)]
            fn visit_u64<E>(self, v: u64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_u128<E>(self, v: u128) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            #[allow(clippy::cast_precision_loss)]
            fn visit_i64<E>(self, v: i64) -> Result<Num, E> {
                Ok(Num(Some(v as f64)))
            }
            fn visit_str<E>(self, _: &str) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_unit<E>(self) -> Result<Num, E> {
                Ok(Num(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Num, A::Error> {
                drain_seq(seq)?;
                Ok(Num(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Num, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Num(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// Map key of interest inside a `country` / `continent` map, decoded without allocating.
enum Key {
    Code,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
                Ok(match v {
                    "iso_code" | "code" => Key::Code,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Code;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a code string or a map with iso_code/code")
            }
            fn visit_str<E>(self, v: &str) -> Result<Code, E> {
                Ok(Code(parse_code(v)))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Code, A::Error> {
                let mut code = None;
                while let Some(key) = map.next_key::<Key>()? {
                    match key {
                        Key::Code if code.is_none() => code = map.next_value::<Code>()?.0,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Code(code))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Code, E> {
                Ok(Code(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Code, E> {
                Ok(Code(None))
            }
            fn visit_u128<E>(self, _: u128) -> Result<Code, E> {
                Ok(Code(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Code, E> {
                Ok(Code(None))
            }
            fn visit_bytes<E>(self, _: &[u8]) -> Result<Code, E> {
                Ok(Code(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Code, E> {
                Ok(Code(None))
            }
            fn visit_unit<E>(self) -> Result<Code, E> {
                Ok(Code(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Code, A::Error> {
                drain_seq(seq)?;
                Ok(Code(None))
            }
        }
        d.deserialize_any(V)
    }
}
