//! `/logging`: the log level, changed at runtime through a `tracing_subscriber` reload
//! handle.

use std::sync::Mutex;

use tracing_subscriber::{reload, EnvFilter, Registry};

type Setter = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Changes the process's log filter. Built by [`reloadable_filter`] (or around any
/// setter, for tests).
pub struct LogControl {
    set: Setter,
    current: Mutex<String>,
}

impl LogControl {
    /// A control that applies filter directives with `set`, starting from `initial`.
    pub fn new(initial: &str, set: Setter) -> Self {
        LogControl {
            set,
            current: Mutex::new(initial.to_owned()),
        }
    }

    /// The filter directives in force (`info`, `info,ironmesh_xds=debug`).
    pub fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Envoy's `/logging?level=<level>`: every logger at `level`.
    pub fn set_level(&self, level: &str) -> Result<(), String> {
        let level = envoy_level(level)?;
        self.apply(level.to_owned())
    }

    /// Envoy's `/logging?<logger>=<level>`: one target at `level`, the rest unchanged.
    pub fn set_target(&self, target: &str, level: &str) -> Result<(), String> {
        let level = envoy_level(level)?;
        if target.is_empty()
            || !target
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        {
            return Err(format!(
                "{target:?} is not a logger name; use a module path such as ironmesh_xds"
            ));
        }
        let kept: Vec<String> = self
            .current()
            .split(',')
            .filter(|d| !d.is_empty() && d.split('=').next() != Some(target))
            .map(str::to_owned)
            .collect();
        let mut directives = kept.join(",");
        if !directives.is_empty() {
            directives.push(',');
        }
        directives.push_str(&format!("{target}={level}"));
        self.apply(directives)
    }

    fn apply(&self, directives: String) -> Result<(), String> {
        (self.set)(&directives)?;
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = directives;
        Ok(())
    }
}

/// Envoy's level names mapped onto tracing's.
fn envoy_level(level: &str) -> Result<&'static str, String> {
    Ok(match level.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warning" | "warn" => "warn",
        "error" | "critical" => "error",
        "off" => "off",
        _ => {
            return Err(format!(
                "unknown log level {level:?}; use one of trace, debug, info, warning, error, \
                 critical, off"
            ))
        }
    })
}

/// A filter layer the admin API can change, for a subscriber built on
/// `tracing_subscriber::registry()`:
///
/// ```no_run
/// use tracing_subscriber::prelude::*;
/// let (filter, control) = ironmesh_proxy::admin::reloadable_filter("info").unwrap();
/// tracing_subscriber::registry()
///     .with(filter)
///     .with(tracing_subscriber::fmt::layer())
///     .init();
/// # drop(control);
/// ```
pub fn reloadable_filter(
    directives: &str,
) -> Result<(reload::Layer<EnvFilter, Registry>, LogControl), String> {
    let filter = parse(directives)?;
    let (layer, handle) = reload::Layer::new(filter);
    let control = LogControl::new(
        directives,
        Box::new(move |d| {
            let filter = parse(d)?;
            handle
                .reload(filter)
                .map_err(|e| format!("cannot change the log filter: {e}"))
        }),
    );
    Ok((layer, control))
}

fn parse(directives: &str) -> Result<EnvFilter, String> {
    EnvFilter::try_new(directives)
        .map_err(|e| format!("{directives:?} is not a valid log filter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn recording() -> (LogControl, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let control = LogControl::new(
            "info",
            Box::new(move |d| {
                parse(d)?;
                s.lock().unwrap().push(d.to_owned());
                Ok(())
            }),
        );
        (control, seen)
    }

    #[test]
    fn levels_and_targets() {
        let (c, seen) = recording();
        c.set_level("warning").unwrap();
        assert_eq!(c.current(), "warn");
        c.set_target("ironmesh_xds", "debug").unwrap();
        assert_eq!(c.current(), "warn,ironmesh_xds=debug");
        c.set_target("ironmesh_xds", "trace").unwrap();
        assert_eq!(c.current(), "warn,ironmesh_xds=trace");
        assert!(c
            .set_level("loud")
            .unwrap_err()
            .contains("unknown log level"));
        assert!(c.set_target("a b", "info").is_err());
        assert_eq!(seen.lock().unwrap().len(), 3);
        assert_eq!(c.current(), "warn,ironmesh_xds=trace");
    }

    #[test]
    fn reload_handle_changes_the_filter() {
        use tracing_subscriber::prelude::*;
        let (layer, control) = reloadable_filter("info").unwrap();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            assert!(!tracing::enabled!(tracing::Level::DEBUG));
            control.set_level("debug").unwrap();
            tracing::callsite::rebuild_interest_cache();
            assert!(tracing::enabled!(tracing::Level::DEBUG));
        });
    }
}
