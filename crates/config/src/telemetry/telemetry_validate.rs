//! Validation of Telemetry, following Istio's webhook and CRD schema.

use super::{AccessLogging, CustomTag, Metrics, ProviderRef, TagOperation, Telemetry, Tracing};
use crate::path::FieldPath;
use crate::security::target_ref::{empty_string, required_string};
use crate::validation::{checks, Problems};

pub(super) fn telemetry(t: &Telemetry, path: &FieldPath, p: &mut Problems) {
    if t.tracing.len() > 1 {
        p.warn(
            &path.field("tracing"),
            "multiple tracing is not currently supported: only the first entry is used",
        );
    }
    for (i, tr) in t.tracing.iter().enumerate() {
        tracing(tr, &path.field("tracing").index(i), p);
    }
    for (i, m) in t.metrics.iter().enumerate() {
        metrics(m, &path.field("metrics").index(i), p);
    }
    for (i, l) in t.access_logging.iter().enumerate() {
        access_logging(l, &path.field("accessLogging").index(i), p);
    }
}

fn providers(list: &[ProviderRef], path: &FieldPath, p: &mut Problems) {
    for (i, r) in list.iter().enumerate() {
        required_string(
            &r.name,
            p,
            &path.index(i).field("name"),
            "a provider name from meshConfig.extensionProviders (or prometheus, stackdriver, envoy)",
        );
    }
}

fn tracing(t: &Tracing, path: &FieldPath, p: &mut Problems) {
    if t.providers.len() > 1 {
        p.warn(
            &path.field("providers"),
            "multiple providers is not currently supported: only the first is used",
        );
    }
    providers(&t.providers, &path.field("providers"), p);
    if let Some(pct) = t.random_sampling_percentage {
        if !(0.0..=100.0).contains(&pct) {
            p.error(
                &path.field("randomSamplingPercentage"),
                format!("randomSamplingPercentage must be in range [0.0, 100.0], got {pct}"),
            );
        }
    }
    for (name, tag) in &t.custom_tags {
        let at = path.field("customTags").key(name);
        if name.is_empty() {
            p.error(&at, "tag name may not be empty");
        }
        custom_tag(tag, &at, p);
    }
}

fn custom_tag(tag: &CustomTag, path: &FieldPath, p: &mut Problems) {
    let set = tag.literal.is_some() as usize
        + tag.environment.is_some() as usize
        + tag.header.is_some() as usize
        + tag.formatter.is_some() as usize;
    if set > 1 {
        p.error(
            path,
            format!(
                "a custom tag must set exactly one of literal, environment, header or formatter \
                 ({set} set)"
            ),
        );
    } else if set == 0 {
        p.warn(
            path,
            "the custom tag sets none of literal, environment, header or formatter, so it adds \
             nothing to spans",
        );
    }
    if let Some(l) = &tag.literal {
        if l.value.as_deref().unwrap_or("").is_empty() {
            p.error(
                &path.field("literal").field("value"),
                "literal tag value may not be empty",
            );
        }
    }
    if let Some(e) = &tag.environment {
        if e.name.as_deref().unwrap_or("").is_empty() {
            p.error(
                &path.field("environment").field("name"),
                "environment tag name may not be empty: name the proxy's environment variable",
            );
        }
    }
    if let Some(h) = &tag.header {
        match h.name.as_deref().unwrap_or("") {
            "" => p.error(
                &path.field("header").field("name"),
                "header tag name may not be empty: name the request header",
            ),
            n => {
                if let Err(e) = checks::header_name(n) {
                    p.warn(&path.field("header").field("name"), e);
                }
            }
        }
    }
    if let Some(f) = &tag.formatter {
        if f.value.as_deref().unwrap_or("").is_empty() {
            p.error(
                &path.field("formatter").field("value"),
                "formatter tag value may not be empty: use an Envoy format string such as %REQ(:PATH)%",
            );
        }
    }
}

