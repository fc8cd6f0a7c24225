//! popdns-config
