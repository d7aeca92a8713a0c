//! Project tooling: `cargo xtask serve`, `test`, `load` and more. Installs what is missing,
//! using only the package registries (cargo, apt): nothing downloads its own binaries.

mod bench;
mod compress;
mod coturn;
pub mod janus;
mod load;
mod minify;
mod screenshots;
mod sizes;
mod test_app;
mod tools;
mod wasm_flags;
mod worker_names;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  serve [SERVER FLAGS]       install what is missing, build the app (release) and run the server;
                             every flag goes to the server (`serve --help` lists them),
                             and --turn-local also runs Debian's coturn next to it as the
                             TURN relay (installed if missing), wired to the server;
                             --sfu-local runs Debian's Janus as the SFU for large calls
                             the same way (only the VideoRoom plugin, APIs on loopback)
  test                       install what is missing (incl. the test browser), build the app
                             into dist/ and its test build (with the ?debug= hooks) into
                             dist-test/, and run every test
  build                      install what is missing and build the app into dist/
  build --test-hooks         the same for the test build, into dist-test/ (what single
                             browser tests run on: CONCLAVE_DIST=dist-test)
  measure                    build, then report wasm sizes and time to first remote frame
                             (on loopback, and with the server 40 ms away each way)
  bench                      frame crypto in headless Chromium: ours against WebCrypto, per
                             frame size and over a recorded call (ratio on the last line);
                             measures the relaxed-SIMD worker's cipher (Chromium's)
  bench --simd               the same for the SIMD worker's cipher (no relaxed SIMD)
  bench --portable           the same for the portable worker's cipher (no WebAssembly SIMD)
  bench --firefox            any of the three in headless Firefox (geckodriver) instead
  bench --profile            the relaxed-SIMD run under perf (installs it), with the machine
                             code V8 made of our wasm; lists where the time went
  bench --record-trace       record that call again: two headless Chromiums through the app's
                             test build (dist-test/) and the real server, 60 s of 1280x720
                             VP8 and Opus
  screenshots                take the pictures README.md shows (home, lobby, a call, a shared
                             screen, the chat) in headless Chromium, into docs/screenshots/
";

fn main() -> ExitCode {
    let usage = format!("{USAGE}{}", load::USAGE);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("serve") => serve(&args[1..]),
        Some("test") => test(),
        Some("build") => tools::ensure_build_tools().and_then(|_| match &args[1..] {
            [] => build_app(),
            [flag] if flag == "--test-hooks" => test_app::build(),
            other => Err(format!("unknown build arguments {other:?}")),
        }),
        Some("measure") => measure(),
        Some("bench") => bench::bench(&args[1..]),
        Some("screenshots") => screenshots::screenshots(),
        Some("load") => load::load(&args[1..]),
        _ => {
            eprintln!("{usage}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("xtask: {err}");
            ExitCode::FAILURE
        }
    }
}

pub type Result<T = ()> = std::result::Result<T, String>;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// How a command is shown: program, arguments and the environment it is given, except the
/// values of anything secret (the TURN secret goes to the server this way).
fn shown(cmd: &Command) -> String {
    let mut out = String::new();
    for (key, value) in cmd.get_envs() {
        let key = key.to_string_lossy();
        let value = if key.contains("SECRET") {
            "[redacted]".into()
        } else {
            value.map(|v| v.to_string_lossy()).unwrap_or_default()
        };
        out.push_str(&format!("{key}={value:?} "));
    }
    out.push_str(&format!("{:?}", cmd.get_program()));
    for arg in cmd.get_args() {
        out.push_str(&format!(" {arg:?}"));
    }
    out
}

