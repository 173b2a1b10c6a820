//! Helpers shared by the policy kinds (AuthorizationPolicy, RequestAuthentication,
//! PeerAuthentication, Telemetry, WasmPlugin): how a policy attaches to workloads
//! (`selector`, `targetRef`, `targetRefs`), the wording Kubernetes uses for CRD schema
//! violations, and serde helpers that reject `null` where the API server does.

use std::fmt;
use std::marker::PhantomData;
use std::sync::OnceLock;

use regex::Regex;
use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

use crate::path::FieldPath;
use crate::types::{LabelSelector, PolicyTargetReference};
use crate::validation::{checks, Context, Problems};

/// The kinds a policy may target, as (canonical group, kind). An empty group is `core`.
const TARGET_KINDS: &[(&str, &str)] = &[
    ("core", "Service"),
    ("networking.istio.io", "ServiceEntry"),
    ("gateway.networking.k8s.io", "Gateway"),
    ("gateway.networking.k8s.io", "GatewayClass"),
];

const GROUP_PATTERN: &str = r"^$|^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$";
const KIND_PATTERN: &str = r"^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$";

/// The most `targetRefs` entries the CRD allows.
const MAX_TARGET_REFS: usize = 16;

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).expect("static regex"))
}

/// Records `<path> in body should be at least 1 chars long`, the API server's wording
/// for an empty string where one is required.
pub(crate) fn empty_string(p: &mut Problems, path: &FieldPath, hint: &str) {
    p.error(
        path,
        format!("{path} in body should be at least 1 chars long: {hint}"),
    );
}

/// Records a missing required field (`<path>: Required value: <hint>`).
pub(crate) fn required(p: &mut Problems, path: &FieldPath, hint: &str) {
    p.error(path, format!("Required value: {hint}"));
}

/// Records `<path> in body should match '<pattern>'`.
pub(crate) fn should_match(p: &mut Problems, path: &FieldPath, pattern: &str, hint: &str) {
    p.error(
        path,
        format!("{path} in body should match '{pattern}': {hint}"),
    );
}

/// Checks a required string: missing → `Required value`, empty → `at least 1 chars`.
/// Returns the value when it is set and not empty.
pub(crate) fn required_string<'a>(
    value: &'a Option<String>,
    p: &mut Problems,
    path: &FieldPath,
    hint: &str,
) -> Option<&'a str> {
    match value.as_deref() {
        None => {
            required(p, path, hint);
            None
        }
        Some("") => {
            empty_string(p, path, hint);
            None
        }
        Some(v) => Some(v),
    }
}

/// Every entry of a string list must be non-empty.
pub(crate) fn non_empty_items(values: &[String], p: &mut Problems, path: &FieldPath, hint: &str) {
    for (i, v) in values.iter().enumerate() {
        if v.is_empty() {
            empty_string(p, &path.index(i), hint);
        }
    }
}

/// Checks how a policy attaches: at most one of `selector`, `targetRef` and
/// `targetRefs`, then each of them.
pub(crate) fn validate_attachment(
    selector: &Option<LabelSelector>,
    target_ref: &Option<PolicyTargetReference>,
    target_refs: &[PolicyTargetReference],
    cx: &Context<'_>,
    path: &FieldPath,
    p: &mut Problems,
) {
    let set = selector.is_some() as usize
        + target_ref.is_some() as usize
        + (!target_refs.is_empty()) as usize;
    if set > 1 {
        p.error(
            path,
            "only one of targetRefs or selector can be set: use selector for workloads, \
             or targetRef/targetRefs for a Service, ServiceEntry or Gateway (never both, and \
             not targetRef together with targetRefs)",
        );
    }
    if let Some(s) = selector {
        validate_selector(s, &path.field("selector"), p);
    }
    if let Some(r) = target_ref {
        validate_target_ref(r, cx, &path.field("targetRef"), p);
    }
    if target_refs.len() > MAX_TARGET_REFS {
        p.error(
            &path.field("targetRefs"),
            format!(
                "Too many: {} entries: must have at most {MAX_TARGET_REFS} items",
                target_refs.len()
            ),
        );
    }
    for (i, r) in target_refs.iter().enumerate() {
        validate_target_ref(r, cx, &path.field("targetRefs").index(i), p);
    }
}

/// `selector.matchLabels`: keys must be non-empty and no key or value may hold a
/// wildcard (errors, as Istio); a key or value that no Kubernetes label can have is
/// reported as a warning because the selector then matches nothing.
pub(crate) fn validate_selector(selector: &LabelSelector, path: &FieldPath, p: &mut Problems) {
    let labels = path.field("matchLabels");
    if selector.match_labels.is_empty() {
        p.warn(
            path,
            "workload selector specified without labels: the policy applies to every workload \
             in its namespace, as if selector were left out",
        );
    }
    for (k, v) in &selector.match_labels {
        let at = labels.key(k);
        if k.is_empty() {
            p.error(
                &labels,
                "key must not be empty: every selector label needs a key",
            );
        } else if k.contains('*') {
            p.check(&at, checks::label_key(k));
        } else if let Err(e) = checks::label_key(k) {
            p.warn(
                &at,
                format!("{e}; no workload can carry such a label, so the selector matches nothing"),
            );
        }
        if v.contains('*') {
            p.check(&at, checks::label_value(v));
        } else if let Err(e) = checks::label_value(v) {
            p.warn(
                &at,
                format!("{e}; no workload can carry such a label, so the selector matches nothing"),
            );
        }
    }
}

