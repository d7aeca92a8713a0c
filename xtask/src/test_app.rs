//! The test build of the app, into `dist-test/`: the same page, with the `test-hooks` feature
//! (the `?debug=...` switches) compiled into the page and all three worker builds. Browser
//! tests and `bench --record-trace` use it; `serve`, `build` and `measure` never do.
//!
//! A link's `data-cargo-features` replaces trunk's `--features` rather than adding to it, so
//! `trunk build --features test-hooks` would leave the SIMD workers without the hooks. Instead
//! trunk builds a copy of `index.html` whose every Rust link asks for the feature itself. The
//! copy sits next to `index.html` (its paths are relative to it) and goes once built.

use std::path::PathBuf;
use std::process::Command;

use crate::{Result, compress, root, run, tools};

const FEATURE: &str = "test-hooks";
/// Gitignored, like `dist-test/`.
const HTML: &str = "index.test.html";

pub fn dist() -> PathBuf {
    root().join("dist-test")
}

pub fn build() -> Result {
    let source = root().join("index.html");
    let html = std::fs::read_to_string(&source)
        .map_err(|e| format!("cannot read {}: {e}", source.display()))?;
    let page = GeneratedPage(root().join(HTML));
    std::fs::write(&page.0, with_feature(&html)?)
        .map_err(|e| format!("cannot write {}: {e}", page.0.display()))?;
    run(Command::new("trunk")
        .args(["build", "--release", "--html-output", "index.html"])
        .arg("--dist")
        .arg(dist())
        .arg(HTML)
        .env("PATH", tools::tool_path())
        .env("CARGO_ENCODED_RUSTFLAGS", crate::wasm_flags::encoded()))?;
    drop(page);
    crate::worker_names::fingerprint(&dist())?;
    compress::precompress(&dist())
}

/// The generated page, removed however the build ends.
struct GeneratedPage(PathBuf);

impl Drop for GeneratedPage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// `html` with [`FEATURE`] added to every `<link data-trunk rel="rust" ...>`. Fails if there is
/// none, so a changed `index.html` cannot silently give a test build without hooks.
fn with_feature(html: &str) -> Result<String> {
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html;
    let mut links = 0;
    while let Some(start) = rest.find("<link") {
        out.push_str(&rest[..start]);
        let len = rest[start..]
            .find('>')
            .ok_or("index.html: a <link> tag does not end")?
            + 1;
        let tag = &rest[start..start + len];
        if tag.contains("data-trunk") && tag.contains(r#"rel="rust""#) {
            out.push_str(&tag_with_feature(tag)?);
            links += 1;
        } else {
            out.push_str(tag);
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    if links == 0 {
        return Err("index.html has no <link data-trunk rel=\"rust\"> to build".into());
    }
    Ok(out)
}

fn tag_with_feature(tag: &str) -> Result<String> {
    const ATTR: &str = r#"data-cargo-features=""#;
    if let Some(at) = tag.find(ATTR) {
        let value = at + ATTR.len();
        let end = value
            + tag[value..]
                .find('"')
                .ok_or("index.html: data-cargo-features is not closed")?;
        let sep = if end == value { "" } else { "," };
        return Ok(format!("{}{sep}{FEATURE}{}", &tag[..end], &tag[end..]));
    }
    let (body, close) = match tag.strip_suffix("/>") {
        Some(body) => (body, " />"),
        None => (tag.strip_suffix('>').unwrap_or(tag), ">"),
    };
    Ok(format!(
        r#"{} data-cargo-features="{FEATURE}"{close}"#,
        body.trim_end()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rust_link_gets_the_feature_and_nothing_else_changes() {
        let html = r#"<head>
    <link rel="icon" href="data:," />
    <link data-trunk rel="css" href="style/main.css" />
    <link data-trunk rel="rust" href="Cargo.toml" data-bin="conclave" data-wasm-opt="z" />
    <link data-trunk rel="rust" data-bin="worker-simd" data-cargo-features="simd" data-x="y">
    <link data-trunk rel="rust" data-bin="empty" data-cargo-features="" />
    <link data-trunk rel="rust" data-bin="open">
</head>"#;
        assert_eq!(
            with_feature(html).unwrap(),
            r#"<head>
    <link rel="icon" href="data:," />
    <link data-trunk rel="css" href="style/main.css" />
    <link data-trunk rel="rust" href="Cargo.toml" data-bin="conclave" data-wasm-opt="z" data-cargo-features="test-hooks" />
    <link data-trunk rel="rust" data-bin="worker-simd" data-cargo-features="simd,test-hooks" data-x="y">
    <link data-trunk rel="rust" data-bin="empty" data-cargo-features="test-hooks" />
    <link data-trunk rel="rust" data-bin="open" data-cargo-features="test-hooks">
</head>"#
        );
    }

    #[test]
    fn the_real_page_gets_it_on_all_four_binaries() {
        let html = std::fs::read_to_string(root().join("index.html")).unwrap();
        let built = with_feature(&html).unwrap();
        assert_eq!(built.matches(FEATURE).count(), 4, "{built}");
        assert!(built.contains(r#"data-cargo-features="relaxed,test-hooks""#));
    }

    #[test]
    fn a_page_without_rust_is_refused() {
        assert!(with_feature(r#"<link data-trunk rel="css" href="a.css" />"#).is_err());
    }
}
