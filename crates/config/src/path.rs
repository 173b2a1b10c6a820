//! Field paths as Kubernetes prints them: `spec.http[0].route[1].weight`,
//! `spec.portLevelMtls[8080]`.

use std::fmt;

/// A path to a field of an object, built while walking it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FieldPath(String);

impl FieldPath {
    /// The empty path (the document root).
    pub fn root() -> Self {
        FieldPath(String::new())
    }

    /// `spec`, the usual starting point of a validator.
    pub fn spec() -> Self {
        FieldPath("spec".into())
    }

    /// A named field: `a` then `.b`.
    pub fn field(&self, name: &str) -> Self {
        if self.0.is_empty() {
            FieldPath(name.to_string())
        } else {
            FieldPath(format!("{}.{name}", self.0))
        }
    }

    /// A list element: `[3]`.
    pub fn index(&self, i: usize) -> Self {
        FieldPath(format!("{}[{i}]", self.0))
    }

    /// A map entry: `[key]`.
    pub fn key(&self, key: &str) -> Self {
        FieldPath(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// Parses the printed form back (used for paths reported by serde).
    pub fn parse(s: &str) -> Self {
        FieldPath(s.trim_start_matches('.').to_string())
    }

    /// Segments with list indexes and map keys as plain segments, the form the line
    /// index is keyed by. `a.b[0][k].c` → `a`, `b`, `0`, `k`, `c`.
    pub fn segments(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut cur = String::new();
        let mut depth = 0usize;
        for ch in self.0.chars() {
            match ch {
                '.' if depth == 0 => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                }
                '[' if depth == 0 => {
                    if !cur.is_empty() {
                        out.push(std::mem::take(&mut cur));
                    }
                    depth = 1;
                }
                ']' if depth == 1 => {
                    out.push(std::mem::take(&mut cur));
                    depth = 0;
                }
                c => cur.push(c),
            }
        }
        if !cur.is_empty() {
            out.push(cur);
        }
        out
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_splits() {
        let p = FieldPath::spec()
            .field("http")
            .index(0)
            .field("route")
            .index(1)
            .field("weight");
        assert_eq!(p.to_string(), "spec.http[0].route[1].weight");
        assert_eq!(p.segments(), ["spec", "http", "0", "route", "1", "weight"]);
        let k = FieldPath::spec()
            .field("selector")
            .key("app.kubernetes.io/name");
        assert_eq!(k.segments(), ["spec", "selector", "app.kubernetes.io/name"]);
        assert_eq!(FieldPath::root().field("kind").to_string(), "kind");
    }
}
