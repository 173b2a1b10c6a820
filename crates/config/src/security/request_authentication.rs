//! RequestAuthentication (security.istio.io): which JWTs a workload accepts. A request
//! with an invalid token is rejected; a request without one passes (requiring a token
//! takes an AuthorizationPolicy).

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::target_ref::{
    empty_string, non_empty_items, required_string, should_match, validate_attachment,
};
use crate::path::FieldPath;
use crate::security::target_ref::object_list_fn;
use crate::types::{Duration, LabelSelector, PolicyTargetReference};
use crate::validation::{checks, Context, Problems, Validate};

/// `RequestAuthentication` spec.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestAuthentication {
    /// Workloads the policy applies to (mutually exclusive with targetRef/targetRefs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Single form of `targetRefs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_ref: Option<PolicyTargetReference>,
    /// Gateways or waypoints (via Service/ServiceEntry) the policy attaches to.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "target_refs"
    )]
    pub target_refs: Vec<PolicyTargetReference>,
    /// The issuers whose tokens are accepted.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "jwt_rules"
    )]
    pub jwt_rules: Vec<JwtRule>,
}

object_list_fn!(target_refs, "spec.targetRefs");
object_list_fn!(jwt_rules, "spec.jwtRules");
object_list_fn!(from_headers, "fromHeaders");
object_list_fn!(claim_headers, "outputClaimToHeaders");

/// `JWTRule`: one accepted issuer and how to find, check and forward its tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtRule {
    /// The `iss` claim tokens must carry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Accepted `aud` values; any audience when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Where to fetch the public keys (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<String>,
    /// The public keys inline, as a JSON Web Key Set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<String>,
    /// Headers to read the token from (default `Authorization: Bearer`).
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "from_headers"
    )]
    pub from_headers: Vec<JwtHeader>,
    /// Query parameters to read the token from (default `access_token`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_params: Vec<String>,
    /// Cookies to read the token from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from_cookies: Vec<String>,
    /// Header to forward the verified payload in (base64url JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_payload_to_header: Option<String>,
    /// Keep the token in the request forwarded upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_original_token: Option<bool>,
    /// Claims to copy into request headers.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "claim_headers"
    )]
    pub output_claim_to_headers: Vec<ClaimToHeader>,
    /// Timeout for fetching the JWKS (default 5s).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "timeout"
    )]
    pub timeout: Option<Duration>,
    /// Claims whose string value holds space-separated values (e.g. `scope`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub space_delimited_claims: Vec<String>,
}

/// `JWTHeader`: a header carrying a token, and the prefix before it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Text before the token, e.g. `Bearer `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
}

/// `ClaimToHeader`: copy claim `claim` into header `header`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
}

/// The pattern the CRD requires of `outputClaimToHeaders[].header`.
const CLAIM_HEADER_PATTERN: &str = "^[-_A-Za-z0-9]+$";

/// Reads `timeout`, saying what a valid one looks like when it does not parse.
fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    text.parse::<Duration>()
        .map(Some)
        .map_err(|e| de::Error::custom(format!("must be a valid duration greater than 1ms: {e}")))
}

impl Validate for RequestAuthentication {
    fn validate(&self, cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        validate_attachment(
            &self.selector,
            &self.target_ref,
            &self.target_refs,
            cx,
            path,
            p,
        );
        for (i, rule) in self.jwt_rules.iter().enumerate() {
            rule.validate(cx, &path.field("jwtRules").index(i), p);
        }
    }
}

