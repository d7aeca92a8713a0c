use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;
use conclave_server::{Config, Server, logging};

#[tokio::main]
async fn main() -> ExitCode {
    logging::init();
    raise_open_file_limit();
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

/// Every member holds a socket, and the usual soft limit of 1024 open files would refuse the
/// thousand-and-first; the hard limit is what the administrator allows, so take all of it.
#[cfg(unix)]
fn raise_open_file_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a struct we own.
    let raised = unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0
        }
    };
    if raised {
        tracing::debug!(open_files = lim.rlim_cur, "open-file limit");
    } else {
        tracing::warn!(
            err = %std::io::Error::last_os_error(),
            "cannot raise the open-file limit; it caps how many members can connect"
        );
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit() {}
