//! `ironmesh-discovery`: the control plane process (istiod's pilot-discovery).
//!
//! Wires the pieces: a watched config directory feeds the registry's store; each new
//! snapshot becomes an immutable PushContext; changes are debounced into pushes; the ADS
//! server (SotW + Delta) generates per proxy; HTTP serves `/ready` and `/debug/*`; the
//! monitoring port serves Prometheus metrics.

#![forbid(unsafe_code)]

mod app;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = app::Args::parse();
    app::init_logging(&args);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("discovery")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(app::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
