//! Which tests a run takes: `--filter` globs, then `--partition`, named as
//! cargo-nextest names them (`hash:K/N`, `count:K/N`), so that N machines
//! running partitions 1 to N together run every selected test once.

use std::fmt;
use std::str::FromStr;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// `--filter` patterns: a test is taken when one matches its name or its
/// `SUITE/TEST`. A pattern without glob characters (`*?[{`) matches
/// anywhere in those, as `*PATTERN*`.
#[derive(Debug)]
pub struct Filter(Option<GlobSet>);

impl Filter {
    /// Compiles the patterns; none means every test.
    pub fn new(patterns: &[String]) -> Result<Filter, globset::Error> {
        if patterns.is_empty() {
            return Ok(Filter(None));
        }
        let mut set = GlobSetBuilder::new();
        for pattern in patterns {
            let glob = match pattern.contains(['*', '?', '[', '{']) {
                true => pattern.clone(),
                false => format!("*{}*", globset::escape(pattern)),
            };
            set.add(Glob::new(&glob)?);
        }
        set.build().map(|set| Filter(Some(set)))
    }

    /// Whether `test` of `suite` is taken.
    pub fn matches(&self, suite: &str, test: &str) -> bool {
        self.0
            .as_ref()
            .is_none_or(|set| set.is_match(test) || set.is_match(format!("{suite}/{test}")))
    }
}

/// `--partition`: take the K-th of N shares of the selected tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub kind: PartitionKind,
    /// 1-based.
    pub k: u64,
    pub n: u64,
}

/// How tests are dealt into partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartitionKind {
    /// By a hash of `SUITE/TEST`: a test stays in its partition as others come and go.
    Hash,
    /// Dealt in turn in the order of the run (suites as given, tests by name): even sizes.
    Count,
}

impl FromStr for Partition {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || format!("`{text}`: expected hash:K/N or count:K/N with 1 <= K <= N");
        let (kind, share) = text.split_once(':').ok_or_else(usage)?;
        let kind = match kind {
            "hash" => PartitionKind::Hash,
            "count" => PartitionKind::Count,
            _ => return Err(usage()),
        };
        let (k, n) = share.split_once('/').ok_or_else(usage)?;
        let (k, n): (u64, u64) = (k.parse().map_err(|_| usage())?, n.parse().map_err(|_| usage())?);
        if k == 0 || k > n {
            return Err(usage());
        }
        Ok(Partition { kind, k, n })
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PartitionKind::Hash => "hash",
            PartitionKind::Count => "count",
        };
        write!(f, "{kind}:{}/{}", self.k, self.n)
    }
}

impl Partition {
    /// Whether the test at `index` (in the run's order) named `SUITE/TEST`
    /// belongs to this partition.
    pub fn takes(&self, index: usize, suite: &str, test: &str) -> bool {
        let slot = match self.kind {
            PartitionKind::Count => index as u64 % self.n,
            PartitionKind::Hash => fnv1a(format!("{suite}/{test}").as_bytes()) % self.n,
        };
        slot == self.k - 1
    }
}

/// FNV-1a, 64 bits: stable across Rust versions and machines, which the
/// standard library's hasher does not promise.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_the_test_or_suite_and_test() {
        let filter = Filter::new(&["fd_*".into(), "rust/path_{open,link}".into()]).unwrap();
        assert!(filter.matches("c", "fd_readdir"));
        assert!(filter.matches("rust", "path_open"));
        assert!(!filter.matches("c", "path_open"));
        assert!(!filter.matches("c", "close_preopen"));
        // No glob characters: a substring, as before globs.
        let plain = Filter::new(&["s/fs_".into()]).unwrap();
        assert!(plain.matches("s", "fs_read") && !plain.matches("t", "fs_read"));
        assert!(Filter::new(&[]).unwrap().matches("any", "thing"));
        assert!(Filter::new(&["a[".into()]).is_err());
    }

    #[test]
    fn partitions_cover_every_test_exactly_once() {
        let names: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        for kind in ["hash", "count"] {
            let mut seen = vec![0; names.len()];
            for k in 1..=3 {
                let partition: Partition = format!("{kind}:{k}/3").parse().unwrap();
                for (i, name) in names.iter().enumerate() {
                    if partition.takes(i, "s", name) {
                        seen[i] += 1;
                    }
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "{kind}: {seen:?}");
        }
        let count: Partition = "count:2/3".parse().unwrap();
        assert_eq!((0..9).filter(|&i| count.takes(i, "s", "x")).count(), 3);
        // The hash depends on the name alone, not on the other tests.
        let hash: Partition = "hash:1/2".parse().unwrap();
        assert_eq!(hash.takes(0, "s", "t7"), hash.takes(41, "s", "t7"));
    }

    #[test]
    fn a_bad_partition_is_refused() {
        for text in ["hash:0/3", "hash:4/3", "count:1", "slice:1/2", "hash:a/b", "1/2"] {
            assert!(text.parse::<Partition>().is_err(), "{text}");
        }
        assert_eq!("count:2/5".parse::<Partition>().unwrap().to_string(), "count:2/5");
    }
}
