//! Canonical JSON: the one text form of a JSON value that the hash chain covers.
//!
//! The form is exactly what Python's standard library prints with
//! `json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`, so an auditor
//! can recompute every hash with nothing but `json` and `hashlib`:
//! - objects with keys sorted by Unicode code point, no whitespace anywhere;
//! - strings as UTF-8, escaping only `"`, `\`, and control characters below U+0020
//!   (`\b \f \n \r \t` in short form, the rest as `\u00xx` with lowercase hex);
//! - integers in plain decimal;
//! - floats as Python's `repr`: the shortest digits that round-trip, in positional notation
//!   with at least one fractional digit (`2.0`, `0.0001`) when the decimal exponent is in
//!   `-4 ..= 15`, otherwise as `d.ddde±XX` with at least two exponent digits (`1e+16`, `1.5e-05`).

use serde_json::Value;

/// Writes `value` in canonical form.
pub fn to_string(value: &Value) -> String {
    let mut out = String::with_capacity(128);
    write_value(&mut out, value);
    out
}

/// Parses JSON text and returns its canonical form.
pub fn normalize(text: &str) -> Result<String, serde_json::Error> {
    let value: Value = serde_json::from_str(text)?;
    Ok(to_string(&value))
}

/// Appends `s` as a canonical JSON string literal.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{b:04x}"));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                // serde_json never holds a non-finite float, so this is always a finite f64.
                write_float(out, n.as_f64().unwrap_or(0.0));
            }
        }
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's map is a BTreeMap without the `preserve_order` feature: keys come
            // sorted by their UTF-8 bytes, which is the same order as by code point.
            out.push('{');
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, key);
                out.push(':');
                write_value(out, item);
            }
            out.push('}');
        }
    }
}

/// Python's `repr(float)`, built from Rust's shortest round-trip digits.
fn write_float(out: &mut String, x: f64) {
    if x == 0.0 {
        out.push_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    // `{:e}` gives the shortest digits that round-trip, as `-1.2345e-7`.
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if negative {
        out.push('-');
    }
    // Position of the decimal point counted from the first digit, as CPython's `decpt`.
    let decpt = exponent + 1;
    let n = digits.len() as i32;
    if decpt > -4 && decpt <= 16 {
        if decpt <= 0 {
            out.push_str("0.");
            out.push_str(&"0".repeat((-decpt) as usize));
            out.push_str(&digits);
        } else if decpt < n {
            out.push_str(&digits[..decpt as usize]);
            out.push('.');
            out.push_str(&digits[decpt as usize..]);
        } else {
            out.push_str(&digits);
            out.push_str(&"0".repeat((decpt - n) as usize));
            out.push_str(".0");
        }
    } else {
        out.push_str(&digits[..1]);
        if n > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(&format!("e{sign}{:02}", exponent.abs()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn float(x: f64) -> String {
        to_string(&json!(x))
    }

    #[test]
    fn floats_print_as_python_repr() {
        // Expected strings are what CPython 3 prints for repr(x).
        let cases = [
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (0.1, "0.1"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456.789, "123456.789"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.2345e16, "1.2345e+16"),
            (1e300, "1e+300"),
            (5e-324, "5e-324"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
        ];
        for (x, want) in cases {
            assert_eq!(float(x), want, "repr of {x:e}");
        }
    }

    #[test]
    fn objects_are_sorted_and_compact() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, 2.0, "x"], "a": {"z": null, "y": true} }"#).unwrap();
        assert_eq!(
            to_string(&v),
            r#"{"a":{"y":true,"z":null},"b":[1,2.0,"x"]}"#
        );
    }

    #[test]
    fn strings_escape_only_what_python_escapes() {
        let v = json!("q\"b\\n\n t\t\u{1} é \u{7f} \u{2028} ☃");
        assert_eq!(
            to_string(&v),
            "\"q\\\"b\\\\n\\n t\\t\\u0001 é \u{7f} \u{2028} ☃\""
        );
    }

    #[test]
    fn normalizing_is_idempotent() {
        let text = r#"{"x": 1e20, "y": -3, "z": 18446744073709551615, "w": 0.30000000000000004}"#;
        let once = normalize(text).unwrap();
        assert_eq!(
            once,
            r#"{"w":0.30000000000000004,"x":1e+20,"y":-3,"z":18446744073709551615}"#
        );
        assert_eq!(normalize(&once).unwrap(), once);
    }
}
