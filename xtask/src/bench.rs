//! `cargo xtask bench`: the frame-crypto benchmark (`crates/worker/benches/frame_crypto`) in
//! headless Chromium; `--profile`, the same under `perf` with V8's JIT dump, so the profile
//! shows the machine code Chromium made of our wasm; and `--record-trace`, which records the
//! call it replays.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::{Result, cargo, root, tools};

/// The benchmark prints this last; it is held back until the test runner's own summary is
/// through, so it ends the output.
const RATIO_PREFIX: &str = "ratio ours/webcrypto";

/// Where `--record-trace` writes, and what the benchmark embeds.
const TRACE: &str = "crates/worker/benches/trace/call-720p-60s.csv";

pub fn bench(args: &[String]) -> Result {
    match args {
        [flag] if flag == "--profile" => return profile(),
        [flag] if flag == "--record-trace" => return record_trace(),
        _ => {}
    }
    let (mut build, mut browser) = (Build::Relaxed, Browser::Chromium);
    for arg in args {
        match arg.as_str() {
            "--simd" => build = Build::Simd,
            "--portable" => build = Build::Portable,
            "--firefox" => browser = Browser::Firefox,
            _ => return Err(format!("unknown bench arguments {args:?}")),
        }
    }
    run_bench(build, browser, None)
}

/// Where the benchmark runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Browser {
    /// Debian's Chromium, through chromedriver.
    Chromium,
    /// Debian's Firefox ESR, through geckodriver (`--firefox`).
    Firefox,
}

/// Which build of the worker's frame cipher to measure.
#[derive(Clone, Copy)]
enum Build {
    /// The relaxed-SIMD worker's (the `relaxed` feature), which Chromium runs.
    Relaxed,
    /// The SIMD worker's (the `simd` feature), which browsers with WebAssembly SIMD but without
    /// relaxed SIMD run.
    Simd,
    /// The portable worker's, for browsers without.
    Portable,
}

/// A Chromium profile of our own, so leftovers of this run (and only those) can be killed.
struct Profile(std::path::PathBuf);

