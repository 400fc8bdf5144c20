//! rzk's own stand-in for the [`base2histogram`](https://crates.io/crates/base2histogram) API,
//! as far as openraft uses it, put in its place by the workspace's `[patch.crates-io]`.
//!
//! # Why
//! openraft (pinned at 0.10.0-alpha.37) keeps about fifteen runtime-statistics histograms in
//! every Raft node, whether or not anyone reads them (rzk never does: its metrics are its own).
//! base2histogram 0.2.3 builds the lookup tables of *all sixteen* bucket widths the first time any
//! histogram is made, in one `LazyLock`: 26 MiB written once at start and never read again (openraft
//! only uses width 3). That was two thirds of an idle rzk server's memory (39 MiB RSS, 28 of it
//! anonymous) and 26 MiB of every member of a pseudo-cluster. This crate keeps the same recording
//! and percentile semantics, log-linear buckets with four sub-buckets per power of two (a value's
//! bucket is within 25% of it; base2histogram's width 3), in 2 KiB per histogram and no global
//! table. It was written for rzk from the API's documentation, not copied.
//!
//! Only what openraft calls is here; a new openraft that calls more fails to build, which is the
//! signal to extend this crate or drop the patch (once base2histogram builds its tables lazily).

use std::fmt;
use std::marker::PhantomData;

/// Sub-buckets per power of two, as a number of bits (base2histogram's width 3 is 2 bits).
const SUB_BITS: u32 = 2;
const SUB_BUCKETS: usize = 1 << SUB_BITS;
/// Values below this have a bucket each.
const EXACT_BELOW: u64 = 2 * SUB_BUCKETS as u64;
/// Buckets for the whole `u64` range: the exact ones, then `SUB_BUCKETS` per power of two from
/// `EXACT_BELOW` up.
const BUCKETS: usize = EXACT_BELOW as usize + (64 - SUB_BITS as usize - 1) * SUB_BUCKETS;

/// The bucket that counts `value`.
fn bucket_of(value: u64) -> usize {
    if value < EXACT_BELOW {
        return value as usize;
    }
    let exponent = 63 - value.leading_zeros(); // at least SUB_BITS + 1
    let sub = ((value >> (exponent - SUB_BITS)) as usize) & (SUB_BUCKETS - 1);
    EXACT_BELOW as usize + (exponent - SUB_BITS - 1) as usize * SUB_BUCKETS + sub
}

/// The smallest value that `bucket` counts.
fn bucket_floor(bucket: usize) -> u64 {
    if bucket < EXACT_BELOW as usize {
        return bucket as u64;
    }
    let above = bucket - EXACT_BELOW as usize;
    let exponent = (above / SUB_BUCKETS) as u32 + SUB_BITS + 1;
    let sub = (above % SUB_BUCKETS) as u64;
    (1u64 << exponent) | (sub << (exponent - SUB_BITS))
}

/// A histogram of `u64` values in log-linear buckets. `T` is the per-period label type of
/// base2histogram's API; this stand-in keeps one period, so it is only a type parameter here.
pub struct Histogram<T = ()> {
    /// Empty until the first record, then `BUCKETS` counts.
    counts: Vec<u64>,
    total: u64,
    _label: PhantomData<fn() -> T>,
}

impl<T> Histogram<T> {
    /// An empty histogram (no allocation until the first record).
    pub fn new() -> Self {
        Self {
            counts: Vec::new(),
            total: 0,
            _label: PhantomData,
        }
    }

    /// Count `value` once.
    pub fn record(&mut self, value: u64) {
        self.record_n(value, 1);
    }

    /// Count `value` `count` times.
    pub fn record_n(&mut self, value: u64, count: u64) {
        if count == 0 {
            return;
        }
        if self.counts.is_empty() {
            self.counts = vec![0; BUCKETS];
        }
        let bucket = &mut self.counts[bucket_of(value)];
        *bucket = bucket.saturating_add(count);
        self.total = self.total.saturating_add(count);
    }

    /// How many values were recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The value at quantile `p` (0.0..=1.0), as the floor of its bucket; 0 when empty.
    pub fn percentile(&self, p: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let p = if p.is_nan() { 0.0 } else { p.clamp(0.0, 1.0) };
        // The rank of the wanted value, 1-based: at least the first, at most the last.
        let rank = ((p * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (bucket, count) in self.counts.iter().enumerate() {
            seen = seen.saturating_add(*count);
            if seen >= rank {
                return bucket_floor(bucket);
            }
        }
        unreachable!("the counts add up to total")
    }

    /// The percentiles openraft reports.
    pub fn percentile_stats(&self) -> PercentileStats {
        PercentileStats {
            samples: self.total,
            p0_1: self.percentile(0.001),
            p1: self.percentile(0.01),
            p5: self.percentile(0.05),
            p10: self.percentile(0.10),
            p50: self.percentile(0.50),
            p90: self.percentile(0.90),
            p99: self.percentile(0.99),
            p99_9: self.percentile(0.999),
        }
    }

    /// Forget every value.
    pub fn clear(&mut self) {
        self.counts.clear();
        self.total = 0;
    }
}

impl<T> Default for Histogram<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Clone for Histogram<T> {
    fn clone(&self) -> Self {
        Self {
            counts: self.counts.clone(),
            total: self.total,
            _label: PhantomData,
        }
    }
}

impl<T> PartialEq for Histogram<T> {
    fn eq(&self, other: &Self) -> bool {
        // `counts` is empty exactly when nothing was counted (new or cleared), so equal counts
        // are equal histograms.
        self.counts == other.counts
    }
}

impl<T> Eq for Histogram<T> {}

impl<T> fmt::Debug for Histogram<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Histogram")
            .field("total", &self.total)
            .field("p50", &self.percentile(0.5))
            .field("p99", &self.percentile(0.99))
            .finish()
    }
}

