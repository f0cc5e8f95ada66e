//! [`EtcdTarget`]: where a service is registered, written `etcd://HOST:PORT[,HOST:PORT…]/SERVICE`.

use std::fmt;
use std::str::FromStr;

use crate::DiscoveryError;

/// An etcd cluster and a service name in it: `etcd://127.0.0.1:2379/math`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdTarget {
    /// etcd's client endpoints, `host:port` each.
    pub endpoints: Vec<String>,
    /// The service name: letters, digits, `.`, `_` and `-`.
    pub service: String,
}

/// The URL scheme of an [`EtcdTarget`].
pub const SCHEME: &str = "etcd://";

impl EtcdTarget {
    /// Whether `text` is meant as an etcd target (starts with `etcd://`) rather than an address.
    pub fn is_target(text: &str) -> bool {
        text.starts_with(SCHEME)
    }
}

impl FromStr for EtcdTarget {
    type Err = DiscoveryError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let usage = |why: &str| {
            DiscoveryError::Invalid(format!(
                "{text:?} is not an etcd target: {why}; write etcd://HOST:PORT/SERVICE"
            ))
        };
        let rest = text
            .strip_prefix(SCHEME)
            .ok_or_else(|| usage("it must start with etcd://"))?;
        let (hosts, service) = rest
            .split_once('/')
            .ok_or_else(|| usage("the service name is missing"))?;
        let endpoints: Vec<String> = hosts.split(',').map(str::to_string).collect();
        if endpoints.iter().any(|e| e.is_empty() || !e.contains(':')) {
            return Err(usage("each etcd endpoint is HOST:PORT"));
        }
        check_service(service).map_err(|why| usage(&why))?;
        Ok(EtcdTarget {
            endpoints,
            service: service.to_string(),
        })
    }
}

impl fmt::Display for EtcdTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{SCHEME}{}/{}", self.endpoints.join(","), self.service)
    }
}

/// A service name is one path segment of etcd keys: keep it to a safe alphabet.
pub(crate) fn check_service(service: &str) -> Result<(), String> {
    if service.is_empty() || service.len() > 128 {
        return Err("the service name must have 1 to 128 characters".into());
    }
    if !service
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "the service name {service:?} may only have letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_names_endpoints_and_a_service() {
        let target: EtcdTarget = "etcd://127.0.0.1:2379,10.0.0.2:2379/math".parse().unwrap();
        assert_eq!(target.endpoints, ["127.0.0.1:2379", "10.0.0.2:2379"]);
        assert_eq!(target.service, "math");
        assert_eq!(target.to_string(), "etcd://127.0.0.1:2379,10.0.0.2:2379/math");
    }

    #[test]
    fn bad_targets_say_what_to_write() {
        for bad in [
            "127.0.0.1:2379/math",
            "etcd://127.0.0.1:2379",
            "etcd://127.0.0.1:2379/",
            "etcd://host/math",
            "etcd://h:1/a/b",
        ] {
            let err = bad.parse::<EtcdTarget>().unwrap_err().to_string();
            assert!(err.contains("etcd://HOST:PORT/SERVICE"), "{bad}: {err}");
        }
    }
}
