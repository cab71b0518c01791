//! Money: exact integer micro-units (millionths of a dollar or a real) in storage and in every
//! sum; the one place an amount becomes text or a JSON number.

/// An amount in micro-units (1 = 0.000001).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Micros(pub i64);

impl Micros {
    /// Exact decimal text: at most 6 decimals, trailing zeros dropped (`12.5`, `0.000123`,
    /// `-3`).
    pub fn decimal(self) -> String {
        let neg = self.0 < 0;
        let v = self.0.unsigned_abs();
        let (int, frac) = (v / 1_000_000, v % 1_000_000);
        let mut s = String::with_capacity(24);
        if neg {
            s.push('-');
        }
        s.push_str(itoa::Buffer::new().format(int));
        if frac != 0 {
            let f = format!("{frac:06}");
            s.push('.');
            s.push_str(f.trim_end_matches('0'));
        }
        s
    }

    /// The amount as a JSON number: the double nearest to [`Micros::decimal`], which reads
    /// back as exactly that decimal for every amount below 10^9 units (15 significant digits
    /// round-trip through a double; the text may be in exponent form, `1e-6`). Contracts that
    /// want numbers get them from here and nowhere else.
    pub fn json_number(self) -> serde_json::Value {
        self.decimal()
            .parse::<serde_json::Number>()
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact_and_numbers_print_them() {
        for (m, text) in [
            (0, "0"),
            (1, "0.000001"),
            (123, "0.000123"),
            (12_500_000, "12.5"),
            (-3_000_000, "-3"),
            (999_999_999_999_999, "999999999.999999"),
            (i64::MIN, "-9223372036854.775808"),
        ] {
            assert_eq!(Micros(m).decimal(), text);
        }
        for m in [0, 1, 123, 12_500_000, 100_000_001, 999_999_999_999_999, -42] {
            let n = Micros(m).json_number();
            let back = format!("{:.6}", n.as_f64().unwrap());
            let want = format!("{}.{:06}", m / 1_000_000, (m % 1_000_000).abs());
            assert_eq!(
                back.trim_start_matches('-'),
                want.trim_start_matches('-'),
                "{m}"
            );
        }
    }
}
