use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use conclave_server::{Config, logging, run};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    let config = Config::parse();
    let listener = match TcpListener::bind(&config.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!(addr = %config.addr, %err, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(err) => {
            tracing::error!(%err, "cannot read the bound address");
            return ExitCode::FAILURE;
        }
    };
    // The one line on stdout: with `--addr HOST:0`, tooling reads the port from it.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "Conclave is running at http://{addr}/");
    let _ = stdout.flush();
    drop(stdout);

    match run(config, listener).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "server failed");
            ExitCode::FAILURE
        }
    }
}