impl Validate for JwtRule {
    fn validate(&self, _cx: &Context<'_>, path: &FieldPath, p: &mut Problems) {
        let issuer = self.issuer.as_deref().unwrap_or("");
        let uri = self.jwks_uri.as_deref().unwrap_or("");
        if issuer.is_empty() && uri.is_empty() {
            p.error(
                &path.field("issuer"),
                "issuer or jwksUri must be non-empty string: set issuer to the tokens' `iss` claim",
            );
        }
        non_empty_items(
            &self.audiences,
            p,
            &path.field("audiences"),
            "an accepted `aud` value",
        );
        if !uri.is_empty() {
            p.check(&path.field("jwksUri"), jwks_uri(uri));
        } else if self.jwks_uri.is_some() {
            empty_string(p, &path.field("jwksUri"), "the https URL of the key set");
        }
        if let Some(jwks) = self.jwks.as_ref().filter(|j| !j.is_empty()) {
            p.check(&path.field("jwks"), jwks_document(jwks));
            if !uri.is_empty() {
                p.warn(
                    &path.field("jwks"),
                    "both jwks and jwksUri are set: the inline jwks is used and jwksUri is ignored",
                );
            }
        }
        for (i, h) in self.from_headers.iter().enumerate() {
            let at = path.field("fromHeaders").index(i);
            if let Some(name) = required_string(
                &h.name,
                p,
                &at.field("name"),
                "the header carrying the token",
            ) {
                if let Err(e) = checks::header_name(name) {
                    p.warn(&at.field("name"), format!("{e}; no request can carry it"));
                }
            }
        }
        non_empty_items(
            &self.from_params,
            p,
            &path.field("fromParams"),
            "a query parameter name",
        );
        non_empty_items(
            &self.from_cookies,
            p,
            &path.field("fromCookies"),
            "a cookie name",
        );
        non_empty_items(
            &self.space_delimited_claims,
            p,
            &path.field("spaceDelimitedClaims"),
            "a claim name",
        );
        if let Some(h) = &self.output_payload_to_header {
            let at = path.field("outputPayloadToHeader");
            if h.is_empty() {
                empty_string(p, &at, "a header name");
            } else if let Err(e) = checks::header_name(h) {
                p.error(
                    &at,
                    format!("{e} (pseudo-headers such as :authority cannot be set)"),
                );
            }
        }
        for (i, c) in self.output_claim_to_headers.iter().enumerate() {
            let at = path.field("outputClaimToHeaders").index(i);
            required_string(&c.claim, p, &at.field("claim"), "the claim to copy");
            if let Some(h) =
                required_string(&c.header, p, &at.field("header"), "the header to write")
            {
                let ok = h
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_');
                if !ok {
                    should_match(
                        p,
                        &at.field("header"),
                        CLAIM_HEADER_PATTERN,
                        "use letters, digits, '-' and '_' (no pseudo-headers such as :authority)",
                    );
                }
            }
        }
        if let Some(t) = &self.timeout {
            p.check(
                &path.field("timeout"),
                checks::duration_at_least(t, std::time::Duration::from_millis(1)),
            );
        }
    }
}

/// `jwksUri`: an absolute http or https URL, at most 2048 characters.
fn jwks_uri(uri: &str) -> Result<(), String> {
    if uri.len() > 2048 {
        return Err(format!(
            "jwksUri is {} characters long: at most 2048 are allowed",
            uri.len()
        ));
    }
    let hint =
        "url must have scheme http:// or https://, e.g. https://example.com/.well-known/jwks.json";
    match url::Url::parse(uri) {
        Ok(u) if (u.scheme() == "http" || u.scheme() == "https") && u.host().is_some() => Ok(()),
        Ok(u) if u.scheme() == "http" || u.scheme() == "https" => {
            Err(format!("jwksUri {uri:?} has no host: {hint}"))
        }
        Ok(u) => Err(format!(
            "jwksUri {uri:?}: URI scheme {:?} is not supported; {hint}",
            u.scheme()
        )),
        Err(e) => Err(format!("jwksUri {uri:?} is not a valid URL ({e}): {hint}")),
    }
}

