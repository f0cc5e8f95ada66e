//! [`Balance`]: how a call picks one of the live instances, skipping those it already tried.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::ring::HashRing;

/// How calls are spread over the live instances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Balance {
    /// Each call to the next instance in turn.
    #[default]
    RoundRobin,
    /// Each call to the instance with the fewest calls in flight from this client (ties in
    /// turn).
    LeastInflight,
    /// A call with a key ([`hash_key`](crate::ServiceCall::hash_key)) to the instance that
    /// owns the key on a consistent-hash ring: the same instance while it lives. Calls
    /// without a key go round robin.
    Hash,
}

impl std::str::FromStr for Balance {
    type Err = String;
    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "round-robin" => Ok(Balance::RoundRobin),
            "least-inflight" => Ok(Balance::LeastInflight),
            "hash" => Ok(Balance::Hash),
            _ => Err(format!(
                "unknown balance {name:?}; use round-robin, least-inflight or hash"
            )),
        }
    }
}

/// What a pick looks at for each live instance.
pub(crate) trait Candidate {
    fn in_flight(&self) -> usize;
    fn tried(&self) -> bool;
}

/// Picks an index into `members` (not yet tried), or `None` when every one was tried.
pub(crate) fn pick<C: Candidate>(
    balance: Balance,
    members: &[C],
    ring: &HashRing,
    key: Option<u64>,
    turn: &AtomicUsize,
) -> Option<usize> {
    let n = members.len();
    if n == 0 {
        return None;
    }
    match (balance, key) {
        (Balance::Hash, Some(hash)) => ring.owners(hash).find(|&i| !members[i].tried()),
        (Balance::LeastInflight, _) => {
            let start = turn.fetch_add(1, Ordering::Relaxed);
            (0..n)
                .map(|i| (start + i) % n)
                .filter(|&i| !members[i].tried())
                .min_by_key(|&i| members[i].in_flight())
        }
        _ => {
            let start = turn.fetch_add(1, Ordering::Relaxed);
            (0..n).map(|i| (start + i) % n).find(|&i| !members[i].tried())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ring::{DEFAULT_VNODES, hash_key};

    struct Fake {
        in_flight: usize,
        tried: bool,
    }

    impl Candidate for Fake {
        fn in_flight(&self) -> usize {
            self.in_flight
        }
        fn tried(&self) -> bool {
            self.tried
        }
    }

    fn fakes(loads: &[usize]) -> Vec<Fake> {
        loads
            .iter()
            .map(|&in_flight| Fake {
                in_flight,
                tried: false,
            })
            .collect()
    }

    #[test]
    fn round_robin_takes_turns_and_skips_tried_instances() {
        let mut members = fakes(&[0, 0, 0]);
        let turn = AtomicUsize::new(0);
        let ring = HashRing::default();
        let picks: Vec<_> = (0..6)
            .map(|_| pick(Balance::RoundRobin, &members, &ring, None, &turn).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        members[1].tried = true;
        for _ in 0..6 {
            assert_ne!(pick(Balance::RoundRobin, &members, &ring, None, &turn), Some(1));
        }
        members[0].tried = true;
        members[2].tried = true;
        assert_eq!(pick(Balance::RoundRobin, &members, &ring, None, &turn), None);
    }

    #[test]
    fn least_inflight_picks_the_least_busy_and_shares_ties() {
        let members = fakes(&[5, 1, 3]);
        let turn = AtomicUsize::new(0);
        let ring = HashRing::default();
        assert_eq!(pick(Balance::LeastInflight, &members, &ring, None, &turn), Some(1));
        let tied = fakes(&[2, 2, 7]);
        let picks: Vec<_> = (0..4)
            .map(|_| pick(Balance::LeastInflight, &tied, &ring, None, &turn).unwrap())
            .collect();
        assert!(
            picks.contains(&0) && picks.contains(&1) && !picks.contains(&2),
            "{picks:?}"
        );
    }

    #[test]
    fn hash_sticks_to_the_owner_and_falls_back_along_the_ring() {
        let mut members = fakes(&[0, 0, 0]);
        let ring = HashRing::new(&["a:1", "b:1", "c:1"], DEFAULT_VNODES);
        let turn = AtomicUsize::new(0);
        let hash = hash_key(b"user-42");
        let key = Some(hash);
        let owner = pick(Balance::Hash, &members, &ring, key, &turn).unwrap();
        for _ in 0..10 {
            assert_eq!(pick(Balance::Hash, &members, &ring, key, &turn), Some(owner));
        }
        members[owner].tried = true;
        let fallback = pick(Balance::Hash, &members, &ring, key, &turn).unwrap();
        assert_ne!(fallback, owner);
        assert_eq!(Some(fallback), ring.owners(hash).nth(1));
    }

    #[test]
    fn balance_names_parse_as_the_cli_spells_them() {
        assert_eq!("least-inflight".parse::<Balance>(), Ok(Balance::LeastInflight));
        assert!("random".parse::<Balance>().unwrap_err().contains("round-robin"));
    }
}
