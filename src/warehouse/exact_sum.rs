//! The sum of many floats as one exact value, rounded once: the same whatever order the
//! values come in, and taken as they stream past.
//!
//! Engines return rows in whatever order their partitions finish, and a float sum taken
//! in that order could differ in the last cent between two reads of the same data
//! (synthetic and real prices often total exactly half a cent). Sorting first made the
//! sum order-free too, but needed every value in memory at once; a final table of a large
//! payer-month holds tens of millions of rows.
//!
//! The method is Shewchuk's (“Adaptive Precision Floating-Point Arithmetic”, 1997), the
//! one Python's `math.fsum` uses: the running sum is kept as a few non-overlapping
//! partial sums whose total is exact, and only the final result is rounded. An outside
//! reader of the final tables can therefore reproduce a total bit for bit.

/// A running exact sum of finite floats.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExactSum {
    /// Non-overlapping partial sums, smallest magnitude first, whose exact total is the sum
    /// so far.
    partials: Vec<f64>,
    /// The plain sum of the values that are not finite: an infinity or NaN among the values
    /// is the result, as in any float sum.
    special: f64,
}

impl ExactSum {
    /// Adds one value.
    pub(crate) fn add(&mut self, value: f64) {
        if !value.is_finite() {
            self.special += value;
            return;
        }
        let mut x = value;
        let mut kept = 0;
        for i in 0..self.partials.len() {
            let mut y = self.partials[i];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let high = x + y;
            let low = y - (high - x);
            if low != 0.0 {
                self.partials[kept] = low;
                kept += 1;
            }
            x = high;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
    }

    /// The exact sum of every value added, rounded to the nearest float (ties to even).
    pub(crate) fn total(&self) -> f64 {
        // Zero unless an infinity or NaN was added (NaN is unequal to zero too).
        if self.special != 0.0 {
            return self.special;
        }
        let mut rest = self.partials.iter().rev().copied();
        let Some(mut high) = rest.next() else {
            return 0.0;
        };
        // The first partial that adding rounded away, and the one below it, if any.
        let mut rounded_away = None;
        while let Some(y) = rest.next() {
            let x = high;
            high = x + y;
            let low = y - (high - x);
            if low != 0.0 {
                rounded_away = rest.next().map(|below| (low, below));
                break;
            }
        }
        // `high + low` is exact but `low` was rounded away; when the partial below it
        // pushes in the same direction, the exact sum lies past the halfway point that
        // rounding to even chose, so round the other way.
        if let Some((low, below)) = rounded_away
            && ((low < 0.0 && below < 0.0) || (low > 0.0 && below > 0.0))
        {
            let twice = low * 2.0;
            let up = high + twice;
            if twice == up - high {
                high = up;
            }
        }
        high
    }
}

impl Extend<f64> for ExactSum {
    fn extend<I: IntoIterator<Item = f64>>(&mut self, values: I) {
        values.into_iter().for_each(|value| self.add(value));
    }
}

/// The exact sum of `values`, rounded once: the same whatever order they come in.
pub(crate) fn order_free_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = ExactSum::default();
    sum.extend(values);
    sum.total()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sum_is_exact_then_rounded_once() {
        // Summed in the order given, these come to 1.1 and 0.1; sorted first, to 1.0.
        assert_eq!(order_free_sum([1e16, -1e16, 1.0, 0.1]), 1.1);
        assert_eq!(order_free_sum([1e16, 1.0, -1e16, 0.1]), 1.1);
        // Ten dimes are exactly 1.0 in decimal; their doubles, summed exactly, round to 1.0.
        assert_eq!(order_free_sum([0.1; 10]), 1.0);
        assert_eq!(order_free_sum([]), 0.0);
        assert_eq!(order_free_sum([2.5]), 2.5);
        // A tie broken by a partial far below it: 1 + 2⁻⁵³ + 2⁻¹⁰⁶ is just above the
        // halfway point between 1 and the next float up, so it rounds up.
        let half_ulp = f64::EPSILON / 2.0;
        assert_eq!(
            order_free_sum([1.0, half_ulp, half_ulp * half_ulp]),
            1.0 + f64::EPSILON
        );
        assert_eq!(order_free_sum([1.0, half_ulp]), 1.0);
    }

    #[test]
    fn the_order_never_matters() {
        // Costs such as a CUR's: many small values, some negative (credits), with ties at
        // half a cent after rounding.
        let mut values: Vec<f64> = (0..2000)
            .map(|i| f64::from(i % 97) * 0.0137 - f64::from(i % 13) * 0.005)
            .collect();
        let forward = order_free_sum(values.iter().copied());
        values.reverse();
        assert_eq!(
            order_free_sum(values.iter().copied()).to_bits(),
            forward.to_bits()
        );
        values.sort_by(f64::total_cmp);
        assert_eq!(
            order_free_sum(values.iter().copied()).to_bits(),
            forward.to_bits()
        );
        let mut streamed = ExactSum::default();
        for chunk in values.chunks(7) {
            streamed.extend(chunk.iter().copied());
        }
        assert_eq!(streamed.total().to_bits(), forward.to_bits());
    }

    #[test]
    fn an_infinity_or_nan_is_the_result() {
        assert_eq!(order_free_sum([1.0, f64::INFINITY]), f64::INFINITY);
        assert!(order_free_sum([f64::INFINITY, f64::NEG_INFINITY]).is_nan());
        assert!(order_free_sum([1.0, f64::NAN]).is_nan());
    }
}
