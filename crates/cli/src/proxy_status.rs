//! `ironmesh proxy-status`: which proxies are connected and whether each has accepted
//! the latest config of every xDS type (istioctl's `proxy-status`).

use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use serde_json::Value;

use crate::discovery_client::{DiscoveryClient, SyncStatus, TypeStatus, DEFAULT_DISCOVERY};
use crate::proxy_config::table::Table;

#[derive(clap::Args)]
pub struct Args {
    /// The control plane's debug address (ironmesh-discovery's HTTP port).
    #[arg(long, env = "IRONMESH_DISCOVERY", default_value = DEFAULT_DISCOVERY)]
    discovery: String,
    /// Show the per-type sync state (CDS LDS EDS RDS ECDS columns).
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Output format: `table` for people, `json` for the raw /debug/syncz answer.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Table)]
    output: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    #[value(alias = "short")]
    Table,
    Json,
}

/// The types the classic layout shows, in istioctl's column order.
const VERBOSE_TYPES: [&str; 5] = ["CDS", "LDS", "EDS", "RDS", "ECDS"];

pub fn run(args: Args) -> ExitCode {
    let client = DiscoveryClient::new(&args.discovery);
    let (mut proxies, raw) = match client.syncz() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match args.output {
        Format::Json => {
            let mut raw = raw;
            raw.sort_by_cached_key(raw_name);
            println!(
                "{}",
                serde_json::to_string_pretty(&Value::Array(raw)).expect("json")
            );
        }
        Format::Table => {
            proxies.sort_by(|a, b| a.display_name().cmp(b.display_name()));
            let now = unix_now();
            print!("{}", render(&proxies, args.verbose, now));
            if proxies.is_empty() {
                eprintln!(
                    "note: no proxies are connected to the control plane at {}",
                    client.base()
                );
            }
            for line in out_of_sync_notes(&proxies, now) {
                eprintln!("{line}");
            }
        }
    }
    ExitCode::SUCCESS
}

fn raw_name(v: &Value) -> String {
    let proxy = v.get("proxy").and_then(Value::as_str).unwrap_or("");
    if proxy.is_empty() {
        v.get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    } else {
        proxy.to_string()
    }
}

/// The table, header included. `now` is seconds since the Unix epoch, passed in so the
/// ages are testable.
pub fn render(proxies: &[SyncStatus], verbose: bool, now: i64) -> String {
    let mut t = Table::new(5);
    if verbose {
        t.row([
            "NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION",
        ]);
        for p in proxies {
            let mut row = vec![p.display_name().to_string(), p.cluster_id.clone()];
            for ty in VERBOSE_TYPES {
                row.push(cell(p.type_status(ty), now));
            }
            row.push(p.discovery_id.clone());
            row.push(p.istiod_version.clone());
            t.row(row);
        }
    } else {
        t.row(["NAME", "CLUSTER", "ISTIOD", "VERSION", "SUBSCRIBED TYPES"]);
        for p in proxies {
            t.row([
                p.display_name().to_string(),
                p.cluster_id.clone(),
                p.discovery_id.clone(),
                p.istiod_version.clone(),
                subscribed_types(p),
            ]);
        }
    }
    t.render()
}

/// `4 (CDS,LDS,EDS,RDS)`: the count and names of the subscribed types, the well-known
/// ones in istioctl's order and any others after them by name.
fn subscribed_types(p: &SyncStatus) -> String {
    let mut names: Vec<&str> = p
        .types
        .iter()
        .filter(|(_, s)| s.subscribed)
        .map(|(k, _)| crate::discovery_client::short_type_name(k))
        .collect();
    let rank = |n: &str| VERBOSE_TYPES.iter().position(|t| *t == n).unwrap_or(99);
    names.sort_by(|a, b| rank(a).cmp(&rank(b)).then(a.cmp(b)));
    names.dedup();
    format!("{} ({})", names.len(), names.join(","))
}

