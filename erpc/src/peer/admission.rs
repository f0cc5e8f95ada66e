//! [`Admission`]: the caps on accepted sessions, per peer and per remote IP address.
//!
//! A connection is counted from the moment it is accepted (before its TLS handshake, so
//! half-open handshakes count too) until its session closes; one over a cap is closed before
//! a byte of it is read.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::config::Settings;

pub(crate) struct Admission {
    max_total: usize,
    max_per_ip: usize,
    counts: Mutex<Counts>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The peer holds `max_sessions` sessions.
    Full(usize),
    /// The remote address holds `max_sessions_per_ip` sessions.
    IpFull(IpAddr, usize),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Full(max) => write!(f, "the peer holds its maximum of {max} sessions (max_sessions)"),
            Refusal::IpFull(ip, max) => {
                write!(f, "{ip} holds its maximum of {max} sessions (max_sessions_per_ip)")
            }
        }
    }
}

/// One admitted connection; uncounted when dropped.
pub(crate) struct Permit {
    admission: Arc<Admission>,
    ip: Option<IpAddr>,
}

impl Admission {
    /// The caps of `settings`, if any is set.
    pub(crate) fn new(settings: &Settings) -> Option<Arc<Admission>> {
        if settings.max_sessions.is_none() && settings.max_sessions_per_ip.is_none() {
            return None;
        }
        Some(Arc::new(Admission {
            max_total: settings.max_sessions.unwrap_or(usize::MAX),
            max_per_ip: settings.max_sessions_per_ip.unwrap_or(usize::MAX),
            counts: Mutex::new(Counts::default()),
        }))
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a connection from `remote` (an `ip:port`; other addresses, such as unix socket
    /// paths, only count toward the total), or says which cap it would exceed.
    pub(crate) fn admit(self: &Arc<Self>, remote: &str) -> Result<Permit, Refusal> {
        let ip = remote.parse::<std::net::SocketAddr>().ok().map(|a| a.ip());
        let mut counts = self.counts();
        if counts.total >= self.max_total {
            return Err(Refusal::Full(self.max_total));
        }
        if let Some(ip) = ip {
            let held = counts.per_ip.entry(ip).or_insert(0);
            if *held >= self.max_per_ip {
                return Err(Refusal::IpFull(ip, self.max_per_ip));
            }
            *held += 1;
        }
        counts.total += 1;
        Ok(Permit {
            admission: self.clone(),
            ip,
        })
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut counts = self.admission.counts();
        counts.total -= 1;
        if let Some(ip) = self.ip
            && let Some(held) = counts.per_ip.get_mut(&ip)
        {
            *held -= 1;
            if *held == 0 {
                counts.per_ip.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PeerConfig;

    fn admission(total: usize, per_ip: usize) -> Arc<Admission> {
        let config = PeerConfig {
            max_sessions: total,
            max_sessions_per_ip: per_ip,
            ..PeerConfig::default()
        };
        Admission::new(&Settings::from_config(&config).unwrap()).expect("caps are set")
    }

    #[test]
    fn no_caps_no_admission() {
        assert!(Admission::new(&Settings::from_config(&PeerConfig::default()).unwrap()).is_none());
    }

    #[test]
    fn caps_per_ip_and_in_total_and_frees_on_drop() {
        let caps = admission(3, 2);
        let a1 = caps.admit("10.0.0.1:1000").unwrap();
        let _a2 = caps.admit("10.0.0.1:1001").unwrap();
        assert!(matches!(caps.admit("10.0.0.1:1002"), Err(Refusal::IpFull(..))));
        let _b1 = caps.admit("10.0.0.2:1000").unwrap();
        assert!(matches!(caps.admit("10.0.0.3:1000"), Err(Refusal::Full(3))));
        drop(a1);
        let _a3 = caps.admit("10.0.0.1:1003").expect("a freed slot is reused");
        // A refused connection took nothing: the counts are exactly the three held.
        assert_eq!(caps.counts().total, 3);
        assert_eq!(caps.counts().per_ip.len(), 2);
    }

    #[test]
    fn unix_peers_count_toward_the_total_only() {
        let caps = admission(2, 1);
        let _x = caps.admit("@").unwrap();
        let _y = caps.admit("/tmp/sock").unwrap();
        assert!(matches!(caps.admit("@"), Err(Refusal::Full(2))));
    }
}
