//! popdns-server
