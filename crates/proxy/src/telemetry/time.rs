//! strftime for `%START_TIME(...)%`, in UTC as Envoy renders it, with Envoy's
//! sub-second extensions (`%f`, `%3f`, `%E3S`).

use std::fmt::Write;
use std::time::{SystemTime, UNIX_EPOCH};

/// Envoy's default `%START_TIME%` format: `2023-05-02T01:45:04.154Z`.
pub const DEFAULT_START_TIME: &str = "%Y-%m-%dT%H:%M:%E3SZ";

const DAYS: [&str; 7] = [
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Days since 1970-01-01 → (year, month 1..=12, day 1..=31) in the proleptic
/// Gregorian calendar (Howard Hinnant's civil_from_days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn day_of_year(y: i64, m: u32, d: u32) -> u32 {
    const CUM: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
    CUM[(m - 1) as usize] + d + u32::from(m > 2 && is_leap(y))
}

/// Checks a strftime pattern once, at config time, so a bad one is NACKed.
pub fn validate(fmt: &str) -> Result<(), String> {
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            continue;
        }
        let mut spec = String::new();
        while let Some(&d) = chars.peek() {
            if d.is_ascii_digit() || (d == 'E' && spec.is_empty()) {
                spec.push(d);
                chars.next();
            } else {
                break;
            }
        }
        match chars.next() {
            Some(
                'Y' | 'y' | 'm' | 'd' | 'e' | 'H' | 'I' | 'M' | 'S' | 'p' | 'j' | 'a' | 'A' | 'b'
                | 'B' | 'h' | 'T' | 'F' | 'D' | 'R' | 'z' | 'Z' | 's' | 'f' | '%' | 'n' | 't' | 'u'
                | 'w' | 'C',
            ) => {}
            other => {
                return Err(format!(
                    "unsupported START_TIME conversion %{spec}{} in {fmt:?}",
                    other.map(String::from).unwrap_or_default()
                ))
            }
        }
    }
    Ok(())
}

/// Renders `t` (UTC) with a strftime pattern already accepted by [`validate`].
pub fn format(t: SystemTime, fmt: &str) -> String {
    let (secs, nanos) = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let n = d.subsec_nanos();
            if n == 0 {
                (-(d.as_secs() as i64), 0)
            } else {
                (-(d.as_secs() as i64) - 1, 1_000_000_000 - n)
            }
        }
    };
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s) = (sod / 3600, (sod / 60) % 60, sod % 60);
    let wd = days.rem_euclid(7) as usize;
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut e = false;
        let mut width = None;
        if chars.peek() == Some(&'E') {
            e = true;
            chars.next();
        }
        if let Some(digit) = chars.peek().and_then(|c| c.to_digit(10)) {
            width = Some(digit as usize);
            chars.next();
        }
        let frac = |n: usize| {
            let n = n.clamp(1, 9);
            let s = format!("{nanos:09}");
            s[..n].to_string()
        };
        let _ = match chars.next() {
            Some('Y') => write!(out, "{y:04}"),
            Some('C') => write!(out, "{:02}", y / 100),
            Some('y') => write!(out, "{:02}", y.rem_euclid(100)),
            Some('m') => write!(out, "{mo:02}"),
            Some('d') => write!(out, "{d:02}"),
            Some('e') => write!(out, "{d:>2}"),
            Some('H') => write!(out, "{h:02}"),
            Some('I') => write!(out, "{:02}", if h % 12 == 0 { 12 } else { h % 12 }),
            Some('p') => write!(out, "{}", if h < 12 { "AM" } else { "PM" }),
            Some('M') => write!(out, "{mi:02}"),
            Some('S') if e => match width {
                Some(w) if w > 0 => write!(out, "{s:02}.{}", frac(w)),
                _ => write!(out, "{s:02}"),
            },
            Some('S') => write!(out, "{s:02}"),
            Some('f') => write!(out, "{}", frac(width.unwrap_or(9))),
            Some('s') => write!(out, "{secs}"),
            Some('j') => write!(out, "{:03}", day_of_year(y, mo, d)),
            Some('a') => write!(out, "{}", &DAYS[wd][..3]),
            Some('A') => write!(out, "{}", DAYS[wd]),
            Some('b' | 'h') => write!(out, "{}", &MONTHS[(mo - 1) as usize][..3]),
            Some('B') => write!(out, "{}", MONTHS[(mo - 1) as usize]),
            Some('u') => write!(out, "{}", (days + 3).rem_euclid(7) + 1),
            Some('w') => write!(out, "{}", (days + 4).rem_euclid(7)),
            Some('T') => write!(out, "{h:02}:{mi:02}:{s:02}"),
            Some('R') => write!(out, "{h:02}:{mi:02}"),
            Some('F') => write!(out, "{y:04}-{mo:02}-{d:02}"),
            Some('D') => write!(out, "{mo:02}/{d:02}/{:02}", y.rem_euclid(100)),
            Some('z') => write!(out, "+0000"),
            Some('Z') => write!(out, "UTC"),
            Some('n') => writeln!(out),
            Some('t') => write!(out, "\t"),
            Some('%') => write!(out, "%"),
            Some(other) => write!(out, "%{other}"),
            None => write!(out, "%"),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, millis: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    }

    #[test]
    fn default_matches_envoy_shape() {
        // 2023-05-02T01:45:04.154Z, the seed's first access-log line.
        let t = at(1_682_991_904, 154);
        assert_eq!(format(t, DEFAULT_START_TIME), "2023-05-02T01:45:04.154Z");
    }

    #[test]
    fn conversions() {
        let t = at(951_782_400 + 3600 * 13 + 61, 7); // 2000-02-29 13:01:01.007 (Tuesday)
        assert_eq!(format(t, "%F %T"), "2000-02-29 13:01:01");
        assert_eq!(format(t, "%j %a %A %b %B"), "060 Tue Tuesday Feb February");
        assert_eq!(format(t, "%I%p %z %Z %%"), "01PM +0000 UTC %");
        assert_eq!(
            format(t, "%s.%3f|%f|%E6S"),
            "951829261.007|007000000|01.007000"
        );
        assert_eq!(format(t, "%D %R %y %e %u %w"), "02/29/00 13:01 00 29 2 2");
        assert_eq!(format(at(0, 0), "%Y-%m-%d %A"), "1970-01-01 Thursday");
    }

    #[test]
    fn validate_rejects_unknown_conversions() {
        assert!(validate("%Y-%m-%dT%H:%M:%E3SZ").is_ok());
        assert!(validate("%Q").is_err());
        assert!(validate("trailing %").is_err());
    }
}
