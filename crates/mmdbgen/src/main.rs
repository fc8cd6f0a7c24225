//! `mmdbgen <input.csv> <out.mmdb> [--schema geoip2-city|flat-city|country] [--ip-version 4|6]
//! [--build-epoch SECONDS]`: write a MaxMind DB file from the CSV source format described in
//! `popdns_mmdbgen::parse_csv` (and geoip/README.md).

use std::path::PathBuf;
use std::process::ExitCode;

use popdns_mmdbgen::{Error, IpVersion, Options, Schema, convert_file};

const USAGE: &str = "usage: mmdbgen <input.csv> <out.mmdb> [--schema geoip2-city|flat-city|country] \
[--ip-version 4|6] [--build-epoch SECONDS]";

fn parse_args(args: &[String]) -> Result<(PathBuf, PathBuf, Options), Error> {
    let mut options = Options::new(Schema::GeoIP2City);
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| Error::Usage(format!("{name} needs a value\n{USAGE}")))
        };
        match arg.as_str() {
            "--schema" => options.schema = value("--schema")?.parse()?,
            "--ip-version" => {
                options.ip_version = match value("--ip-version")?.as_str() {
                    "4" => IpVersion::V4,
                    "6" => IpVersion::V6,
                    other => {
                        return Err(Error::Usage(format!(
                            "--ip-version {other:?}: expected 4 or 6"
                        )));
                    }
                }
            }
            "--build-epoch" => {
                let v = value("--build-epoch")?;
                options.build_epoch = v
                    .parse()
                    .map_err(|_| Error::Usage(format!("--build-epoch {v:?}: expected seconds")))?;
            }
            "-h" | "--help" => return Err(Error::Usage(USAGE.into())),
            s if s.starts_with('-') && s.len() > 1 => {
                return Err(Error::Usage(format!("unknown option {s}\n{USAGE}")));
            }
            s => positional.push(PathBuf::from(s)),
        }
    }
    match <[PathBuf; 2]>::try_from(positional) {
        Ok([input, out]) => Ok((input, out, options)),
        Err(_) => Err(Error::Usage(USAGE.into())),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse_args(&args).and_then(|(input, out, options)| {
        let n = convert_file(&input, &out, &options)?;
        println!(
            "mmdbgen: wrote {} ({} networks, schema {})",
            out.display(),
            n,
            options.schema
        );
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mmdbgen: {e}");
            ExitCode::from(2)
        }
    }
}