impl Drop for Profile {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(&self.0)
            .status();
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `perf` records the benchmark into this directory, if given; V8 writes its JIT dumps there.
fn run_bench(build: Build, browser: Browser, perf_dir: Option<&Path>) -> Result {
    tools::ensure_build_tools()?;
    tools::ensure_test_browser()?;
    let dir = root().join("target").join("bench");
    let binary = match browser {
        Browser::Chromium => "chromium",
        Browser::Firefox => "firefox-esr",
    };
    let profile = Profile(dir.join(format!("{binary}-{}", std::process::id())));
    std::fs::create_dir_all(&profile.0).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
    // wasm-bindgen-test-runner adds --headless and --no-sandbox to these.
    let mut args = vec![
        "--disable-gpu".to_owned(),
        "--no-first-run".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        format!("--user-data-dir={}", profile.0.display()),
    ];
    if let Some(perf_dir) = perf_dir {
        // --perf-prof also makes V8 write a code log, by default into the working directory
        // (the workspace): keep it with the profile.
        args.push(format!(
            "--js-flags=--perf-prof --perf-prof-path={dir} --no-logfile-per-isolate \
             --logfile={dir}/v8.log",
            dir = perf_dir.display()
        ));
    }
    let capabilities = match browser {
        Browser::Chromium => format!(
            r#"{{"goog:chromeOptions": {{"binary": "/usr/bin/chromium", "args": [{}]}}}}"#,
            args.iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        // The runner adds -headless; the profile directory is ours, as for Chromium.
        Browser::Firefox => format!(
            r#"{{"moz:firefoxOptions": {{"binary": "/usr/bin/firefox-esr", "args": ["-profile", {:?}]}}}}"#,
            profile.0.display().to_string()
        ),
    };
    let webdriver_json = dir.join("webdriver.json");
    std::fs::write(&webdriver_json, capabilities)
        .map_err(|e| format!("cannot write {webdriver_json:?}: {e}"))?;

    // The page only sees a reduced user agent (156.0.0.0); the binary knows its full version.
    if let Some(version) = tools::output(binary, &["--version"]) {
        println!("{binary}: {}", version.trim());
    }
    let bench_cmd = |extra: &[&str]| {
        let mut cmd = cargo();
        cmd.args([
            "test",
            "--release",
            "--target",
            "wasm32-unknown-unknown",
            "-p",
            "conclave-worker",
            "--bench",
            "frame_crypto",
        ]);
        match build {
            Build::Relaxed => cmd.args(["--features", "relaxed"]),
            Build::Simd => cmd.args(["--features", "simd"]),
            Build::Portable => &mut cmd,
        };
        cmd.args(extra)
            .env("CARGO_ENCODED_RUSTFLAGS", crate::wasm_flags::encoded());
        cmd
    };
    let mut cmd = match perf_dir {
        None => bench_cmd(&[]),
        Some(perf_dir) => {
            // Built first, so that the profile holds the benchmark and not the compiler.
            crate::run(bench_cmd(&["--no-run"]).current_dir(root()))?;
            let inner = bench_cmd(&[]);
            let mut perf = Command::new("perf");
            // perf inject --jit needs the monotonic clock V8 stamps its dumps with.
            perf.args(["record", "-k", "1", "-e", "cpu-clock", "-F", "1999", "-o"])
                .arg(perf_dir.join("perf.data"))
                .arg("--")
                .arg(inner.get_program())
                .args(inner.get_args());
            perf
        }
    };
    cmd.args(["--", "--nocapture"])
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        )
        .env_remove("GECKODRIVER_REMOTE")
        .env_remove("CHROMEDRIVER_REMOTE")
        .env("WASM_BINDGEN_TEST_WEBDRIVER_JSON", &webdriver_json)
        // The whole benchmark is one test of about a minute.
        .env("WASM_BINDGEN_TEST_TIMEOUT", "900")
        .stdout(Stdio::piped());
    // The runner takes the first driver it finds; make that the one asked for.
    match browser {
        Browser::Chromium => cmd
            .env("CHROMEDRIVER", "chromedriver")
            .env_remove("GECKODRIVER"),
        Browser::Firefox => cmd
            .env("GECKODRIVER", "geckodriver")
            .env_remove("CHROMEDRIVER"),
    };
    eprintln!("xtask: $ {cmd:?}");
    let mut child = cmd
        .current_dir(root())
        .spawn()
        .map_err(|e| format!("could not start cargo: {e}"))?;
    let mut ratio = None;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| format!("reading the benchmark's output: {e}"))?;
        if line.starts_with(RATIO_PREFIX) {
            ratio = Some(line);
        } else {
            println!("{line}");
        }
    }
    let status = child
        .wait()
        .map_err(|e| format!("waiting for cargo: {e}"))?;
    if !status.success() {
        return Err(format!("the benchmark failed ({status})"));
    }
    if let Some(ratio) = ratio {
        println!("{ratio}");
    }
    Ok(())
}

/// The benchmark under `perf`, then the functions it spent its time in. Chromium writes a dump
/// of every piece of code V8 makes, with its machine code; `perf inject --jit` joins it to the
/// samples, so `perf annotate` shows the instructions V8 made of each wasm function.
fn profile() -> Result {
    tools::ensure_perf()?;
    let dir = root().join("target").join("bench").join("profile");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {dir:?}: {e}"))?;
    run_bench(Build::Relaxed, Browser::Chromium, Some(&dir))?;
    let joined = dir.join("perf.jit.data");
    crate::run(
        Command::new("perf")
            .args(["inject", "--jit", "-i"])
            .arg(dir.join("perf.data"))
            .arg("-o")
            .arg(&joined),
    )?;
    let report = Command::new("perf")
        .args([
            "report",
            "--stdio",
            "--sort",
            "sym",
            "--percent-limit",
            "1",
            "-i",
        ])
        .arg(&joined)
        .output()
        .map_err(|e| format!("could not run perf report: {e}"))?;
    println!("\nwhere the time went (wasm functions are JS:<name>-<index>-<tier>):");
    for line in String::from_utf8_lossy(&report.stdout).lines() {
        if !line.starts_with('#') && !line.trim().is_empty() {
            println!("{line}");
        }
    }
    println!(
        "\ninstructions of one function: perf annotate --stdio -i {} -s '<symbol as above>'",
        joined.display()
    );
    Ok(())
}

/// Two headless Chromiums in a call through the real app and server; one records the frames
/// it sends for 60 s (sizes, never contents) into the trace the benchmark replays.
fn record_trace() -> Result {
    tools::ensure_build_tools()?;
    tools::ensure_test_browser()?;
    // The recording member needs `?debug=record-frames`, which only the test build has.
    crate::test_app::build()?;
    crate::run_ignored_browser_test(
        "trace::record_call_trace",
        &crate::test_app::dist(),
        &[("CONCLAVE_TRACE_OUT", root().join(TRACE))],
    )
}
