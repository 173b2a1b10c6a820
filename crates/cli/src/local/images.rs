//! What a container runs on this machine: its own `command`/`args`, the proxy for the
//! Istio proxy image, an `ironmesh-sample` role for well-known sample images, or an idle
//! process for client images (curl, toolbox) that are only used with `exec`.

use k8s_openapi::api::core::v1::Container;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Program {
    /// `ironmesh-sample ARGS…`
    Sample(Vec<String>),
    /// `ironmesh-proxy ARGS…` (the `istio/proxyv2` image: gateways).
    Proxy(Vec<String>),
    /// A host command line.
    Command(Vec<String>),
}

/// Images `ironmesh_sample::role_for_image` does not know, by name fragment (the seeds'
/// httpbin image is `2456868764/httpbin`), and the sample role they become.
const ROLES: &[(&str, &[&str])] = &[
    ("examples-bookinfo-productpage", &["productpage"]),
    ("examples-bookinfo-details", &["details"]),
    ("examples-bookinfo-ratings", &["ratings"]),
    (
        "examples-bookinfo-reviews-v1",
        &["reviews", "--version", "v1"],
    ),
    (
        "examples-bookinfo-reviews-v2",
        &["reviews", "--version", "v2"],
    ),
    (
        "examples-bookinfo-reviews-v3",
        &["reviews", "--version", "v3"],
    ),
    ("httpbin", &["httpbin"]),
    ("nginx", &["static"]),
    ("helloworld", &["httpbin"]),
];

/// Client images whose default command would exit at once: they idle.
const IDLE: &[&str] = &[
    "curl", "sleep", "toolbox", "centos", "busybox", "ubuntu", "debian", "alpine", "netshoot",
];

fn image_name(image: &str) -> &str {
    let no_digest = image.split('@').next().unwrap_or(image);
    let last = no_digest.rsplit('/').next().unwrap_or(no_digest);
    last.split(':').next().unwrap_or(last)
}

pub fn program_for(c: &Container) -> Program {
    let image = c.image.as_deref().unwrap_or("");
    let name = image_name(image);
    let args = c.args.clone().unwrap_or_default();
    if name == "proxyv2" || name == "ironmesh-proxy" {
        return Program::Proxy(args);
    }
    if let Some(cmd) = c.command.clone().filter(|c| !c.is_empty()) {
        let mut line = cmd;
        line.extend(args);
        return Program::Command(line);
    }
    if let Some((role, sample_args)) = ironmesh_sample::role_for_image(image) {
        if role == ironmesh_sample::Role::Sleep {
            return Program::Command(vec!["sleep".into(), "infinity".into()]);
        }
        // The port comes from the container spec (added by the caller), not the image.
        let mut line = vec![role.as_str().to_string()];
        let mut it = sample_args.into_iter();
        while let Some(a) = it.next() {
            if a == "--port" {
                it.next();
            } else {
                line.push(a);
            }
        }
        line.extend(args);
        return Program::Sample(line);
    }
    if let Some((_, role)) = ROLES.iter().find(|(k, _)| name.contains(k)) {
        let mut line: Vec<String> = role.iter().map(|s| s.to_string()).collect();
        line.extend(args);
        return Program::Sample(line);
    }
    if !args.is_empty() {
        return Program::Command(args);
    }
    if IDLE.iter().any(|k| name.contains(k)) || name.is_empty() {
        return Program::Command(vec!["sleep".into(), "infinity".into()]);
    }
    Program::Command(vec!["sleep".into(), "infinity".into()])
}

/// Whether the image is known; unknown images without a command idle, with a warning.
pub fn is_known(c: &Container) -> bool {
    let name = image_name(c.image.as_deref().unwrap_or(""));
    c.command.as_ref().is_some_and(|c| !c.is_empty())
        || name == "proxyv2"
        || ironmesh_sample::role_for_image(c.image.as_deref().unwrap_or("")).is_some()
        || ROLES.iter().any(|(k, _)| name.contains(k))
        || IDLE.iter().any(|k| name.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(image: &str, command: Option<Vec<&str>>) -> Container {
        Container {
            name: "c".into(),
            image: Some(image.into()),
            command: command.map(|c| c.into_iter().map(String::from).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn maps_the_seed_images() {
        assert_eq!(
            program_for(&container(
                "docker.io/istio/examples-bookinfo-reviews-v3:1.16.2",
                None
            )),
            Program::Sample(vec!["reviews".into(), "--version".into(), "v3".into()])
        );
        assert_eq!(
            program_for(&container("docker.io/2456868764/httpbin:1.0.0", None)),
            Program::Sample(vec!["httpbin".into()])
        );
        assert_eq!(
            program_for(&container("nginx:1.25.3", None)),
            Program::Sample(vec!["static".into()])
        );
        assert_eq!(
            program_for(&container(
                "centos:7.9.2009",
                Some(vec!["tail", "-f", "/dev/null"])
            )),
            Program::Command(vec!["tail".into(), "-f".into(), "/dev/null".into()])
        );
        assert_eq!(
            program_for(&container("curlimages/curl", None)),
            Program::Command(vec!["sleep".into(), "infinity".into()])
        );
        assert!(!is_known(&container("example.com/unknown:1", None)));
    }
}
