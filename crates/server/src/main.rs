use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use conclave_server::{Config, Server, logging};

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    let config = Config::parse();
    let server = match Server::bind(config).await {
        Ok(server) => server,
        Err(err) => {
            tracing::error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let url = match server.url() {
        Ok(url) => url,
        Err(err) => {
            tracing::error!(%err, "cannot read the bound address");
            return ExitCode::FAILURE;
        }
    };
    // The one line on stdout: with `--addr HOST:0`, tooling reads the port from it.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "Conclave is running at {url}");
    let _ = stdout.flush();
    drop(stdout);

    match server.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "server failed");
            ExitCode::FAILURE
        }
    }
}
