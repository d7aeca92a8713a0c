//! `cargo xtask screenshots`: the pictures README.md shows, taken in headless Chromium (fake
//! camera, microphone and screen) from a real call through the real server.

use std::time::SystemTime;

use crate::{Result, build_app, dist, root, run_ignored_browser_test, tools};

/// What `tests/browser/screenshots.rs` writes, as `NAME.png`.
const PICTURES: [&str; 6] = ["home", "lobby", "call", "share", "chat", "phone"];

pub fn screenshots() -> Result {
    let started = SystemTime::now();
    tools::ensure_build_tools()?;
    tools::ensure_test_browser()?;
    tools::ensure_emoji_font()?;
    build_app()?;
    let out = root().join("docs").join("screenshots");
    std::fs::create_dir_all(&out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    // The build users get (dist/), not the test build: the pictures show what they see, and
    // nothing the pictures need is a test hook (the harness's recorder is injected by the
    // browser, not built into the app).
    run_ignored_browser_test(
        "screenshots::the_pictures_in_the_readme",
        &dist(),
        &[("CONCLAVE_SCREENSHOTS", out.clone())],
    )?;
    // A picture left over from an earlier run must not pass for a new one.
    for name in PICTURES {
        let path = out.join(format!("{name}.png"));
        let fresh = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|written| written >= started);
        if !fresh {
            return Err(format!("{} was not written", path.display()));
        }
        println!("{}", path.display());
    }
    Ok(())
}
