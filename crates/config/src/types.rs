//! Small value types shared by several Istio APIs: durations, percentages, selectors,
//! string matches, port selectors and policy target references.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Declares a string enum the way Istio's protobuf JSON spells it: each variant has its
/// exact wire text; an unknown value is rejected with the list of supported ones, in the
/// wording Kubernetes uses (`Unsupported value: "BLAH": supported values: ...`).
#[macro_export]
macro_rules! string_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $($(#[$vm])* $variant),+ }

        impl $name {
            /// Every value this enum accepts, as written in YAML.
            pub const ALL: &'static [&'static str] = &[$($text),+];

            pub fn as_str(&self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(d)?;
                match text.as_str() {
                    $($text => Ok(Self::$variant),)+
                    other => Err(<D::Error as ::serde::de::Error>::custom(
                        $crate::types::unsupported_value(other, Self::ALL),
                    )),
                }
            }
        }
    };
}

/// The message for an enum value that is not one of `allowed`.
pub fn unsupported_value(got: &str, allowed: &[&str]) -> String {
    let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "Unsupported value: {got:?}: supported values: {}",
        list.join(", ")
    )
}

/// A protobuf `Duration` as Istio reads it: a Go duration string such as `2s`, `100ms`,
/// `1h30m` or `1.5s`. The text is kept so that config dumps show what the user wrote.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Duration {
    text: String,
    value: std::time::Duration,
}

impl Duration {
    pub fn as_std(&self) -> std::time::Duration {
        self.value
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn from_std(value: std::time::Duration) -> Self {
        let text = format_duration(value);
        Duration { text, value }
    }
}

impl fmt::Debug for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Duration({})", self.text)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(|value| Duration {
            text: s.to_string(),
            value,
        })
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Formats a duration the way protobuf JSON does (`1.5s`, `0.100s` → `0.1s`).
pub fn format_duration(d: std::time::Duration) -> String {
    let nanos = d.subsec_nanos();
    if nanos == 0 {
        format!("{}s", d.as_secs())
    } else {
        let frac = format!("{nanos:09}");
        format!("{}.{}s", d.as_secs(), frac.trim_end_matches('0'))
    }
}

/// Parses a Go duration (`300ms`, `1.5h`, `2h45m`, `1s500ms`). Negative durations are
/// not meaningful for any mesh setting and are rejected.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let hint = "use a number with a unit (ns, us, ms, s, m, h), e.g. 2s, 100ms or 1h30m";
    if s.is_empty() {
        return Err(format!("invalid duration \"\": {hint}"));
    }
    if s == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if s.starts_with('-') {
        return Err(format!("invalid duration {s:?}: must not be negative"));
    }
    let mut total: f64 = 0.0;
    let mut rest = s.strip_prefix('+').unwrap_or(s);
    if rest.is_empty() {
        return Err(format!("invalid duration {s:?}: {hint}"));
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        if num.is_empty() || num == "." || num.matches('.').count() > 1 {
            return Err(format!("invalid duration {s:?}: {hint}"));
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "" => return Err(format!("invalid duration {s:?}: missing unit; {hint}")),
            other => {
                return Err(format!(
                    "invalid duration {s:?}: unknown unit {other:?}; {hint}"
                ))
            }
        };
        let n: f64 = num
            .parse()
            .map_err(|_| format!("invalid duration {s:?}: {hint}"))?;
        total += n * scale;
        rest = next;
    }
    if !total.is_finite() || total > 1e15 {
        return Err(format!("invalid duration {s:?}: too large"));
    }
    Ok(std::time::Duration::from_nanos((total * 1e9).round() as u64))
}

/// `istio.networking.v1alpha3.Percent`: a percentage between 0.0 and 100.0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Percent {
    #[serde(default)]
    pub value: f64,
}

/// `networking` API `WorkloadSelector`: `workloadSelector.labels`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// `istio.type.v1beta1.WorkloadSelector`: `selector.matchLabels` (security, telemetry,
/// extensions and ProxyConfig).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

/// `istio.type.v1beta1.PolicyTargetReference` (`targetRef` / `targetRefs`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetReference {
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
}

/// `PortSelector`: `port.number`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortSelector {
    #[serde(default)]
    pub number: Option<u32>,
}

/// `StringMatch`: exactly one of `exact`, `prefix` or `regex` (RE2 syntax).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StringMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as D;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("2s").unwrap(), D::from_secs(2));
        assert_eq!(parse_duration("100ms").unwrap(), D::from_millis(100));
        assert_eq!(parse_duration("1h").unwrap(), D::from_secs(3600));
        assert_eq!(parse_duration("1h30m").unwrap(), D::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), D::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), D::ZERO);
        for bad in ["", "apple", "10", "1x", "-1s", "1..2s", "s"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
        assert_eq!(format_duration(D::from_millis(100)), "0.1s");
        assert_eq!(format_duration(D::from_secs(5)), "5s");
    }

    string_enum! {
        enum Mode { Strict = "STRICT", Permissive = "PERMISSIVE" }
    }

    #[test]
    fn string_enums_report_supported_values() {
        let ok: Mode = serde_json::from_str("\"STRICT\"").unwrap();
        assert_eq!(ok, Mode::Strict);
        let err = serde_json::from_str::<Mode>("\"BLAH\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(
                "Unsupported value: \"BLAH\": supported values: \"STRICT\", \"PERMISSIVE\""
            ),
            "{err}"
        );
    }
}
