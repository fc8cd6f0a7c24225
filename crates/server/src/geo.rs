//! Geo-routed service names (filled by the routing work).

use std::net::IpAddr;

use popdns_config::Config;
use popdns_wire::{Query, Writer};
use popdns_zone::ZoneSet;

/// Routing state of a snapshot.
pub struct GeoState {}

impl GeoState {
    /// Build from the config; `None` when no service is configured.
    pub fn build(config: &Config, _zones: &ZoneSet) -> Result<Option<GeoState>, Vec<String>> {
        if config.services.is_empty() {
            return Ok(None);
        }
        Ok(None)
    }

    /// The service at `qname_lc`, if any.
    pub fn service(&self, _qname_lc: &[u8]) -> Option<u32> {
        None
    }

    /// Write the geo answer; returns the ECS scope to announce.
    pub fn answer(
        &self,
        _svc: u32,
        _q: &Query<'_>,
        _src: IpAddr,
        _w: &mut Writer<'_>,
    ) -> Option<u8> {
        None
    }
}
