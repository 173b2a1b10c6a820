//! Envoy's response flags and their short names (`%RESPONSE_FLAGS%`, the
//! `response_flags` metric label).

use std::fmt;

/// Envoy's response flags (`%RESPONSE_FLAGS%`): a bit set (the low 32 bits) and the
/// order the first [`ORDERED`] flags were set in (the high bits). Envoy joins several
/// flags in the order they were set (1.40 logs `URX,UF` for a connect failure after
/// retries), so two values with the same flags set in another order differ, and
/// render differently, as they do in Envoy's logs and `response_flags` labels. The
/// short names are Envoy's (`UH`, `UF`, `UO`, `NR`, `URX`, `UC`, `UT`, `DC`, `FI`,
/// `DI`, `LR`, `RL`, `UAEX`, `RLSE`, `IH`, `SI`, `DPE`, `UPE`, `UMSDR`, `OM`, `DF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ResponseFlags(pub u64);

/// How many flags remember the order they were set in (5 bits each above bit 32); any
/// further ones follow in Envoy's enum order.
const ORDERED: u32 = 6;

impl ResponseFlags {
    /// Failed local health check.
    pub const LH: u32 = 1 << 0;
    /// No healthy upstream hosts (`UH`).
    pub const UH: u32 = 1 << 1;
    /// Upstream request timeout (`UT`).
    pub const UT: u32 = 1 << 2;
    /// Local reset (`LR`).
    pub const LR: u32 = 1 << 3;
    /// Upstream remote reset (`UR`).
    pub const UR: u32 = 1 << 4;
    /// Upstream connection failure (`UF`).
    pub const UF: u32 = 1 << 5;
    /// Upstream connection termination (`UC`).
    pub const UC: u32 = 1 << 6;
    /// Upstream overflow / circuit breaking (`UO`).
    pub const UO: u32 = 1 << 7;
    /// No route configured (`NR`).
    pub const NR: u32 = 1 << 8;
    /// Delay injected (`DI`).
    pub const DI: u32 = 1 << 9;
    /// Fault injected (`FI`).
    pub const FI: u32 = 1 << 10;
    /// Rate limited (`RL`).
    pub const RL: u32 = 1 << 11;
    /// Unauthorized external service (`UAEX`).
    pub const UAEX: u32 = 1 << 12;
    /// Rate limit service error (`RLSE`).
    pub const RLSE: u32 = 1 << 13;
    /// Downstream connection termination (`DC`).
    pub const DC: u32 = 1 << 14;
    /// Upstream retry limit exceeded (`URX`).
    pub const URX: u32 = 1 << 15;
    /// Stream idle timeout (`SI`).
    pub const SI: u32 = 1 << 16;
    /// Invalid Envoy request headers (`IH`).
    pub const IH: u32 = 1 << 17;
    /// Downstream protocol error (`DPE`).
    pub const DPE: u32 = 1 << 18;
    /// Upstream max stream duration reached (`UMSDR`).
    pub const UMSDR: u32 = 1 << 19;
    /// Upstream protocol error (`UPE`).
    pub const UPE: u32 = 1 << 20;
    /// No cluster found (`NC`).
    pub const NC: u32 = 1 << 21;
    /// Overload manager (`OM`).
    pub const OM: u32 = 1 << 22;
    /// DNS resolution failed (`DF`).
    pub const DF: u32 = 1 << 23;
    /// Response served from the cache filter (`RFCF`).
    pub const RFCF: u32 = 1 << 24;
    /// No filter config found (`NFCF`).
    pub const NFCF: u32 = 1 << 25;
    /// Max connection / stream duration reached (`DT`).
    pub const DT: u32 = 1 << 26;
    /// Dropped by load-balancer drop overload (`DO`).
    pub const DO: u32 = 1 << 27;
    /// Downstream remote reset (`DR`).
    pub const DR: u32 = 1 << 28;

    /// The flags in `bits`, as if set one by one in Envoy's enum order.
    pub fn from_bits(bits: u32) -> ResponseFlags {
        let mut f = ResponseFlags::default();
        for (bit, _, _) in ORDER {
            if bits & bit != 0 {
                f.set(*bit);
            }
        }
        f
    }

