//! Well-known container images of the seeds' manifests and the role that stands in for
//! each, so `ironmesh up` can run a Deployment's `image:` without a container runtime.

use crate::Role;

/// The role (and its arguments after the role name) that stands in for `image`, or
/// `None` when the image is not a known sample. The registry, tag and digest are
/// ignored: `docker.io/istio/examples-bookinfo-reviews-v2:1.20.2` → reviews v2.
///
/// The arguments always name the port the real image listens on, so the Service's
/// `targetPort` keeps working (go-httpbin listens on 8080, kennethreitz's on 80).
pub fn role_for_image(image: &str) -> Option<(Role, Vec<String>)> {
    let repo = repository(image);
    let port = |p: u16| vec!["--port".to_string(), p.to_string()];
    let found = match repo.as_str() {
        "kennethreitz/httpbin" | "citizenstig/httpbin" => (Role::Httpbin, port(80)),
        "mccutchen/go-httpbin" => (Role::Httpbin, port(8080)),
        "nginx" | "bitnami/nginx" => (Role::Static, port(80)),
        "nginxinc/nginx-unprivileged" => (Role::Static, port(8080)),
        "curlimages/curl"
        | "governmentpaas/curl-ssl"
        | "sleep"
        | "istio/sleep"
        | "busybox"
        | "nicolaka/netshoot" => (Role::Sleep, Vec::new()),
        other => bookinfo(other)?,
    };
    Some(found)
}

/// The full argument vector after the binary name: `["reviews", "--version", "v2"]`.
pub fn command_for_image(image: &str) -> Option<Vec<String>> {
    let (role, args) = role_for_image(image)?;
    let mut argv = vec![role.as_str().to_string()];
    argv.extend(args);
    Some(argv)
}

/// `istio/examples-bookinfo-<service>-<version>` (any owner, so mirrors work too).
fn bookinfo(repo: &str) -> Option<(Role, Vec<String>)> {
    let name = repo.rsplit('/').next()?;
    let rest = name.strip_prefix("examples-bookinfo-")?;
    let port = vec!["--port".to_string(), "9080".to_string()];
    let (service, version) = rest.split_once('-')?;
    let role = match service {
        "productpage" => Role::Productpage,
        "details" => Role::Details,
        "ratings" => Role::Ratings,
        "reviews" => {
            // `reviews-v2`; tolerate a generation suffix (`reviews-v2-v1`) too.
            let app_version = version.split('-').next()?;
            if !matches!(app_version, "v1" | "v2" | "v3") {
                return None;
            }
            let mut args = vec!["--version".to_string(), app_version.to_string()];
            args.extend(port);
            return Some((Role::Reviews, args));
        }
        _ => return None,
    };
    Some((role, port))
}

/// The repository path without registry host, tag, digest or Docker Hub's `library/`.
fn repository(image: &str) -> String {
    let image = image.trim();
    let image = image.split_once('@').map_or(image, |(name, _)| name);
    let image = match image.rfind(':') {
        Some(colon) if !image[colon..].contains('/') => &image[..colon],
        _ => image,
    };
    let image = match image.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => image,
    };
    let image = image.strip_prefix("library/").unwrap_or(image);
    image.to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn maps_the_seeds_images() {
        assert_eq!(
            role_for_image("docker.io/kennethreitz/httpbin"),
            Some((Role::Httpbin, args(&["--port", "80"])))
        );
        assert_eq!(
            role_for_image("docker.io/mccutchen/go-httpbin:v2.15.0"),
            Some((Role::Httpbin, args(&["--port", "8080"])))
        );
        assert_eq!(
            role_for_image("curlimages/curl"),
            Some((Role::Sleep, vec![]))
        );
        assert_eq!(
            role_for_image("governmentpaas/curl-ssl:latest"),
            Some((Role::Sleep, vec![]))
        );
        assert_eq!(
            role_for_image("nginx:1.25-alpine"),
            Some((Role::Static, args(&["--port", "80"])))
        );
        assert_eq!(
            role_for_image("docker.io/library/nginx@sha256:abcd"),
            Some((Role::Static, args(&["--port", "80"])))
        );
        assert_eq!(
            role_for_image("docker.io/istio/examples-bookinfo-reviews-v3:1.20.2"),
            Some((Role::Reviews, args(&["--version", "v3", "--port", "9080"])))
        );
        assert_eq!(
            role_for_image("docker.io/istio/examples-bookinfo-reviews-v2:1.18.0"),
            Some((Role::Reviews, args(&["--version", "v2", "--port", "9080"])))
        );
        assert_eq!(
            role_for_image("docker.io/istio/examples-bookinfo-reviews-v3-v1:1.20.2"),
            Some((Role::Reviews, args(&["--version", "v3", "--port", "9080"])))
        );
        assert_eq!(
            role_for_image("localhost:5000/istio/examples-bookinfo-productpage-v1:1.18.0"),
            Some((Role::Productpage, args(&["--port", "9080"])))
        );
        assert_eq!(
            command_for_image("istio/examples-bookinfo-ratings-v1:1.20.2"),
            Some(args(&["ratings", "--port", "9080"]))
        );
        assert_eq!(
            command_for_image("istio/examples-bookinfo-details-v1"),
            Some(args(&["details", "--port", "9080"]))
        );
    }

    #[test]
    fn unknown_images_are_none() {
        assert_eq!(role_for_image("redis:7"), None);
        assert_eq!(
            role_for_image("istio/examples-bookinfo-reviews-v9-v1"),
            None
        );
        assert_eq!(role_for_image("istio/examples-bookinfo-mongodb"), None);
        assert_eq!(role_for_image("example.com/mynginx"), None);
    }
}
