//! popdns-geo