/// Percentiles of a [`Histogram`], as openraft prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PercentileStats {
    /// Number of values recorded.
    pub samples: u64,
    /// 0.1th percentile.
    pub p0_1: u64,
    /// 1st percentile.
    pub p1: u64,
    /// 5th percentile.
    pub p5: u64,
    /// 10th percentile.
    pub p10: u64,
    /// Median.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
}

impl fmt::Display for PercentileStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[samples: {}, P0.1: {}, P1: {}, P5: {}, P10: {}, P50: {}, P90: {}, P99: {}, P99.9: {}]",
            self.samples, self.p0_1, self.p1, self.p5, self.p10, self.p50, self.p90, self.p99, self.p99_9
        )
    }
}

/// Named histograms shown side by side; openraft renders one in its runtime-stats report.
#[derive(Debug, Clone)]
pub struct AsciiChart<T = ()> {
    series: Vec<(String, Histogram<T>)>,
}

impl<T> AsciiChart<T> {
    /// A chart with no series.
    pub fn new() -> Self {
        Self { series: Vec::new() }
    }

    /// Add a named series.
    pub fn add(mut self, name: &str, histogram: Histogram<T>) -> Self {
        self.series.push((name.to_string(), histogram));
        self
    }

    /// One line per series: its count and percentiles.
    pub fn detailed(&self) -> impl fmt::Display + '_ {
        self
    }
}

impl<T> Default for AsciiChart<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> fmt::Display for AsciiChart<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, histogram) in &self.series {
            writeln!(f, "{name}: {}", histogram.percentile_stats())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_the_bucket_whose_range_holds_it() {
        let mut values: Vec<u64> = (0..4096).collect();
        for shift in 0..64 {
            let power = 1u64 << shift;
            values.extend([
                power,
                power - 1,
                power.saturating_add(1),
                power | (power >> 1),
            ]);
        }
        values.push(u64::MAX);
        for value in values {
            let bucket = bucket_of(value);
            assert!(
                bucket < BUCKETS,
                "bucket {bucket} of {value} is out of range"
            );
            assert!(
                bucket_floor(bucket) <= value,
                "{value} is below its bucket's floor"
            );
            if bucket + 1 < BUCKETS {
                assert!(
                    value < bucket_floor(bucket + 1),
                    "{value} reaches the next bucket"
                );
            }
        }
        assert_eq!(
            bucket_of(u64::MAX),
            BUCKETS - 1,
            "the last bucket holds the largest value"
        );
    }

    #[test]
    fn a_bucket_floor_is_within_a_quarter_of_its_values() {
        for bucket in EXACT_BELOW as usize..BUCKETS - 1 {
            let (floor, next) = (bucket_floor(bucket), bucket_floor(bucket + 1));
            assert!(
                next - floor <= floor / 4,
                "bucket {bucket}: {floor}..{next} is too wide"
            );
        }
    }

    #[test]
    fn percentiles_follow_the_recorded_values() {
        let mut histogram = Histogram::<()>::new();
        assert_eq!(histogram.percentile_stats().samples, 0);
        assert_eq!(histogram.percentile(0.5), 0, "an empty histogram reports 0");
        for value in 1..=1000u64 {
            histogram.record(value);
        }
        histogram.record_n(5, 0);
        let stats = histogram.percentile_stats();
        assert_eq!(stats.samples, 1000);
        assert_eq!(stats.p1, 10, "the 10th value is its bucket's floor");
        for (quantile, got) in [(0.5, stats.p50), (0.9, stats.p90), (0.999, stats.p99_9)] {
            let exact = (quantile * 1000.0) as u64;
            assert!(
                got <= exact && exact - got <= exact / 4,
                "p{quantile}: {got} vs {exact}"
            );
        }
        assert_eq!(histogram.percentile(1.0), bucket_floor(bucket_of(1000)));
        let copy = histogram.clone();
        assert_eq!(copy, histogram);
        histogram.clear();
        assert_eq!(histogram, Histogram::new(), "cleared equals new");
        assert_ne!(copy, histogram);
    }

    #[test]
    fn counts_saturate_instead_of_overflowing() {
        let mut histogram = Histogram::<()>::new();
        histogram.record_n(7, u64::MAX);
        histogram.record_n(7, 3);
        assert_eq!(histogram.total(), u64::MAX);
        assert_eq!(histogram.percentile(0.5), 7);
        // Two buckets whose sum does not fit a u64: the walk to the top rank must not overflow.
        let mut two = Histogram::<()>::new();
        two.record_n(7, u64::MAX - 5);
        two.record_n(1000, u64::MAX);
        assert_eq!(two.percentile(1.0), bucket_floor(bucket_of(1000)));
    }

    #[test]
    fn the_chart_names_every_series() {
        let mut histogram = Histogram::<()>::new();
        histogram.record(42);
        let chart = AsciiChart::new()
            .add("one", histogram.clone())
            .add("two", histogram);
        let text = chart.detailed().to_string();
        assert!(
            text.contains("one: [samples: 1") && text.contains("two: [samples: 1"),
            "{text}"
        );
    }
}
