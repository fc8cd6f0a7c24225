//! The immutable state the query path reads: loaded once per query with
//! `ArcSwap::load`, replaced whole on reload.

use std::time::SystemTime;

use popdns_config::Config;
use popdns_zone::ZoneSet;

use crate::geo::GeoState;

/// Everything one query needs, immutable.
pub struct Snapshot {
    /// Increases with every successful load.
    pub generation: u64,
    /// Unique per snapshot built in this process: the key under which a
    /// worker's [`crate::QueryCache`] keeps answers made from it.
    pub(crate) cache_id: u64,
    pub loaded_at: SystemTime,
    pub zones: ZoneSet,
    /// NSID payload and CHAOS `id.server` text.
    pub identity: Box<[u8]>,
    /// CHAOS `version.server` text.
    pub version: String,
    pub version_queries: bool,
    /// Geo services; `None` when the config has none.
    pub geo: Option<GeoState>,
    /// `popdns_health::layout_of` of the PoP names: the health table is
    /// used only when its layout matches (else every PoP counts as up).
    pub health_layout: u64,
    /// TTL cap for answers that avoid a down PoP: the shortest
    /// `interval × fall` of any check, so resolvers re-ask about as soon as
    /// the situation can change.
    pub degraded_ttl: u32,
    /// The configuration it was built from.
    pub config: popdns_config::Config,
}

/// Source of [`Snapshot::cache_id`] (0 is never used).
static NEXT_CACHE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Build a snapshot from a validated config: loads every zone (and the GeoIP
/// database). Returns every problem as `file:line: message`.
pub fn build(config: &Config, generation: u64) -> Result<Snapshot, Vec<String>> {
    let mut errors: Vec<String> = Vec::new();
    let mut extra: Vec<Vec<u8>> = Vec::new();
    for s in &config.services {
        match popdns_wire::name_from_text(&s.name) {
            Ok(n) => extra.push(n),
            Err(e) => errors.push(format!(
                "{}:{}: services.name: {e}",
                config.file.display(),
                s.line
            )),
        }
    }
    let zones = match popdns_zone::load_dir(&config.zones_dir, &extra) {
        Ok(z) => Some(z),
        Err(es) => {
            errors.extend(es.iter().map(ToString::to_string));
            None
        }
    };
    let geo = match &zones {
        Some(z) => match GeoState::build(config, z) {
            Ok(g) => g,
            Err(es) => {
                errors.extend(es);
                None
            }
        },
        None => None,
    };
    match zones {
        Some(zones) if errors.is_empty() => Ok(Snapshot {
            health_layout: popdns_health::layout_of(
                &config
                    .pops
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>(),
            ),
            degraded_ttl: config
                .pops
                .iter()
                .map(|p| (p.check.interval * p.check.fall).as_secs())
                .min()
                .unwrap_or(30)
                .clamp(1, u32::MAX as u64) as u32,
            config: config.clone(),
            generation,
            cache_id: NEXT_CACHE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            loaded_at: SystemTime::now(),
            zones,
            identity: config.server.identity.as_bytes().into(),
            version: format!("popdns {}", env!("CARGO_PKG_VERSION")),
            version_queries: config.server.version_queries,
            geo,
        }),
        _ => Err(errors),
    }
}
