//! Errors from building a [`Router`](crate::Router).

use std::fmt;
use std::net::IpAddr;

/// Why a [`RouterSpec`](crate::RouterSpec) was rejected.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RouteError {
    /// More PoPs than the router can index (`u16::MAX`).
    TooManyPops {
        /// Number of PoPs configured.
        count: usize,
    },
    /// Two PoPs share a name.
    DuplicatePop {
        /// The repeated name.
        name: String,
    },
    /// A PoP's latitude/longitude is not finite or out of range.
    InvalidCoordinates {
        /// The PoP's name.
        pop: String,
        /// Configured latitude.
        latitude: f64,
        /// Configured longitude.
        longitude: f64,
    },
    /// Two services share a (normalised) name.
    DuplicateService {
        /// The repeated name.
        name: String,
    },
    /// A service has `answers == 0`.
    ZeroAnswers {
        /// Index of the service in the spec.
        service_index: usize,
        /// The service's name.
        service: String,
    },
    /// A service's PoP set is empty (an empty subset, or no PoPs at all).
    EmptyServicePops {
        /// Index of the service in the spec.
        service_index: usize,
        /// The service's name.
        service: String,
    },
    /// A service names a PoP that does not exist.
    UnknownServicePop {
        /// Index of the service in the spec.
        service_index: usize,
        /// The service's name.
        service: String,
        /// The unknown PoP name.
        pop: String,
    },
    /// An override names a PoP that does not exist.
    UnknownOverridePop {
        /// Index of the override in the spec.
        override_index: usize,
        /// The unknown PoP name.
        pop: String,
    },
    /// An override lists no PoPs.
    EmptyOverridePops {
        /// Index of the override in the spec.
        override_index: usize,
    },
    /// An override network's prefix length exceeds the address width.
    InvalidOverridePrefix {
        /// Index of the override in the spec.
        override_index: usize,
        /// The network address.
        network: IpAddr,
        /// The invalid prefix length.
        prefix: u8,
    },
    /// `local_pop` names a PoP that does not exist.
    UnknownLocalPop {
        /// The unknown PoP name.
        pop: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyPops { count } => {
                write!(f, "too many PoPs: {count} (at most {})", u16::MAX)
            }
            Self::DuplicatePop { name } => write!(f, "duplicate PoP name {name:?}"),
            Self::InvalidCoordinates {
                pop,
                latitude,
                longitude,
            } => write!(
                f,
                "PoP {pop:?}: invalid coordinates ({latitude}, {longitude}): latitude must be \
                 within [-90, 90] and longitude within [-180, 180]"
            ),
            Self::DuplicateService { name } => write!(f, "duplicate service name {name:?}"),
            Self::ZeroAnswers {
                service_index,
                service,
            } => write!(
                f,
                "service #{service_index} ({service:?}): answers must be at least 1"
            ),
            Self::EmptyServicePops {
                service_index,
                service,
            } => write!(f, "service #{service_index} ({service:?}) has no PoPs"),
            Self::UnknownServicePop {
                service_index,
                service,
                pop,
            } => write!(
                f,
                "service #{service_index} ({service:?}) names unknown PoP {pop:?}"
            ),
            Self::UnknownOverridePop {
                override_index,
                pop,
            } => write!(f, "override #{override_index} names unknown PoP {pop:?}"),
            Self::EmptyOverridePops { override_index } => {
                write!(f, "override #{override_index} lists no PoPs")
            }
            Self::InvalidOverridePrefix {
                override_index,
                network,
                prefix,
            } => write!(
                f,
                "override #{override_index}: invalid prefix length /{prefix} for {network}"
            ),
            Self::UnknownLocalPop { pop } => write!(f, "local_pop names unknown PoP {pop:?}"),
        }
    }
}

impl std::error::Error for RouteError {}