/// `jwks`: a JSON Web Key Set (`{"keys": [...]}`) or a single JSON Web Key.
fn jwks_document(text: &str) -> Result<(), String> {
    let hint = "jwks must be a JSON Web Key Set such as {\"keys\": [{\"kty\": \"RSA\", ...}]}";
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| format!("jwks parse error: not JSON ({e}); {hint}"))?;
    let key_ok = |k: &serde_json::Value| k.get("kty").and_then(|t| t.as_str()).is_some();
    match v.get("keys") {
        Some(serde_json::Value::Array(keys)) => match keys.iter().position(|k| !key_ok(k)) {
            Some(i) => Err(format!(
                "jwks parse error: keys[{i}] has no \"kty\"; {hint}"
            )),
            None => Ok(()),
        },
        Some(_) => Err(format!("jwks parse error: \"keys\" is not a list; {hint}")),
        None if key_ok(&v) => Ok(()),
        None => Err(format!(
            "jwks parse error: no \"keys\" and no \"kty\"; {hint}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::problems_of;
    use serde_json::json;

    fn problems(v: serde_json::Value) -> Vec<String> {
        let s: RequestAuthentication = serde_json::from_value(v).unwrap();
        problems_of(&s, &Context::for_test("RequestAuthentication"))
    }

    fn has(v: serde_json::Value, fragment: &str) {
        let got = problems(v);
        assert!(
            got.iter().any(|m| m.contains(fragment)),
            "expected {fragment:?} in {got:?}"
        );
    }

    fn decode_err(v: serde_json::Value) -> String {
        serde_json::from_value::<RequestAuthentication>(v)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn full_rule_is_valid() {
        let got = problems(json!({
            "targetRefs": [{"group": "", "kind": "Service", "name": "foo"}],
            "jwtRules": [{
                "issuer": "example.com",
                "audiences": ["a"],
                "jwksUri": "https://example.com/.well-known/jwks.json",
                "forwardOriginalToken": true,
                "fromCookies": ["foo"],
                "fromParams": ["token"],
                "fromHeaders": [{"name": "foo", "prefix": "baz"}],
                "outputClaimToHeaders": [{"claim": "abc", "header": "def"}],
                "timeout": "5s",
                "outputPayloadToHeader": "header",
                "spaceDelimitedClaims": ["custom_scope"]
            }]
        }));
        assert!(got.is_empty(), "{got:?}");
        assert!(problems(json!({"jwtRules": [{"jwksUri": "http://keys/jwks"}]})).is_empty());
        assert!(problems(json!({"jwtRules": [{"issuer": "i", "jwks": "{\"keys\": [{\"kty\": \"RSA\", \"n\": \"x\", \"e\": \"AQAB\"}]}"}]})).is_empty());
    }

    #[test]
    fn rule_fields() {
        has(
            json!({"jwtRules": [{}]}),
            "issuer or jwksUri must be non-empty",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "audiences": [""]}]}),
            "spec.jwtRules[0].audiences[0] in body should be at least 1 chars long",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "jwksUri": "hTPp\\\u{8}lah"}]}),
            "url must have scheme",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "jwksUri": "ftp://x/keys"}]}),
            "url must have scheme",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "jwks": "not json"}]}),
            "jwks parse error",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "jwks": "{\"keys\": 3}"}]}),
            "jwks parse error",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "jwks": "{\"keys\": []}", "jwksUri": "https://a/b"}]}),
            "both jwks and jwksUri",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "fromHeaders": [{"prefix": "x"}]}]}),
            "fromHeaders[0].name: Required value",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "fromHeaders": [{"name": ""}]}]}),
            "fromHeaders[0].name in body should be at least 1 chars long",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "fromParams": [""]}]}),
            "fromParams[0] in body should be at least 1 chars long",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "fromCookies": [""]}]}),
            "fromCookies[0] in body should be at least 1 chars long",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "spaceDelimitedClaims": [""]}]}),
            "spaceDelimitedClaims[0] in body should be at least 1 chars long",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "outputClaimToHeaders": [{"claim": "", "header": "h"}]}]}),
            "claim in body should be at least 1 chars long",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "outputClaimToHeaders": [{"claim": "c", "header": ""}]}]}),
            "header in body should be at least 1 chars long",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "outputClaimToHeaders": [{"claim": "c", "header": ":authority"}]}]}),
            "header in body should match",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "outputClaimToHeaders": [{"header": "h"}]}]}),
            "claim: Required value",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "outputPayloadToHeader": ":path"}]}),
            "header name \":path\" is invalid",
        );
        has(
            json!({"jwtRules": [{"issuer": "e", "timeout": "0s"}]}),
            "must be a valid duration greater than",
        );
    }

    #[test]
    fn decode_errors() {
        let e = decode_err(json!({"jwtRules": [null]}));
        assert!(
            e.starts_with("spec.jwtRules[0] in body must be of type object"),
            "{e}"
        );
        let e = decode_err(json!({"jwtRules": [{"issuer": "e", "outputClaimToHeaders": [null]}]}));
        assert!(
            e.starts_with(
                "spec.jwtRules[0].outputClaimToHeaders[0] in body must be of type object"
            ),
            "{e}"
        );
        let e = decode_err(json!({"jwtRules": [{"issuer": "e", "timeout": "apple"}]}));
        assert!(e.contains("must be a valid duration greater than"), "{e}");
    }

    #[test]
    fn attachment() {
        has(
            json!({"selector": {"matchLabels": {"a": "b"}}, "targetRef": {"kind": "Service", "name": "foo"}}),
            "only one of targetRefs or selector can be set",
        );
        has(
            json!({"targetRef": {"group": "", "kind": "Service"}}),
            "targetRef.name: Required value",
        );
    }
}
