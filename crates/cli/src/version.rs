//! `ironmesh version`.

use std::process::ExitCode;

use clap::ValueEnum;

#[derive(clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// The crates that make up the shipped binaries, with their versions. Every crate
/// takes its version from the workspace, so they move together.
fn components() -> Vec<(&'static str, &'static str)> {
    vec![
        ("ironmesh", env!("CARGO_PKG_VERSION")),
        ("ironmesh-config", ironmesh_config_version()),
        // Built from the same workspace, so they carry the same version.
        ("ironmesh-discovery", env!("CARGO_PKG_VERSION")),
    ]
}

fn ironmesh_config_version() -> &'static str {
    // The config crate shares the workspace version; read it from the crate itself so a
    // divergence would show.
    ironmesh_config::VERSION
}

pub fn run(args: Args) -> ExitCode {
    let comps = components();
    match args.output {
        Format::Text => {
            for (name, v) in comps {
                println!("{name:<20} {v}");
            }
        }
        Format::Json => {
            let map: serde_json::Map<String, serde_json::Value> = comps
                .into_iter()
                .map(|(n, v)| (n.to_string(), serde_json::Value::String(v.into())))
                .collect();
            println!("{}", serde_json::Value::Object(map));
        }
    }
    ExitCode::SUCCESS
}
