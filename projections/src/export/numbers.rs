//! Numbers written as EXACT's files have them: coordinates as its JSON vectors (whole numbers
//! without a decimal point), computed values as Python's `str(float)` (`150.0`, `1e-05`).

/// A coordinate as a vector holds it: whole numbers as integers.
pub fn json_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// Python's `repr` of a float: the shortest text that reads back the same, `.0` on whole
/// numbers, and an exponent below 1e-4 and from 1e16 on.
pub fn py_float(x: f64) -> String {
    if !x.is_finite() {
        return if x.is_nan() {
            "nan".into()
        } else if x > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        };
    }
    let a = x.abs();
    if a != 0.0 && !(1e-4..1e16).contains(&a) {
        // Rust writes `1e-5` and `1.5e16`; Python `1e-05` and `1.5e+16`.
        let text = format!("{x:e}");
        let (mantissa, exponent) = text.split_once('e').expect("`{:e}` writes an exponent");
        let (sign, digits) = match exponent.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exponent),
        };
        return format!("{mantissa}e{sign}{digits:0>2}");
    }
    if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_are_written_as_python_writes_them() {
        for (x, python) in [
            (150.0, "150.0"),
            (0.5, "0.5"),
            (-2.0, "-2.0"),
            (0.1 + 0.2, "0.30000000000000004"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1.5e16, "1.5e+16"),
            (1e22, "1e+22"),
            (123_456_789.25, "123456789.25"),
            (0.0, "0.0"),
        ] {
            assert_eq!(py_float(x), python, "{x}");
        }
    }

    #[test]
    fn coordinates_keep_whole_numbers_whole() {
        assert_eq!(json_number(100.0), "100");
        assert_eq!(json_number(100.5), "100.5");
        assert_eq!(json_number(-3.0), "-3");
    }
}
