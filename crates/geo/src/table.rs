//! Country → (continent, representative coordinates) table, used when a record names a
//! country but carries no coordinates (country-level databases), and to fill in the continent.
//!
//! Format (geoip/country-coords.csv): `#` comments and blank lines ignored; a header naming the
//! columns (`country`, `lat`, `lon` required; `continent`, `place` optional; any order); then
//! one row per ISO 3166-1 alpha-2 code. No quoting: values cannot contain commas.

use std::path::Path;

use crate::GeoError;
use crate::record::parse_code;

/// The table compiled into the crate.
pub(crate) const BUILTIN_CSV: &str = include_str!("../../../geoip/country-coords.csv");
/// How the built-in table is named in messages.
pub(crate) const BUILTIN_NAME: &str = "<built-in geoip/country-coords.csv>";

const SLOTS: usize = 26 * 26;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct CountryInfo {
    pub lat: f64,
    pub lon: f64,
    pub continent: Option<[u8; 2]>,
}

/// Indexed directly by the two letters of the code: no hashing on the lookup path.
pub(crate) struct CountryTable {
    slots: Box<[Option<CountryInfo>]>,
    len: usize,
    source: String,
}

fn slot(code: [u8; 2]) -> Option<usize> {
    let [a, b] = code;
    (a.is_ascii_uppercase() && b.is_ascii_uppercase())
        .then(|| usize::from(a - b'A') * 26 + usize::from(b - b'A'))
}

impl CountryTable {
    pub fn builtin() -> Result<CountryTable, GeoError> {
        CountryTable::parse(BUILTIN_CSV, BUILTIN_NAME)
    }

    pub fn load(path: &Path) -> Result<CountryTable, GeoError> {
        let text = std::fs::read_to_string(path).map_err(|source| GeoError::CountryTableIo {
            path: path.to_path_buf(),
            source,
        })?;
        CountryTable::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, source: &str) -> Result<CountryTable, GeoError> {
        let err = |line: usize, message: String| GeoError::CountryTable {
            source_name: source.to_owned(),
            line,
            message,
        };
        let mut slots = vec![None; SLOTS].into_boxed_slice();
        let mut len = 0;
        // Column positions: country, continent, lat, lon.
        let mut cols: Option<(usize, Option<usize>, usize, usize)> = None;
        for (idx, raw) in text.lines().enumerate() {
            let line = idx + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
            let Some((c_country, c_continent, c_lat, c_lon)) = cols else {
                let find = |name: &str| fields.iter().position(|f| f.eq_ignore_ascii_case(name));
                match (find("country"), find("lat"), find("lon")) {
                    (Some(c), Some(la), Some(lo)) => cols = Some((c, find("continent"), la, lo)),
                    _ => {
                        return Err(err(
                            line,
                            "header must name the columns country, lat, lon (and optionally \
                             continent, place)"
                                .into(),
                        ));
                    }
                }
                continue;
            };
            let field = |i: usize| fields.get(i).copied().unwrap_or("");
            let code_str = field(c_country);
            let Some(code) = parse_code(code_str).filter(|c| c.iter().all(u8::is_ascii_uppercase))
            else {
                return Err(err(line, format!("bad country code {code_str:?}")));
            };
            let continent = match c_continent.map(field).unwrap_or("") {
                "" => None,
                s => Some(parse_code(s).ok_or_else(|| err(line, format!("bad continent {s:?}")))?),
            };
            let num = |i: usize, what: &str, max: f64| -> Result<f64, GeoError> {
                let s = field(i);
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && v.abs() <= max)
                    .ok_or_else(|| err(line, format!("bad {what} {s:?}")))
            };
            let info = CountryInfo {
                lat: num(c_lat, "lat", 90.0)?,
                lon: num(c_lon, "lon", 180.0)?,
                continent,
            };
            let Some(i) = slot(code) else {
                return Err(err(line, format!("bad country code {code_str:?}")));
            };
            if slots[i].replace(info).is_some() {
                return Err(err(line, format!("duplicate country {code_str}")));
            }
            len += 1;
        }
        if cols.is_none() {
            return Err(err(1, "empty table (no header line)".into()));
        }
        Ok(CountryTable {
            slots,
            len,
            source: source.to_owned(),
        })
    }

    #[inline]
    pub fn get(&self, code: [u8; 2]) -> Option<CountryInfo> {
        slot(code).and_then(|i| self.slots.get(i).copied().flatten())
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn source(&self) -> &str {
        &self.source
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_covers_the_world() -> Result<(), GeoError> {
        let t = CountryTable::builtin()?;
        assert!(t.len() >= 249, "{}", t.len());
        for (cc, cont) in [
            (*b"US", *b"NA"),
            (*b"DE", *b"EU"),
            (*b"JP", *b"AS"),
            (*b"BR", *b"SA"),
            (*b"AU", *b"OC"),
            (*b"ZA", *b"AF"),
            (*b"AQ", *b"AN"),
            (*b"XK", *b"EU"),
        ] {
            let info = t.get(cc).map(|i| i.continent);
            assert_eq!(info, Some(Some(cont)), "{}", String::from_utf8_lossy(&cc));
        }
        let gb = t.get(*b"GB").expect("GB in table");
        assert!((gb.lat - 51.5).abs() < 0.1 && (gb.lon + 0.13).abs() < 0.1);
        assert_eq!(t.get(*b"ZZ"), None);
        assert_eq!(t.get(*b"zz"), None);
        assert_eq!(t.get([0, 255]), None);
        Ok(())
    }

    #[test]
    fn parse_errors_name_source_and_line() {
        let cases = [
            ("lat,lon\n", "header"),
            ("country,lat,lon\nD,1,2\n", "bad country"),
            ("country,lat,lon\nDE,100,2\n", "bad lat"),
            ("country,lat,lon\nDE,1,x\n", "bad lon"),
            ("country,continent,lat,lon\nDE,EUR,1,2\n", "bad continent"),
            ("country,lat,lon\nDE,1,2\nDE,1,2\n", "duplicate"),
            ("# nothing\n", "empty"),
        ];
        for (text, want) in cases {
            match CountryTable::parse(text, "t.csv") {
                Err(e) => {
                    let m = e.to_string();
                    assert!(m.contains(want) && m.contains("t.csv"), "{text:?}: {m}");
                }
                Ok(_) => panic!("{text:?} parsed"),
            }
        }
    }

    #[test]
    fn column_order_is_free() -> Result<(), GeoError> {
        let t = CountryTable::parse("place,lon,lat,country\nX,8.5,47.4,CH\n", "t")?;
        assert_eq!(
            t.get(*b"CH"),
            Some(CountryInfo {
                lat: 47.4,
                lon: 8.5,
                continent: None
            })
        );
        Ok(())
    }
}