/// The sync state of one type, as istioctl names it.
#[derive(Debug, PartialEq, Eq)]
pub enum State {
    /// Never subscribed: the proxy did not ask for this type.
    Ignored,
    /// Subscribed, but nothing has been sent yet.
    NotSent,
    /// The last version sent is the last version acknowledged.
    Synced,
    /// Sent but not (yet) acknowledged.
    Stale,
    /// The version sent was rejected by the proxy.
    Nacked,
}

pub fn state(s: Option<&TypeStatus>) -> State {
    let Some(s) = s.filter(|s| s.subscribed) else {
        return State::Ignored;
    };
    let sent = s.sent_version.as_deref().unwrap_or("");
    let acked = s.acked_version.as_deref().unwrap_or("");
    if sent.is_empty() {
        return State::NotSent;
    }
    if sent == acked {
        return State::Synced;
    }
    // A NACK recorded for an older version was superseded by what was sent since.
    match &s.nack {
        Some(n) if n.version.is_empty() || n.version == sent => State::Nacked,
        _ => State::Stale,
    }
}

fn cell(s: Option<&TypeStatus>, now: i64) -> String {
    match state(s) {
        State::Ignored => "IGNORED".into(),
        State::NotSent => "NOT SENT".into(),
        State::Stale => "STALE".into(),
        State::Nacked => "STALE (NACK)".into(),
        State::Synced => {
            match s
                .and_then(|s| s.acked_at.as_deref())
                .and_then(parse_rfc3339)
            {
                Some(at) => format!("SYNCED ({})", age(now - at)),
                None => "SYNCED".into(),
            }
        }
    }
}

/// One line per proxy and type that is not in sync, for stderr: the table only has
/// room for a word, the operator needs the rejected version and Envoy's message.
fn out_of_sync_notes(proxies: &[SyncStatus], now: i64) -> Vec<String> {
    let mut out = Vec::new();
    for p in proxies {
        for (key, s) in &p.types {
            let ty = crate::discovery_client::short_type_name(key);
            let sent = s.sent_version.as_deref().unwrap_or("");
            let acked = s.acked_version.as_deref().unwrap_or("");
            match state(Some(s)) {
                State::Nacked => {
                    let msg = s.nack.as_ref().map(|n| n.message.as_str()).unwrap_or("");
                    out.push(format!(
                        "warning: {} rejected {ty} version {sent}: {msg}",
                        p.display_name()
                    ));
                }
                State::Stale => {
                    let when = s
                        .sent_at
                        .as_deref()
                        .and_then(parse_rfc3339)
                        .map(|at| format!(", sent {} ago", age(now - at)))
                        .unwrap_or_default();
                    out.push(format!(
                        "note: {} has not acknowledged {ty} version {sent}{when} (last acknowledged: {})",
                        p.display_name(),
                        if acked.is_empty() { "none" } else { acked }
                    ))
                }
                _ => {}
            }
        }
    }
    out
}

