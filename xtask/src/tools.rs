//! Installing the toolchain pieces the build and the tests need, each only if missing.

use std::process::Command;

use crate::{Result, root, run};

const TRUNK_VERSION: &str = "0.21.14";
/// binaryen from npm: Debian's wasm-opt (108) points the `__wbindgen_externrefs` export at the
/// wrong table after optimising, which breaks every page at load. Keep in step with Trunk.toml.
const BINARYEN_VERSION: &str = "123.0.0";
/// terser from npm, for the release build's JavaScript (trunk's own minifier cannot parse
/// wasm-bindgen's glue; see `minify.rs`).
const TERSER_VERSION: &str = "5.51.4";

/// Where project-local tools live (outside git, inside `target/`).
pub fn tools_dir() -> std::path::PathBuf {
    root().join("target").join("tools")
}

/// PATH with the project-local tools first, for running trunk.
pub fn tool_path() -> std::ffi::OsString {
    let mut paths = vec![tools_dir().join("node_modules").join(".bin")];
    if let Some(path) = std::env::var_os("PATH") {
        paths.extend(std::env::split_paths(&path));
    }
    std::env::join_paths(paths).expect("PATH entries are valid")
}

/// A command's standard output, if it ran and succeeded.
pub fn output(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The wasm-bindgen version in Cargo.lock: the CLI must match it exactly, or trunk tries to
/// download one.
fn locked_wasm_bindgen() -> Result<String> {
    let lock = std::fs::read_to_string(root().join("Cargo.lock"))
        .map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == "name = \"wasm-bindgen\""
            && let Some(version) = lines
                .next()
                .and_then(|l| l.strip_prefix("version = \""))
                .and_then(|v| v.strip_suffix('"'))
        {
            return Ok(version.to_owned());
        }
    }
    Err("Cargo.lock has no wasm-bindgen".into())
}

pub fn apt_install(packages: &[&str]) -> Result {
    let sudo = output("id", &["-u"]).is_some_and(|uid| uid.trim() != "0");
    let apt = |args: &[&str]| {
        let mut cmd = if sudo {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        } else {
            Command::new("apt-get")
        };
        cmd.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        run(&mut cmd)
    };
    apt(&["update"])?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend_from_slice(packages);
    apt(&args)
}

pub fn ensure_build_tools() -> Result {
    let targets = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if !targets
        .lines()
        .any(|t| t.trim() == "wasm32-unknown-unknown")
    {
        run(Command::new("rustup").args(["target", "add", "wasm32-unknown-unknown"]))?;
    }

    let trunk = output("trunk", &["--version"]).unwrap_or_default();
    if !trunk.contains(TRUNK_VERSION) {
        // trunk 0.22 needs a newer rustc than this project's.
        run(Command::new("cargo").args([
            "install",
            "trunk",
            "--version",
            TRUNK_VERSION,
            "--locked",
        ]))?;
    }

    let wanted = locked_wasm_bindgen()?;
    let have = output("wasm-bindgen", &["--version"]).unwrap_or_default();
    if !have.split_whitespace().any(|v| v == wanted) {
        // Not --locked: one of its locked dependencies is no longer in the registry.
        run(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", &wanted]))?;
    }

    let wasm_opt = tools_dir()
        .join("node_modules")
        .join(".bin")
        .join("wasm-opt");
    let major = BINARYEN_VERSION.split('.').next().unwrap_or_default();
    let have_wasm_opt = output(wasm_opt.to_str().unwrap_or_default(), &["--version"])
        .unwrap_or_default()
        .contains(&format!("version {major}"));
    let have_terser = output(terser().to_str().unwrap_or_default(), &["--version"])
        .is_some_and(|v| v.split_whitespace().any(|w| w == TERSER_VERSION));
    if !have_wasm_opt || !have_terser {
        if output("npm", &["--version"]).is_none() {
            apt_install(&["nodejs", "npm"])?;
        }
        std::fs::create_dir_all(tools_dir())
            .map_err(|e| format!("cannot create tools dir: {e}"))?;
        // Both in one install: `--no-save` keeps no package.json, so a later install of one
        // would remove the other.
        run(Command::new("npm").args([
            "install",
            "--no-save",
            "--no-audit",
            "--no-fund",
            "--prefix",
            tools_dir().to_str().unwrap_or_default(),
            &format!("binaryen@{BINARYEN_VERSION}"),
            &format!("terser@{TERSER_VERSION}"),
        ]))?;
    }
    Ok(())
}

/// The project-local terser (installed by [`ensure_build_tools`]).
pub fn terser() -> std::path::PathBuf {
    tools_dir().join("node_modules").join(".bin").join("terser")
}

/// `perf`, for `cargo xtask bench --profile` only.
pub fn ensure_perf() -> Result {
    if output("perf", &["--version"]).is_none() {
        apt_install(&["linux-perf"])?;
    }
    Ok(())
}

/// geckodriver, from crates (Debian has none); a version checked with Debian's firefox-esr.
const GECKODRIVER_VERSION: &str = "0.37.1";

/// The browsers the tests drive: Debian's Chromium and chromedriver, Debian's Firefox ESR and
/// geckodriver.
pub fn ensure_test_browser() -> Result {
    let have_chromium = output("chromium", &["--version"]).is_some();
    let have_driver = output("chromedriver", &["--version"]).is_some();
    let have_firefox = output("firefox-esr", &["--version"]).is_some();
    let mut missing = Vec::new();
    if !(have_chromium && have_driver) {
        missing.extend(["chromium", "chromium-driver"]);
    }
    if !have_firefox {
        missing.push("firefox-esr");
    }
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    let gecko = output("geckodriver", &["--version"]).unwrap_or_default();
    if !gecko.contains(GECKODRIVER_VERSION) {
        run(Command::new("cargo").args([
            "install",
            "geckodriver",
            "--version",
            GECKODRIVER_VERSION,
            "--locked",
        ]))?;
    }
    Ok(())
}

/// What the NAT test builds its networks with (iproute2's `ip netns`, nftables), the TURN
/// relay it runs (coturn), and the Redis the server's multi-instance test runs
/// (redis-server), all from Debian.
pub fn ensure_test_network() -> Result {
    let mut missing = Vec::new();
    for (command, args, package) in [
        ("ip", &["-V"][..], "iproute2"),
        ("nft", &["--version"][..], "nftables"),
        ("turnserver", &["--version"][..], "coturn"),
        ("redis-server", &["--version"][..], "redis-server"),
    ] {
        if output(command, args).is_none() {
            missing.push(package);
        }
    }
    if !missing.is_empty() {
        apt_install(&missing)?;
    }
    Ok(())
}

/// Debian's Janus, the SFU calls above `--sfu-above` members go through: for `serve
/// --sfu-local` and the server's tests against a real Janus.
pub fn ensure_janus() -> Result {
    // `janus --version` prints its version and exits with 1: that it ran is what tells.
    let runs = Command::new("janus")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok();
    if !runs {
        apt_install(&[crate::janus::PACKAGE])?;
    }
    Ok(())
}

/// Debian's colour emoji font, for `cargo xtask screenshots`: without it Chromium draws most
/// of the app's emoji (the safety words' pictures, the reactions) as empty boxes.
pub fn ensure_emoji_font() -> Result {
    const PACKAGE: &str = "fonts-noto-color-emoji";
    let status = output("dpkg-query", &["-W", "-f=${Status}", PACKAGE]).unwrap_or_default();
    if status.trim() != "install ok installed" {
        apt_install(&[PACKAGE])?;
    }
    Ok(())
}
