//! [`Set`]: an ordered set as a sorted Vec (`litemap`), for the handful of members or feeds a
//! call has.
//!
//! Why not `BTreeSet`: the app is wasm people download, and a B-tree compiles its node code
//! (insert with splits, remove with rebalancing) and, for `collect`, a stable sort once for
//! each element type. Here building a set inserts one by one (binary search, no sort), which
//! for a few dozen elements costs nothing. Iteration is in order, as a `BTreeSet`'s is.

use litemap::LiteMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Set<T: Ord>(LiteMap<T, ()>);

impl<T: Ord> Default for Set<T> {
    fn default() -> Self {
        Self(LiteMap::new())
    }
}

impl<T: Ord> Set<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `value` was new.
    pub fn insert(&mut self, value: T) -> bool {
        self.0.try_insert(value, ()).is_none()
    }

    /// Whether `value` was there.
    pub fn remove(&mut self, value: &T) -> bool {
        self.0.remove(value).is_some()
    }

    pub fn contains(&self, value: &T) -> bool {
        self.0.contains_key(value)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// In order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.0.keys()
    }

    /// What is in `self` and not in `other`, in order.
    pub fn difference<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = &'a T> {
        self.iter().filter(|v| !other.contains(v))
    }

    /// What is in both, in order.
    pub fn intersection<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = &'a T> {
        self.iter().filter(|v| other.contains(v))
    }
}

impl<T: Ord> Extend<T> for Set<T> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        for value in iter {
            self.insert(value);
        }
    }
}

impl<T: Ord> FromIterator<T> for Set<T> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut set = Self::new();
        set.extend(iter);
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_one_of_each_in_order() {
        let mut s: Set<u32> = [5, 1, 3, 1, 5].into_iter().collect();
        assert_eq!(s.iter().copied().collect::<Vec<_>>(), [1, 3, 5]);
        assert!(!s.insert(3));
        assert!(s.insert(2));
        assert!(s.remove(&1));
        assert!(!s.remove(&1));
        assert!(s.contains(&2) && !s.contains(&1));
        assert_eq!(s.len(), 3);
        let other: Set<u32> = [3, 4].into_iter().collect();
        assert_eq!(s.difference(&other).copied().collect::<Vec<_>>(), [2, 5]);
        assert_eq!(s.intersection(&other).copied().collect::<Vec<_>>(), [3]);
        s.clear();
        assert!(s.is_empty());
    }
}