/// `5s`, `3m`, `2h`, `4d`: the coarsest unit that is at least one.
pub fn age(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 60 {
        format!("{secs}s")
    } else if secs < 3600 {
        format!("{}m", secs / 60)
    } else if secs < 86400 {
        format!("{}h", secs / 3600)
    } else {
        format!("{}d", secs / 86400)
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since the Unix epoch of an RFC 3339 timestamp (`2024-05-01T10:00:00Z`,
/// fractions and `±hh:mm` offsets allowed). `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.trim();
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let tz = &rest[1..];
            if tz.len() != 5 || tz.as_bytes()[2] != b':' {
                return None;
            }
            let h: i64 = tz[0..2].parse().ok()?;
            let m: i64 = tz[3..5].parse().ok()?;
            sign * (h * 3600 + m * 60)
        }
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86400 + hour * 3600 + min * 60 + sec - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery_client::Nack;

    fn ts(sent: Option<&str>, acked: Option<&str>) -> TypeStatus {
        TypeStatus {
            subscribed: true,
            sent_version: sent.map(str::to_string),
            acked_version: acked.map(str::to_string),
            ..TypeStatus::default()
        }
    }

    #[test]
    fn states_follow_istioctl() {
        assert_eq!(state(None), State::Ignored);
        let mut unsubscribed = ts(Some("1"), Some("1"));
        unsubscribed.subscribed = false;
        assert_eq!(state(Some(&unsubscribed)), State::Ignored);
        assert_eq!(state(Some(&ts(None, None))), State::NotSent);
        assert_eq!(state(Some(&ts(Some(""), None))), State::NotSent);
        assert_eq!(state(Some(&ts(Some("5"), Some("5")))), State::Synced);
        assert_eq!(state(Some(&ts(Some("5"), Some("4")))), State::Stale);
        assert_eq!(state(Some(&ts(Some("5"), None))), State::Stale);
        let mut nacked = ts(Some("5"), Some("4"));
        nacked.nack = Some(Nack {
            version: "5".into(),
            message: "bad".into(),
        });
        assert_eq!(state(Some(&nacked)), State::Nacked);
        // An old NACK does not make a later, unacknowledged version a rejection.
        nacked.sent_version = Some("6".into());
        assert_eq!(state(Some(&nacked)), State::Stale);
        // Nor does it taint a version the proxy accepted since.
        nacked.acked_version = Some("6".into());
        assert_eq!(state(Some(&nacked)), State::Synced);
    }

    #[test]
    fn ages_use_the_coarsest_unit() {
        assert_eq!(age(0), "0s");
        assert_eq!(age(5), "5s");
        assert_eq!(age(59), "59s");
        assert_eq!(age(60), "1m");
        assert_eq!(age(3 * 60 + 59), "3m");
        assert_eq!(age(2 * 3600 + 5), "2h");
        assert_eq!(age(4 * 86400 + 7), "4d");
        assert_eq!(age(-3), "0s");
    }

    #[test]
    fn rfc3339_parses_zulu_fractions_and_offsets() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-05-01T10:00:00Z"), Some(1_714_557_600));
        assert_eq!(
            parse_rfc3339("2024-05-01T10:00:00.123456789Z"),
            Some(1_714_557_600)
        );
        assert_eq!(
            parse_rfc3339("2024-05-01T12:00:00+02:00"),
            Some(1_714_557_600)
        );
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(parse_rfc3339("yesterday"), None);
        assert_eq!(parse_rfc3339("2024-13-01T10:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-05-01T10:00:00"), None);
    }

    fn proxy(name: &str, types: &[(&str, TypeStatus)]) -> SyncStatus {
        SyncStatus {
            id: format!("sidecar~10.0.0.1~{name}~default.svc.cluster.local"),
            proxy: name.into(),
            cluster_id: "Kubernetes".into(),
            istiod_version: "ironmesh-0.1.0".into(),
            discovery_id: "discovery-0".into(),
            types: types
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        }
    }

    #[test]
    fn tables_in_both_layouts() {
        let now = 1_714_557_600;
        let mut synced = ts(Some("5"), Some("5"));
        synced.acked_at = Some("2024-05-01T09:57:00Z".into());
        let p = proxy(
            "a.default",
            &[
                ("CDS", synced.clone()),
                ("LDS", ts(Some("5"), Some("4"))),
                ("EDS", ts(None, None)),
            ],
        );
        let short = render(std::slice::from_ref(&p), false, now);
        assert_eq!(
            short,
            "NAME          CLUSTER        ISTIOD          VERSION            SUBSCRIBED TYPES\n\
             a.default     Kubernetes     discovery-0     ironmesh-0.1.0     3 (CDS,LDS,EDS)\n"
        );
        let long = render(&[p], true, now);
        let lines: Vec<Vec<&str>> = long
            .lines()
            .map(|l| {
                l.split("  ")
                    .filter(|c| !c.is_empty())
                    .map(str::trim)
                    .collect()
            })
            .collect();
        assert_eq!(
            lines[0],
            ["NAME", "CLUSTER", "CDS", "LDS", "EDS", "RDS", "ECDS", "ISTIOD", "VERSION"]
        );
        assert_eq!(
            lines[1],
            [
                "a.default",
                "Kubernetes",
                "SYNCED (3m)",
                "STALE",
                "NOT SENT",
                "IGNORED",
                "IGNORED",
                "discovery-0",
                "ironmesh-0.1.0"
            ]
        );
    }
}
