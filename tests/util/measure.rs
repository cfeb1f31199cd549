//! Measuring OCR text against the truth, for the tests and the benchmarks
//! (which include this file with `#[path]`).

#![allow(dead_code)] // each includer uses a part

/// The share of `want`'s words that appear in `got` (case-insensitive), for
/// scans whose reading order may differ from the ground truth's.
pub fn word_recall(want: &str, got: &str) -> f64 {
    let words = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| w.len() > 1)
            .map(str::to_lowercase)
            .collect()
    };
    let have: std::collections::HashSet<String> = words(got).into_iter().collect();
    let want = words(want);
    want.iter().filter(|w| have.contains(*w)).count() as f64 / want.len().max(1) as f64
}

/// Character error rate of `got` against `want`, comparing words.
pub fn cer(want: &str, got: &str) -> f64 {
    let norm = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let (a, b): (Vec<char>, Vec<char>) =
        (norm(want).chars().collect(), norm(got).chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()] as f64 / a.len().max(1) as f64
}
