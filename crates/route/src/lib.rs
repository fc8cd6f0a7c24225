//! popdns-route