/// Makes `cmd` receive SIGTERM when xtask dies, however it dies: the server and the relay
/// `serve` starts must not outlive it.
pub fn stop_with_xtask(cmd: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: prctl is async-signal-safe and touches nothing of the parent's.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Runs a command in the workspace root, failing with its name if it fails.
pub fn run(cmd: &mut Command) -> Result {
    let shown = shown(cmd);
    eprintln!("xtask: $ {shown}");
    let status = cmd
        .current_dir(root())
        .status()
        .map_err(|e| format!("could not start {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Where the app users get is built: no test hooks in it.
pub fn dist() -> PathBuf {
    root().join("dist")
}

/// The bytes of `path`, with its name in the error.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Every file under `dir`, subdirectories included (a build's `snippets/`).
pub fn files_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
            .path();
        if path.is_dir() {
            files.extend(files_under(&path)?);
        } else {
            files.push(path);
        }
    }
    Ok(files)
}

pub fn build_app() -> Result {
    run(Command::new("trunk")
        .args(["build", "--release"])
        .env("PATH", tools::tool_path())
        .env("CARGO_ENCODED_RUSTFLAGS", wasm_flags::encoded()))?;
    minify::minify_js(&dist())?;
    worker_names::fingerprint(&dist())?;
    compress::precompress(&dist())
}

fn serve(args: &[String]) -> Result {
    let turn_local = args.iter().any(|a| a == "--turn-local");
    let sfu_local = args.iter().any(|a| a == "--sfu-local");
    let mut args: Vec<String> = args
        .iter()
        .filter(|a| *a != "--turn-local" && *a != "--sfu-local" && *a != "--")
        .cloned()
        .collect();
    let help = args.iter().any(|a| a == "--help" || a == "-h");
    if !help {
        tools::ensure_build_tools()?;
        build_app()?;
    }
    // Kept alive until the server exits, then stopped.
    let turn = if turn_local && !help {
        Some(coturn::start(&args)?)
    } else {
        None
    };
    let sfu = if sfu_local && !help {
        tools::ensure_janus()?;
        let dir = root().join("target").join("janus-local");
        let janus = janus::Janus::start_local(&dir)?;
        eprintln!(
            "xtask: Janus is the SFU (API {}, admin {}; log: {}); stopped with the server",
            janus.settings.ws_url(),
            janus.settings.admin_url(),
            janus.log_path().display()
        );
        Some(janus)
    } else {
        None
    };
    let mut server = cargo();
    server.args([
        "run",
        "--release",
        "-p",
        "conclave-server",
        "--",
        "--static-dir",
    ]);
    server.arg(dist());
    if let Some(turn) = &turn {
        for url in &turn.urls {
            args.extend(["--turn".to_owned(), url.clone()]);
        }
        // Through the environment: a command line is visible to every user of the machine.
        server.env("CONCLAVE_TURN_SECRET", &turn.secret);
    }
    if let Some(sfu) = &sfu {
        // The secrets stay in their file; only its path is on the command line.
        args.extend(sfu.server_args());
    }
    // Members come back as themselves across a restart of `serve` too.
    let keyed = args.iter().any(|a| a.starts_with("--resume-key-file"))
        || std::env::var_os("CONCLAVE_RESUME_KEY_FILE").is_some();
    if !keyed {
        server.arg("--resume-key-file");
        server.arg(
            root()
                .join("target")
                .join("conclave-state")
                .join("resume.key"),
        );
    }
    server.args(args);
    // `cargo run` replaces itself with the server, which then goes when xtask does.
    stop_with_xtask(&mut server);
    run(&mut server)
}

fn test() -> Result {
    let started = std::time::Instant::now();
    tools::ensure_build_tools()?;
    tools::ensure_test_browser()?;
    tools::ensure_test_network()?;
    // crates/server/tests/sfu.rs runs a real Janus.
    tools::ensure_janus()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // --all-targets: the frame-crypto benchmark only compiles for wasm32, so this is where
    // it gets checked (it is run by `cargo xtask bench`, never here).
    // With the relaxed-SIMD worker's feature on, so the SIMD AES-GCM is what gets linted (all
    // of it but the one line that differs without relaxed SIMD); once as users get the app
    // and once as the test build, with its hooks.
    for features in [
        "conclave-worker/relaxed,conclave-gcm/relaxed",
        "conclave-worker/relaxed,conclave-gcm/relaxed,conclave/test-hooks,conclave-worker/test-hooks",
    ] {
        run(cargo().args([
            "clippy",
            "-p",
            "conclave",
            "-p",
            "conclave-worker",
            "-p",
            "conclave-gcm",
            "--target",
            "wasm32-unknown-unknown",
            "--all-targets",
            "--features",
            features,
            "--",
            "-D",
            "warnings",
        ]))?;
    }
    // The SIMD AES-GCM's own suite (vectors, Wycheproof, differential against RustCrypto),
    // compiled exactly as each SIMD worker compiles it and run in Node's V8: native tests only
    // reach its portable emulation. Node 20 has relaxed SIMD behind a flag.
    for feature in ["simd", "relaxed"] {
        run(cargo()
            .args([
                "test",
                "-p",
                "conclave-gcm",
                "--target",
                "wasm32-unknown-unknown",
                "--release",
                "--features",
                feature,
            ])
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                "wasm-bindgen-test-runner",
            )
            .env("NODE_ARGS", "--experimental-wasm-relaxed-simd")
            .env("CARGO_ENCODED_RUSTFLAGS", wasm_flags::encoded()))?;
    }
    // The browser tests run on the test build; `release.rs` checks that the build users get
    // ignores the hooks' switches.
    build_app()?;
    test_app::build()?;
    // The browser tests drive the real server binary; build it before they look for it.
    run(cargo().args(["build", "-p", "conclave-server"]))?;
    // With --nocapture a test's panic is printed where it happened, in the middle of twenty
    // minutes of output; the browser tests also append it to this file, shown again last.
    let failures = root().join("target").join("browser-test-failures.txt");
    let _ = std::fs::remove_file(&failures);
    let tests = run(cargo()
        .args(["test", "--workspace", "--", "--nocapture"])
        .env("CONCLAVE_DIST", test_app::dist())
        .env("CONCLAVE_RELEASE_DIST", dist())
        .env("CONCLAVE_FAILURE_LOG", &failures));
    if tests.is_err()
        && let Ok(text) = std::fs::read_to_string(&failures)
    {
        eprintln!("xtask: what the failed browser tests said when they failed:\n{text}");
    }
    tests?;
    eprintln!(
        "xtask: every test passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn measure() -> Result {
    tools::ensure_build_tools()?;
    tools::ensure_test_browser()?;
    build_app()?;
    sizes::report(&dist())?;
    // What users get, without hooks.
    run_ignored_browser_test("measure::time_to_first_remote_frame", &dist(), &[])?;
    run_ignored_browser_test(
        "measure::time_to_first_remote_frame_with_a_distant_server",
        &dist(),
        &[],
    )
}

/// Runs one of the browser "tests" that measure or record rather than check (they are
/// `#[ignore]`d, so `cargo xtask test` skips them) against the real server and the app built
/// into `app` (`dist/`, or the test build where it needs a hook).
pub fn run_ignored_browser_test(name: &str, app: &Path, env: &[(&str, PathBuf)]) -> Result {
    run(cargo().args(["build", "-p", "conclave-server"]))?;
    let mut cmd = cargo();
    cmd.args([
        "test",
        "-p",
        "conclave",
        "--test",
        "browser",
        "--",
        "--ignored",
        "--exact",
        "--nocapture",
        name,
    ])
    .env("CONCLAVE_DIST", app);
    for (key, value) in env {
        cmd.env(key, value);
    }
    run(&mut cmd)
}
