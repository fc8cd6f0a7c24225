//! popdns-health