/// One `targetRef`: name and kind required, group and kind well-formed, no namespace
/// (Istio does not support cross-namespace references), and a kind Istio can attach to.
pub(crate) fn validate_target_ref(
    r: &PolicyTargetReference,
    cx: &Context<'_>,
    path: &FieldPath,
    p: &mut Problems,
) {
    static GROUP: OnceLock<Regex> = OnceLock::new();
    static KIND: OnceLock<Regex> = OnceLock::new();
    let name = required_string(
        &r.name,
        p,
        &path.field("name"),
        "the name of the target resource",
    );
    if name.is_some_and(|n| n.len() > 253) {
        p.error(
            &path.field("name"),
            format!(
                "{} may not be longer than 253 characters",
                path.field("name")
            ),
        );
    }
    let group = r.group.as_deref().unwrap_or("");
    let group_ok = group.len() <= 253 && re(&GROUP, GROUP_PATTERN).is_match(group);
    if !group_ok {
        should_match(
            p,
            &path.field("group"),
            GROUP_PATTERN,
            "use \"\" (core), \"networking.istio.io\" or \"gateway.networking.k8s.io\"",
        );
    }
    let kind = required_string(
        &r.kind,
        p,
        &path.field("kind"),
        "the kind of the target resource, e.g. Service",
    );
    let kind_ok = match kind {
        Some(k) if k.len() > 63 || !re(&KIND, KIND_PATTERN).is_match(k) => {
            should_match(
                p,
                &path.field("kind"),
                KIND_PATTERN,
                "use a kind such as Service, ServiceEntry or Gateway",
            );
            false
        }
        Some(_) => true,
        None => false,
    };
    if let Some(ns) = r.namespace.as_deref().filter(|n| !n.is_empty()) {
        let same = if ns == cx.namespace {
            " (even the policy's own namespace)"
        } else {
            ""
        };
        p.error(
            &path.field("namespace"),
            format!(
                "cross namespace referencing is not currently supported: remove namespace \
                 {ns:?}{same}; the target is looked up in the policy's namespace"
            ),
        );
    }
    if kind_ok && group_ok {
        let kind = kind.unwrap_or_default();
        let canonical = if group.is_empty() { "core" } else { group };
        if !TARGET_KINDS
            .iter()
            .any(|(g, k)| *g == canonical && *k == kind)
        {
            let allowed: Vec<String> = TARGET_KINDS
                .iter()
                .map(|(g, k)| format!("{g}/{k}"))
                .collect();
            p.error(
                path,
                format!(
                    "targetRef must be to one of {} but was {group}/{kind}",
                    allowed.join(", ")
                ),
            );
        }
    }
}

/// Marks an error message whose field path is still being completed by enclosing lists.
const PARTIAL: char = '\u{1}';

/// Deserializes a list of objects, rejecting `null` entries with the API server's
/// wording (`<field>[i] in body must be of type object: "null"`). `field` is the list's
/// path: `spec.`-prefixed for a field of the spec itself, or relative (`ports`) for a
/// list inside another object list, which then completes the path.
pub(crate) fn object_list<'de, D, T>(d: D, field: &'static str) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct ListVisitor<T> {
        field: &'static str,
        item: PhantomData<T>,
    }

    impl<'de, T: Deserialize<'de>> Visitor<'de> for ListVisitor<T> {
        type Value = Vec<T>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of objects")
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            loop {
                let i = out.len();
                match seq.next_element::<Item<T>>() {
                    Ok(Some(Item(Some(v)))) => out.push(v),
                    Ok(Some(Item(None))) => {
                        return Err(de::Error::custom(finish(
                            self.field,
                            &format!("[{i}] in body must be of type object: \"null\""),
                        )))
                    }
                    Ok(None) => return Ok(out),
                    Err(e) => {
                        let msg = e.to_string();
                        return match msg.strip_prefix(PARTIAL) {
                            Some(rest) => Err(de::Error::custom(finish(
                                self.field,
                                &format!("[{i}].{rest}"),
                            ))),
                            None => Err(e),
                        };
                    }
                }
            }
        }
    }

    d.deserialize_seq(ListVisitor {
        field,
        item: PhantomData,
    })
}

fn finish(field: &str, rest: &str) -> String {
    if field.starts_with("spec.") {
        format!("{field}{rest}")
    } else {
        format!("{PARTIAL}{field}{rest}")
    }
}

