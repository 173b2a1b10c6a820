//! `ironmesh-sample <role>`: the stand-ins for the sample images the seeds' manifests
//! run (httpbin, nginx, bookinfo, sleep). See docs/sample.md.

#![forbid(unsafe_code)]

mod bookinfo;
mod clock;
mod httpbin;
mod nginx;
mod server;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use ironmesh_sample::Role;
use server::{Handler, LogStyle};

#[derive(Parser)]
#[command(
    name = "ironmesh-sample",
    version,
    about = "Sample applications for ironmesh: httpbin, nginx's page, bookinfo and sleep"
)]
struct Cli {
    #[command(subcommand)]
    role: RoleCmd,
}

#[derive(Subcommand)]
enum RoleCmd {
    /// httpbin: /headers, /get, /ip, /user-agent, /anything, /status/{code}, /delay/{s},
    /// /response-headers (port 80)
    Httpbin(Serve),
    /// nginx's welcome page (615 bytes) for / and /index.html, 404 otherwise (port 80)
    Static(Serve),
    /// bookinfo productpage: /productpage calls details and reviews (port 9080)
    Productpage(Bookinfo),
    /// bookinfo details: /details/{id} (port 9080)
    Details(Bookinfo),
    /// bookinfo reviews: /reviews/{id}; v1 no ratings, v2 black stars, v3 red stars,
    /// v2/v3 call ratings (port 9080)
    Reviews(Bookinfo),
    /// bookinfo ratings: /ratings/{id} (port 9080); version v-faulty or v-delayed
    /// misbehave like the real image's
    Ratings(Bookinfo),
    /// Sleeps until stopped: the container `ironmesh exec … curl` runs in
    Sleep(Sleep),
}

#[derive(Args)]
struct Serve {
    /// Port to listen on (0 picks a free one; the chosen address is printed as
    /// `listening on ADDR`). Defaults to the real image's port.
    #[arg(long)]
    port: Option<u16>,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::UNSPECIFIED))]
    bind: IpAddr,
}

#[derive(Args)]
struct Bookinfo {
    #[command(flatten)]
    serve: Serve,
    /// Service version (the real images read SERVICE_VERSION).
    #[arg(long, env = "SERVICE_VERSION", default_value = "v1")]
    version: String,
}

#[derive(Args)]
struct Sleep {
    /// Exit after this many seconds instead of sleeping forever.
    #[arg(long)]
    seconds: Option<u64>,
}

impl Serve {
    fn addr(&self, role: Role) -> SocketAddr {
        let port = self.port.or(role.default_port()).unwrap_or(0);
        SocketAddr::new(self.bind, port)
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(cli.role))
}

async fn run(cmd: RoleCmd) -> anyhow::Result<()> {
    let (role, serve, handler, style): (Role, Serve, Handler, LogStyle) = match cmd {
        RoleCmd::Sleep(s) => return sleep(s.seconds).await,
        RoleCmd::Httpbin(s) => (Role::Httpbin, s, httpbin::handler(), LogStyle::Plain),
        RoleCmd::Static(s) => (Role::Static, s, nginx::handler(), LogStyle::Nginx),
        RoleCmd::Productpage(b) => (
            Role::Productpage,
            b.serve,
            bookinfo::productpage::handler(),
            LogStyle::Plain,
        ),
        RoleCmd::Details(b) => (
            Role::Details,
            b.serve,
            bookinfo::services::details(),
            LogStyle::Plain,
        ),
        RoleCmd::Reviews(b) => {
            if !matches!(b.version.as_str(), "v1" | "v2" | "v3") {
                anyhow::bail!(
                    "reviews --version must be v1, v2 or v3 (got {:?})",
                    b.version
                );
            }
            let config = bookinfo::services::ReviewsConfig::from_env(&b.version);
            (
                Role::Reviews,
                b.serve,
                bookinfo::services::reviews(config),
                LogStyle::Plain,
            )
        }
        RoleCmd::Ratings(b) => (
            Role::Ratings,
            b.serve,
            bookinfo::services::ratings(b.version),
            LogStyle::Plain,
        ),
    };
    let stop = terminated();
    let listener = server::bind(serve.addr(role)).await?;
    tokio::select! {
        result = server::serve(listener, handler, style) => result,
        () = stop => Ok(()),
    }
}

async fn sleep(seconds: Option<u64>) -> anyhow::Result<()> {
    let wait = async {
        match seconds {
            Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
            None => std::future::pending::<()>().await,
        }
    };
    let stop = terminated();
    tokio::select! {
        () = wait => {}
        () = stop => {}
    }
    Ok(())
}

/// SIGTERM (what `ironmesh down` and Kubernetes send) or SIGINT: exit 0 so the runtime
/// does not count a normal stop as a crash. The handlers are registered when this is
/// called, not when it is first polled: callers call it before they bind and announce
/// themselves, so a SIGTERM right after the `listening` line never meets the default
/// action (death by signal).
fn terminated() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
}
