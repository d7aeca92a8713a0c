//! The release build's JavaScript minified with terser, and `index.html`'s integrity hashes
//! brought in line with it. Trunk minifies CSS and HTML (`Trunk.toml`), but its JavaScript
//! minifier cannot parse wasm-bindgen's glue and leaves it as it is.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use sha2::{Digest as _, Sha384};

use crate::{Result, files_under, read, run, tools};

/// Minifies every `.js` file under `dir` in place and rewrites, in `dir/index.html`, the
/// subresource-integrity hash of each file that changed (trunk hashes what it wrote; a stale
/// hash would make the browser refuse the app).
pub fn minify_js(dir: &Path) -> Result {
    let index = dir.join("index.html");
    let mut html = std::fs::read_to_string(&index)
        .map_err(|e| format!("cannot read {}: {e}", index.display()))?;
    let scripts = files_under(dir)?
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "js"));
    for path in scripts {
        let before = read(&path)?;
        run(Command::new(tools::terser())
            .arg(&path)
            .args(["--module", "--compress", "--mangle", "--output"])
            .arg(&path))?;
        html = html.replace(&integrity(&before), &integrity(&read(&path)?));
    }
    std::fs::write(&index, html).map_err(|e| format!("cannot write {}: {e}", index.display()))
}

/// The `integrity` value trunk writes: SHA-384, standard base64.
fn integrity(bytes: &[u8]) -> String {
    format!(
        "sha384-{}",
        base64::engine::general_purpose::STANDARD.encode(Sha384::digest(bytes))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integrity_is_what_browsers_check() {
        // `printf abc | openssl dgst -sha384 -binary | base64`
        assert_eq!(
            integrity(b"abc"),
            "sha384-ywB1P0WjXou1oD1pmsZQBycsMqsO3tFjGotgWkP/W+2AhgcroefMI1i67KE0yCWn"
        );
    }
}