/// One list entry: `None` when it is null.
struct Item<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Item<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<T>::deserialize(d).map(Item)
    }
}

/// Declares `fn $name(d) -> Result<Vec<T>, _>` for `#[serde(deserialize_with)]`,
/// rejecting null entries of the list at `$field` (see [`object_list`]).
macro_rules! object_list_fn {
    ($name:ident, $field:literal) => {
        fn $name<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
        where
            D: ::serde::Deserializer<'de>,
            T: ::serde::Deserialize<'de>,
        {
            $crate::security::target_ref::object_list(d, $field)
        }
    };
}
pub(crate) use object_list_fn;

/// Deserializes an optional string that may be left out but not written as `null`
/// (`<field> in body must be of type string: "null"`).
pub(crate) fn non_null_string<'de, D: Deserializer<'de>>(
    d: D,
    field: &'static str,
) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        Some(s) => Ok(Some(s)),
        None => Err(de::Error::custom(format!(
            "{field} in body must be of type string: \"null\": write a string, or leave the field out"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Inner {
        #[serde(default, deserialize_with = "ports")]
        #[allow(dead_code)]
        ports: Vec<serde_json::Value>,
    }
    object_list_fn!(ports, "ports");
    object_list_fn!(items, "spec.items");

    #[derive(Debug, Deserialize)]
    struct Outer {
        #[serde(default, deserialize_with = "items")]
        items: Vec<Inner>,
    }

    #[test]
    fn null_list_items_name_their_full_path() {
        let e = serde_json::from_value::<Outer>(json!({"items": [null]})).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("spec.items[0] in body must be of type object"),
            "{e}"
        );
        let e = serde_json::from_value::<Outer>(json!({"items": [{}, {"ports": [1, null]}]}))
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("spec.items[1].ports[1] in body must be of type object"),
            "{e}"
        );
        let ok = serde_json::from_value::<Outer>(json!({"items": [{"ports": [1]}]})).unwrap();
        assert_eq!(ok.items.len(), 1);
    }

    #[test]
    fn attachment_rules() {
        let cx = Context::for_test("RequestAuthentication");
        let mut p = Problems::new();
        let sel = LabelSelector::default();
        let r = PolicyTargetReference {
            group: Some(String::new()),
            kind: Some("Service".into()),
            name: Some("foo".into()),
            namespace: None,
        };
        validate_attachment(
            &Some(sel),
            &Some(r.clone()),
            &[],
            &cx,
            &FieldPath::spec(),
            &mut p,
        );
        let msgs: Vec<String> = p.iter().map(|x| x.message.clone()).collect();
        assert!(msgs
            .iter()
            .any(|m| m.contains("only one of targetRefs or selector")));

        let mut p = Problems::new();
        let bad = PolicyTargetReference {
            group: Some("__".into()),
            kind: Some("Serv_ice".into()),
            name: None,
            namespace: Some("bar".into()),
        };
        validate_target_ref(&bad, &cx, &FieldPath::spec().field("targetRef"), &mut p);
        let all: Vec<String> = p
            .iter()
            .map(|x| format!("{}: {}", x.path, x.message))
            .collect();
        let text = all.join("\n");
        assert!(
            text.contains("spec.targetRef.name: Required value"),
            "{text}"
        );
        assert!(
            text.contains("spec.targetRef.group in body should match"),
            "{text}"
        );
        assert!(
            text.contains("spec.targetRef.kind in body should match"),
            "{text}"
        );
        assert!(
            text.contains("cross namespace referencing is not currently supported"),
            "{text}"
        );

        let mut p = Problems::new();
        let wrong_kind = PolicyTargetReference {
            kind: Some("Deployment".into()),
            name: Some("x".into()),
            ..Default::default()
        };
        validate_target_ref(
            &wrong_kind,
            &cx,
            &FieldPath::spec().field("targetRef"),
            &mut p,
        );
        assert!(p
            .iter()
            .any(|x| x.message.contains("targetRef must be to one of")));
        let mut p = Problems::new();
        validate_target_ref(&r, &cx, &FieldPath::spec().field("targetRef"), &mut p);
        assert!(p.is_empty());
    }

    #[test]
    fn selector_rules() {
        let mut p = Problems::new();
        let mut s = LabelSelector::default();
        s.match_labels.insert("istio*".into(), "bar".into());
        s.match_labels.insert("app".into(), "v*".into());
        validate_selector(&s, &FieldPath::spec().field("selector"), &mut p);
        let text: Vec<String> = p.iter().map(|x| x.message.clone()).collect();
        assert!(text
            .iter()
            .any(|m| m.contains("wildcard not allowed in label key match")));
        assert!(text
            .iter()
            .any(|m| m.contains("wildcard not allowed in label value match")));
        let mut p = Problems::new();
        validate_selector(&LabelSelector::default(), &FieldPath::spec(), &mut p);
        assert!(!p.has_errors() && p.len() == 1);
    }
}
