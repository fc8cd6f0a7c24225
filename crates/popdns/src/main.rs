//! The popdns binary: command line, logging, wiring, signals.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "popdns",
    version,
    about = "GeoDNS authoritative nameserver for CDNs"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Serve DNS.
    Serve {
        /// Configuration file.
        #[arg(short, long, default_value = "popdns.toml")]
        config: PathBuf,
    },
    /// Load and validate the configuration and every zone without serving.
    /// Prints each problem as `file:line: message`; exit status 1 if any.
    Check {
        #[arg(short, long, default_value = "popdns.toml")]
        config: PathBuf,
    },
    /// Show how a client is routed: location, override, ranked PoPs with
    /// distances, the answer and its ECS scope.
    Route {
        #[arg(short, long, default_value = "popdns.toml")]
        config: PathBuf,
        /// The query's source address (the resolver).
        ip: std::net::IpAddr,
        /// EDNS Client Subnet, e.g. 81.2.69.0/24.
        #[arg(long)]
        ecs: Option<String>,
        /// Service name (default: the first service).
        #[arg(long)]
        name: Option<String>,
        /// A or AAAA.
        #[arg(long = "type", default_value = "A")]
        qtype: String,
    },
}

fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let result = match cli.command {
        Command::Check { config } => check(&config),
        Command::Serve { config } => serve(&config),
        Command::Route {
            config,
            ip,
            ecs,
            name,
            qtype,
        } => route(&config, ip, ecs.as_deref(), name.as_deref(), &qtype),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("popdns: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(
    path: &Path,
    generation: u64,
) -> Result<(popdns_config::Config, popdns_server::Snapshot), Vec<String>> {
    popdns_daemon::load(path, generation)
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    match load(path, 0) {
        Ok((config, snap)) => {
            for z in snap.zones.zones() {
                println!(
                    "zone {} serial {} ({} names) from {}",
                    popdns_server_name(&z.origin),
                    z.serial,
                    z.names(),
                    z.file.display()
                );
            }
            if let Some(geo) = snap.geo.as_ref()
                && let Some(db) = geo.geoip.as_ref()
            {
                println!("geoip {}", db.describe());
            }
            println!(
                "{}: OK ({} zones, {} PoPs, {} services)",
                config.file.display(),
                snap.zones.zones().len(),
                config.pops.len(),
                config.services.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errors) => {
            for e in &errors {
                println!("{e}");
            }
            Ok(ExitCode::FAILURE)
        }
    }
}

fn route(
    path: &Path,
    ip: std::net::IpAddr,
    ecs: Option<&str>,
    name: Option<&str>,
    qtype: &str,
) -> anyhow::Result<ExitCode> {
    let (config, snap) = match load(path, 0) {
        Ok(x) => x,
        Err(errors) => {
            for e in &errors {
                println!("{e}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    let geo = snap
        .geo
        .as_ref()
        .context("the configuration has no [[services]]")?;
    let name = match name {
        Some(n) => n.to_string(),
        None => config
            .services
            .first()
            .map(|s| s.name.clone())
            .context("the configuration has no [[services]]")?,
    };
    let svc = geo
        .service_by_name(&name)
        .with_context(|| format!("{name} is not a configured service"))?;
    let family = match qtype.to_ascii_uppercase().as_str() {
        "A" => popdns_server::Family::V4,
        "AAAA" => popdns_server::Family::V6,
        other => anyhow::bail!("--type must be A or AAAA, not {other}"),
    };
    let ecs = match ecs {
        Some(e) => {
            let (a, l) = popdns_config::parse_network(e)
                .with_context(|| format!("--ecs {e:?} is not a network like 192.0.2.0/24"))?;
            Some((a, l))
        }
        None => None,
    };
    println!("service:   {name} {}", qtype.to_ascii_uppercase());
    print!("{}", geo.explain(svc, ecs, ip, family, &[]));
    Ok(ExitCode::SUCCESS)
}

fn popdns_server_name(wire: &[u8]) -> String {
    popdns_server::name_to_text(wire)
}

fn serve(path: &Path) -> anyhow::Result<ExitCode> {
    match popdns_daemon::run(path) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(popdns_daemon::DaemonError::Config(errors)) => {
            for e in &errors {
                tracing::error!("{e}");
            }
            anyhow::bail!(
                "not starting: {} problem(s) in the configuration or zones",
                errors.len()
            )
        }
        Err(e) => Err(e.into()),
    }
}
