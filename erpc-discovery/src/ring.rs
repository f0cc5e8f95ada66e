//! [`HashRing`]: consistent hashing with virtual nodes. A key belongs to the first point at or
//! after its hash, clockwise; each member owns `vnodes` points, so load spreads evenly and a
//! member that joins or leaves moves only the keys of its own points.
//!
//! Points are hashed from the member's *address*, not its registration id: a server that
//! re-registers on the same address (a restart, a zero-downtime reboot) owns the same keys.

use xxhash_rust::xxh3::xxh3_64;

/// Virtual nodes per member by default.
pub const DEFAULT_VNODES: usize = 160;

/// A consistent-hash ring over members `0..n` (indexes into the caller's member list).
#[derive(Clone, Debug, Default)]
pub struct HashRing {
    /// (point, member index), sorted.
    points: Vec<(u64, usize)>,
    members: usize,
}

/// The hash of a call's key, as the ring uses it.
pub fn hash_key(key: &[u8]) -> u64 {
    xxh3_64(key)
}

impl HashRing {
    /// A ring of `names` (one per member, the member's address), `vnodes` points each.
    pub fn new<S: AsRef<str>>(names: &[S], vnodes: usize) -> HashRing {
        let vnodes = vnodes.max(1);
        let mut points = Vec::with_capacity(names.len() * vnodes);
        let mut label = String::new();
        for (member, name) in names.iter().enumerate() {
            for v in 0..vnodes {
                label.clear();
                label.push_str(name.as_ref());
                label.push('#');
                label.push_str(&v.to_string());
                points.push((xxh3_64(label.as_bytes()), member));
            }
        }
        points.sort_unstable();
        HashRing {
            points,
            members: names.len(),
        }
    }

    /// The member a key hash belongs to.
    pub fn owner(&self, hash: u64) -> Option<usize> {
        self.owners(hash).next()
    }

    /// Every member in the order a key hash falls back to them: its owner, then the next
    /// distinct members clockwise.
    pub fn owners(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.points.partition_point(|&(point, _)| point < hash);
        let mut seen = vec![false; self.members];
        let mut left = self.members;
        self.points[start..]
            .iter()
            .chain(&self.points[..start])
            .filter_map(move |&(_, member)| {
                if left == 0 || std::mem::replace(&mut seen[member], true) {
                    return None;
                }
                left -= 1;
                Some(member)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:9090")).collect()
    }

    #[test]
    fn an_empty_ring_owns_nothing() {
        assert_eq!(HashRing::new::<String>(&[], 10).owner(42), None);
    }

    #[test]
    fn keys_spread_evenly_over_members() {
        let ring = HashRing::new(&names(3), DEFAULT_VNODES);
        let mut counts = [0usize; 3];
        for k in 0..30_000u32 {
            counts[ring.owner(hash_key(&k.to_le_bytes())).unwrap()] += 1;
        }
        for count in counts {
            assert!((8_000..=12_000).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn a_joining_member_takes_keys_only_for_itself() {
        let before = HashRing::new(&names(3), DEFAULT_VNODES);
        let after = HashRing::new(&names(4), DEFAULT_VNODES);
        let mut moved = 0;
        for k in 0..10_000u32 {
            let hash = hash_key(&k.to_le_bytes());
            let (was, is) = (before.owner(hash).unwrap(), after.owner(hash).unwrap());
            if was != is {
                assert_eq!(is, 3, "key {k} moved between old members");
                moved += 1;
            }
        }
        // About a quarter of the keys belong to the new member.
        assert!((1_500..=3_500).contains(&moved), "{moved} keys moved");
    }

    #[test]
    fn a_leaving_member_gives_away_only_its_own_keys() {
        let all = names(3);
        let before = HashRing::new(&all, DEFAULT_VNODES);
        let after = HashRing::new(&[&all[0], &all[2]], DEFAULT_VNODES);
        for k in 0..10_000u32 {
            let hash = hash_key(&k.to_le_bytes());
            let was = before.owner(hash).unwrap();
            let is = after.owner(hash).map(|i| if i == 0 { 0 } else { 2 }).unwrap();
            if was != 1 {
                assert_eq!(was, is, "key {k} of a member that stayed moved");
            }
        }
    }

    #[test]
    fn fallback_order_visits_every_member_once_starting_with_the_owner() {
        let ring = HashRing::new(&names(4), 8);
        for k in 0..100u32 {
            let hash = hash_key(&k.to_le_bytes());
            let order: Vec<usize> = ring.owners(hash).collect();
            assert_eq!(order[0], ring.owner(hash).unwrap());
            let mut sorted = order.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3]);
        }
    }
}
