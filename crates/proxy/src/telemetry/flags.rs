//! Envoy's response flags and their short names (`%RESPONSE_FLAGS%`, the
//! `response_flags` metric label).

use std::fmt;

/// Envoy's response flags (`%RESPONSE_FLAGS%`), as a bit set. The short names are
/// Envoy's (`UH`, `UF`, `UO`, `NR`, `URX`, `UC`, `UT`, `DC`, `FI`, `DI`, `LR`, `RL`,
/// `UAEX`, `RLSE`, `IH`, `SI`, `DPE`, `UPE`, `UMSDR`, `OM`, `DF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct ResponseFlags(pub u32);

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

    /// Adds a flag.
    pub fn set(&mut self, flag: u32) {
        self.0 |= flag;
    }

    /// Whether `flag` is set.
    pub fn has(self, flag: u32) -> bool {
        self.0 & flag != 0
    }

    /// No flag at all.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The set flags' short names in Envoy's order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        ORDER
            .iter()
            .filter(move |(bit, _, _)| self.0 & bit != 0)
            .map(|(_, short, _)| *short)
    }

    /// The set flags' long names (`%RESPONSE_FLAGS_LONG%`) in Envoy's order.
    pub fn long_names(self) -> impl Iterator<Item = &'static str> {
        ORDER
            .iter()
            .filter(move |(bit, _, _)| self.0 & bit != 0)
            .map(|(_, _, long)| *long)
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

/// Envoy's flag order (its `CoreResponseFlag` enum order), which decides how several
/// flags are joined; the bit values above are ours and need not follow it.
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
            assert_eq!(F(bit).to_string(), name);
        }
    }

    #[test]
    fn several_flags_join_in_envoy_order() {
        let mut f = F::default();
        f.set(F::URX);
        f.set(F::UF);
        assert_eq!(f.to_string(), "UF,URX");
        // UPE sits after DT/RFCF in Envoy's order even though its bit is lower.
        let mut g = F(F::DT);
        g.set(F::UPE);
        g.set(F::DI);
        assert_eq!(g.to_string(), "DI,DT,UPE");
        assert_eq!(
            F(F::UF | F::URX).to_long_string(),
            "UpstreamConnectionFailure,UpstreamRetryLimitExceeded"
        );
    }

    #[test]
    fn short_names_parse_back() {
        let f = F(F::UF | F::URX | F::DT);
        assert_eq!(F::from_short(&f.to_string()), Some(f));
        assert_eq!(F::from_short("-"), Some(F::default()));
        assert_eq!(F::from_short("UF,BOGUS"), None);
    }

    #[test]
    fn every_bit_has_exactly_one_name() {
        let all = super::ORDER.iter().fold(0, |acc, (b, _, _)| acc | b);
        assert_eq!(F(all).names().count(), super::ORDER.len());
        let unique: std::collections::BTreeSet<_> = F(all).names().collect();
        assert_eq!(unique.len(), super::ORDER.len());
    }
}
