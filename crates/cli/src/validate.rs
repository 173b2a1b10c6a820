//! `ironmesh validate -f PATH...`: offline validation, one line per problem.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::ValueEnum;
use ironmesh_config::{load_paths, LoadOptions};

#[derive(clap::Args)]
pub struct Args {
    /// Files or directories to validate; `-` reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true, num_args = 1..)]
    files: Vec<PathBuf>,
    /// Output format: `text` for people, `json` for tools.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
    output: Format,
    /// Also fail (exit 1) on warnings.
    #[arg(long)]
    strict: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

pub fn run(args: Args) -> ExitCode {
    let loaded = match load_paths(&args.files, &LoadOptions::default()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            eprintln!("hint: check the path exists and is readable; use - to read stdin");
            return ExitCode::from(2);
        }
    };
    let errors = loaded.error_count();
    let warnings = loaded.warning_count();
    let failed = errors > 0 || (args.strict && warnings > 0);
    match args.output {
        Format::Text => {
            for d in &loaded.diagnostics {
                println!("{d}");
            }
            let mut what = format!(
                "{} object{}",
                loaded.objects.len(),
                plural(loaded.objects.len())
            );
            if !loaded.mesh_configs.is_empty() {
                let n = loaded.mesh_configs.len();
                what.push_str(&format!(" and {n} MeshConfig{}", plural(n)));
            }
            what.push_str(&format!(
                " in {} file{}",
                loaded.files,
                plural(loaded.files)
            ));
            if failed {
                println!(
                    "✘ {errors} error{}, {warnings} warning{} in {what}",
                    plural(errors),
                    plural(warnings)
                );
            } else if warnings > 0 {
                println!("✔ {what} valid ({warnings} warning{})", plural(warnings));
            } else {
                println!("✔ {what} valid");
            }
        }
        Format::Json => {
            let report = serde_json::json!({
                "valid": !failed,
                "files": loaded.files,
                "documents": loaded.documents,
                "objects": loaded.objects.len(),
                "meshConfigs": loaded.mesh_configs.len(),
                "errors": errors,
                "warnings": warnings,
                "diagnostics": loaded.diagnostics,
            });
            println!("{}", serde_json::to_string_pretty(&report).expect("json"));
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