    /// Adds a flag (one bit), after those already set.
    pub fn set(&mut self, flag: u32) {
        if self.has(flag) {
            return;
        }
        self.0 |= u64::from(flag);
        let Some(index) = ORDER.iter().position(|(bit, _, _)| *bit == flag) else {
            return;
        };
        let slot = (0..ORDERED).find(|k| (self.0 >> (32 + 5 * k)) & 0x1f == 0);
        if let Some(k) = slot {
            self.0 |= (index as u64 + 1) << (32 + 5 * k);
        }
    }

    /// The set flags, without their order.
    pub fn bits(self) -> u32 {
        self.0 as u32
    }

    /// Whether `flag` is set.
    pub fn has(self, flag: u32) -> bool {
        self.bits() & flag != 0
    }

    /// No flag at all.
    pub fn is_empty(self) -> bool {
        self.bits() == 0
    }

    /// The set flags' `ORDER` entries as Envoy joins them: in the order they were set.
    fn entries(self) -> impl Iterator<Item = &'static (u32, &'static str, &'static str)> {
        let recorded = (0..ORDERED)
            .map(move |k| ((self.0 >> (32 + 5 * k)) & 0x1f) as usize)
            .take_while(|i| *i != 0)
            .filter_map(|i| ORDER.get(i - 1));
        let mut seen = 0u32;
        for (bit, _, _) in recorded.clone() {
            seen |= bit;
        }
        let rest = ORDER
            .iter()
            .filter(move |(bit, _, _)| self.bits() & bit != 0 && seen & bit == 0);
        recorded.chain(rest)
    }

    /// The set flags' short names, in the order Envoy joins them.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        self.entries().map(|(_, short, _)| *short)
    }

    /// The set flags' long names (`%RESPONSE_FLAGS_LONG%`), in the order Envoy joins them.
    pub fn long_names(self) -> impl Iterator<Item = &'static str> {
        self.entries().map(|(_, _, long)| *long)
    }

    /// Parses Envoy's short rendering (`-`, `UH`, `UF,URX`); `None` on an unknown name.
    pub fn from_short(s: &str) -> Option<ResponseFlags> {
        if s == "-" || s.is_empty() {
            return Some(ResponseFlags::default());
        }
        s.split(',')
            .try_fold(ResponseFlags::default(), |mut acc, name| {
                let (bit, _, _) = ORDER.iter().find(|(_, short, _)| *short == name)?;
                acc.set(*bit);
                Some(acc)
            })
    }

    /// Envoy's rendering of the long names: concatenated, `-` when empty.
    pub fn to_long_string(self) -> String {
        if self.is_empty() {
            return "-".to_string();
        }
        self.long_names().collect::<Vec<_>>().join(",")
    }
}

/// Envoy's flags in its `CoreResponseFlag` enum order: how flags whose setting order is
/// not known are joined; the bit values above are ours and need not follow it.
const ORDER: &[(u32, &str, &str)] = &[
    (ResponseFlags::LH, "LH", "FailedLocalHealthCheck"),
    (ResponseFlags::UH, "UH", "NoHealthyUpstream"),
    (ResponseFlags::UT, "UT", "UpstreamRequestTimeout"),
    (ResponseFlags::LR, "LR", "LocalReset"),
    (ResponseFlags::UR, "UR", "UpstreamRemoteReset"),
    (ResponseFlags::UF, "UF", "UpstreamConnectionFailure"),
    (ResponseFlags::UC, "UC", "UpstreamConnectionTermination"),
    (ResponseFlags::UO, "UO", "UpstreamOverflow"),
    (ResponseFlags::NR, "NR", "NoRouteFound"),
    (ResponseFlags::DI, "DI", "DelayInjected"),
    (ResponseFlags::FI, "FI", "FaultInjected"),
    (ResponseFlags::RL, "RL", "RateLimited"),
    (ResponseFlags::UAEX, "UAEX", "UnauthorizedExternalService"),
    (ResponseFlags::RLSE, "RLSE", "RateLimitServiceError"),
    (ResponseFlags::DC, "DC", "DownstreamConnectionTermination"),
    (ResponseFlags::URX, "URX", "UpstreamRetryLimitExceeded"),
    (ResponseFlags::SI, "SI", "StreamIdleTimeout"),
    (ResponseFlags::IH, "IH", "InvalidEnvoyRequestHeaders"),
    (ResponseFlags::DPE, "DPE", "DownstreamProtocolError"),
    (
        ResponseFlags::UMSDR,
        "UMSDR",
        "UpstreamMaxStreamDurationReached",
    ),
    (ResponseFlags::RFCF, "RFCF", "ResponseFromCacheFilter"),
    (ResponseFlags::NFCF, "NFCF", "NoFilterConfigFound"),
    (ResponseFlags::DT, "DT", "DurationTimeout"),
    (ResponseFlags::UPE, "UPE", "UpstreamProtocolError"),
    (ResponseFlags::NC, "NC", "NoClusterFound"),
    (ResponseFlags::OM, "OM", "OverloadManagerTerminated"),
    (ResponseFlags::DF, "DF", "DnsResolutionFailed"),
    (ResponseFlags::DO, "DO", "DropOverload"),
    (ResponseFlags::DR, "DR", "DownstreamRemoteReset"),
];

impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("-");
        }
        for (i, name) in self.names().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(name)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::ResponseFlags as F;

    #[test]
    fn none_is_dash() {
        assert_eq!(F::default().to_string(), "-");
        assert_eq!(F::default().to_long_string(), "-");
    }

    #[test]
    fn single_flags_use_envoy_short_names() {
        for (bit, name) in [
            (F::UH, "UH"),
            (F::NR, "NR"),
            (F::UF, "UF"),
            (F::UO, "UO"),
            (F::URX, "URX"),
            (F::UC, "UC"),
            (F::UT, "UT"),
            (F::DC, "DC"),
            (F::NC, "NC"),
            (F::UAEX, "UAEX"),
            (F::RL, "RL"),
            (F::DI, "DI"),
            (F::FI, "FI"),
            (F::DPE, "DPE"),
            (F::UPE, "UPE"),
            (F::UMSDR, "UMSDR"),
            (F::OM, "OM"),
            (F::DF, "DF"),
            (F::DR, "DR"),
        ] {
            assert_eq!(F::from_bits(bit).to_string(), name);
        }
    }

    #[test]
    fn several_flags_join_in_the_order_they_were_set() {
        // Envoy 1.40's log of a connect failure after retries: `URX,UF`.
        let mut f = F::default();
        f.set(F::URX);
        f.set(F::UF);
        assert_eq!(f.to_string(), "URX,UF");
        assert_eq!(
            f.to_long_string(),
            "UpstreamRetryLimitExceeded,UpstreamConnectionFailure"
        );
        // Setting a flag twice keeps its first place.
        f.set(F::URX);
        assert_eq!(f.to_string(), "URX,UF");
        let mut other = F::default();
        other.set(F::UF);
        other.set(F::URX);
        assert_eq!(other.to_string(), "UF,URX");
        assert_ne!(f, other, "the order is part of the value (a metric label)");
        assert_eq!(f.bits(), other.bits());
        // Without a known order (from bits), Envoy's enum order: UPE after DT even
        // though its bit is lower.
        assert_eq!(
            F::from_bits(F::DT | F::UPE | F::DI).to_string(),
            "DI,DT,UPE"
        );
        // Past the remembered ones, flags follow in enum order.
        let mut many = F::default();
        for bit in [F::NR, F::UT, F::DI, F::URX, F::UF, F::UC, F::LH, F::UH] {
            many.set(bit);
        }
        assert_eq!(many.to_string(), "NR,UT,DI,URX,UF,UC,LH,UH");
    }

    #[test]
    fn short_names_parse_back() {
        for text in ["URX,UF", "UF,URX", "DI,URX,UT", "UH"] {
            let f = F::from_short(text).unwrap();
            assert_eq!(f.to_string(), text);
        }
        assert_eq!(F::from_short("-"), Some(F::default()));
        assert_eq!(F::from_short("UF,BOGUS"), None);
    }

    #[test]
    fn every_bit_has_exactly_one_name() {
        let all = super::ORDER.iter().fold(0, |acc, (b, _, _)| acc | b);
        assert_eq!(F::from_bits(all).names().count(), super::ORDER.len());
        let unique: std::collections::BTreeSet<_> = F::from_bits(all).names().collect();
        assert_eq!(unique.len(), super::ORDER.len());
    }
}