fn metrics(m: &Metrics, path: &FieldPath, p: &mut Problems) {
    providers(&m.providers, &path.field("providers"), p);
    for (i, o) in m.overrides.iter().enumerate() {
        let at = path.field("overrides").index(i);
        if let Some(sel) = &o.match_ {
            let mp = at.field("match");
            if sel.metric.is_some() && sel.custom_metric.is_some() {
                p.error(
                    &mp,
                    "only one of metric or customMetric may be set: pick a standard metric or name a custom one",
                );
            }
            if sel.custom_metric.as_deref() == Some("") {
                empty_string(p, &mp.field("customMetric"), "the name of a custom metric");
            }
        }
        for (name, to) in &o.tag_overrides {
            let tp = at.field("tagOverrides").key(name);
            if name.is_empty() {
                p.warn(&tp, "tagOverrides.name may not be empty");
            }
            let has_value = !to.value.as_deref().unwrap_or("").is_empty();
            match to.operation.unwrap_or(TagOperation::Upsert) {
                TagOperation::Upsert if !has_value => p.error(
                    &tp,
                    "value must be set when operation is UPSERT (the default): give a CEL \
                     expression, or use operation: REMOVE",
                ),
                TagOperation::Remove if has_value => p.error(
                    &tp.field("value"),
                    "value must not be set when operation is REMOVE",
                ),
                _ => {}
            }
            if let Some(v) = to.value.as_deref().filter(|v| !v.is_empty()) {
                p.check(&tp.field("value"), cel_shape(v));
            }
        }
    }
    if let Some(d) = &m.reporting_interval {
        p.check(
            &path.field("reportingInterval"),
            checks::duration_at_least(d, std::time::Duration::from_millis(1)),
        );
    }
}

fn access_logging(l: &AccessLogging, path: &FieldPath, p: &mut Problems) {
    providers(&l.providers, &path.field("providers"), p);
    if let Some(f) = &l.filter {
        let at = path.field("filter").field("expression");
        if let Some(expr) = required_string(
            &f.expression,
            p,
            &at,
            "a CEL expression such as response.code >= 400",
        ) {
            p.check(&at, cel_shape(expr));
        }
    }
}

