//! popdns-zone