/// A light check of a CEL expression: string literals closed, brackets balanced.
fn cel_shape(expr: &str) -> Result<(), String> {
    let mut stack = Vec::new();
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                let mut closed = false;
                while let Some(d) = chars.next() {
                    if d == '\\' {
                        chars.next();
                    } else if d == c {
                        closed = true;
                        break;
                    }
                }
                if !closed {
                    return Err(format!(
                        "invalid CEL expression {expr:?}: unterminated string literal"
                    ));
                }
            }
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(want) {
                    return Err(format!("invalid CEL expression {expr:?}: unbalanced {c:?}"));
                }
            }
            _ => {}
        }
    }
    match stack.last() {
        Some(c) => Err(format!("invalid CEL expression {expr:?}: unclosed {c:?}")),
        None if expr.trim().is_empty() => Err("invalid CEL expression: it is blank".into()),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Telemetry;
    use crate::validation::{problems_of, Context};
    use serde_json::json;

    fn problems(v: serde_json::Value) -> Vec<String> {
        let s: Telemetry = serde_json::from_value(v).unwrap();
        problems_of(&s, &Context::for_test("Telemetry"))
    }

    fn has(v: serde_json::Value, fragment: &str) {
        let got = problems(v);
        assert!(
            got.iter().any(|m| m.contains(fragment)),
            "expected {fragment:?} in {got:?}"
        );
    }

    #[test]
    fn full_spec_is_valid() {
        let got = problems(json!({
            "metrics": [{
                "providers": [{"name": "prometheus"}],
                "reportingInterval": "5s",
                "overrides": [
                    {"tagOverrides": {"request_method": {"value": "request.method"}}, "match": {"customMetric": "foo"}, "disabled": false},
                    {"match": {"metric": "GRPC_REQUEST_MESSAGES", "mode": "CLIENT"}, "disabled": true},
                    {"tagOverrides": {"foo": {"operation": "REMOVE"}}}
                ]
            }],
            "accessLogging": [{"disabled": false, "filter": {"expression": "response.code >= 400"}, "match": {"mode": "CLIENT"}, "providers": [{"name": "stdout"}]}],
            "tracing": [{
                "providers": [{"name": "otlp"}],
                "match": {"mode": "CLIENT_AND_SERVER"},
                "randomSamplingPercentage": 54.54,
                "useRequestIdForTraceSampling": true,
                "disableSpanReporting": false,
                "enableIstioTags": true,
                "disableContextPropagation": false,
                "customTags": {
                    "env": {"environment": {"name": "NAME", "defaultValue": "d"}},
                    "header": {"header": {"name": "x-name"}},
                    "literal": {"literal": {"value": "v"}},
                    "fmt": {"formatter": {"value": "%REQ(:PATH)%"}}
                }
            }]
        }));
        assert!(got.is_empty(), "{got:?}");
    }

    #[test]
    fn rules() {
        has(
            json!({"metrics": [{"providers": [{"name": ""}]}]}),
            "name in body should be at least 1 chars long",
        );
        has(
            json!({"accessLogging": [{"providers": [{}]}]}),
            "providers[0].name: Required value",
        );
        has(
            json!({"metrics": [{"overrides": [{"match": {"customMetric": ""}}]}]}),
            "customMetric in body should be at least 1 chars long",
        );
        has(
            json!({"metrics": [{"overrides": [{"match": {"customMetric": "a", "metric": "REQUEST_COUNT"}}]}]}),
            "only one of metric or customMetric",
        );
        has(
            json!({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"operation": "UPSERT"}}}]}]}),
            "value must be set when operation is UPSERT",
        );
        has(
            json!({"metrics": [{"overrides": [{"tagOverrides": {"foo": {}}}]}]}),
            "value must be set when operation is UPSERT",
        );
        has(
            json!({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"operation": "REMOVE", "value": "x"}}}]}]}),
            "value must not be set when operation is REMOVE",
        );
        has(
            json!({"metrics": [{"overrides": [{"tagOverrides": {"foo": {"value": "request.method("}}}]}]}),
            "invalid CEL expression",
        );
        has(
            json!({"metrics": [{"reportingInterval": "0s"}]}),
            "must be a valid duration greater than",
        );
        has(
            json!({"tracing": [{"randomSamplingPercentage": 101}]}),
            "randomSamplingPercentage must be in range",
        );
        has(
            json!({"tracing": [{}, {}]}),
            "multiple tracing is not currently supported",
        );
        has(
            json!({"tracing": [{"providers": [{"name": "a"}, {"name": "b"}]}]}),
            "multiple providers",
        );
        has(
            json!({"tracing": [{"customTags": {"a": {}}}]}),
            "sets none of literal",
        );
        has(
            json!({"tracing": [{"customTags": {"a": {"literal": {"value": "x"}, "header": {"name": "y"}}}}]}),
            "exactly one of literal",
        );
        has(
            json!({"tracing": [{"customTags": {"a": {"literal": {}}}}]}),
            "literal tag value may not be empty",
        );
        has(
            json!({"tracing": [{"customTags": {"a": {"header": {"name": ""}}}}]}),
            "header tag name may not be empty",
        );
        has(
            json!({"tracing": [{"customTags": {"a": {"environment": {}}}}]}),
            "environment tag name may not be empty",
        );
        has(
            json!({"tracing": [{"customTags": {"a": {"formatter": {}}}}]}),
            "formatter tag value may not be empty",
        );
        has(
            json!({"accessLogging": [{"filter": {}}]}),
            "filter.expression: Required value",
        );
        has(
            json!({"accessLogging": [{"filter": {"expression": "a == 'b"}}]}),
            "unterminated string literal",
        );
        has(
            json!({"selector": {"matchLabels": {"a": "b"}}, "targetRefs": [{"kind": "Gateway", "group": "gateway.networking.k8s.io", "name": "g"}]}),
            "only one of targetRefs or selector can be set",
        );
    }

    #[test]
    fn enums_and_nulls_fail_to_decode() {
        let e = serde_json::from_value::<Telemetry>(
            json!({"metrics": [{"overrides": [{"match": {"metric": "NOPE"}}]}]}),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("Unsupported value: \"NOPE\""), "{e}");
        let e = serde_json::from_value::<Telemetry>(json!({"metrics": [{"providers": [null]}]}))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("spec.metrics[0].providers[0] in body must be of type object"),
            "{e}"
        );
    }
}
