//! Content-hashed names for the frame worker's files. Trunk hashes the app's files but names a
//! worker's after its binary (the loader it writes imports the glue by that name), so they were
//! served `no-cache`: every visit asked for all three again, one after the other (the loader
//! imports the glue, the glue fetches the wasm), before the worker could start. Here each file
//! gets its content's hash in its name (the server then lets browsers keep it), the glue and
//! the loader are rewritten to the new names, and `index.html` gets, per build, a
//! `<meta name="conclave-worker-BUILD" content="LOADER GLUE WASM">` that the page reads, so it
//! can also fetch the glue and the wasm itself while the worker loads its loader.

use std::path::Path;

use sha2::{Digest as _, Sha256};

use crate::{Result, read};

/// The worker's builds, as `index.html` names them (`data-bin`).
const BUILDS: [&str; 3] = ["worker", "worker-simd", "worker-relaxed"];

/// Renames every worker build's files under `dir` and records the names in `dir/index.html`.
pub fn fingerprint(dir: &Path) -> Result {
    let index = dir.join("index.html");
    let mut html = std::fs::read_to_string(&index)
        .map_err(|e| format!("cannot read {}: {e}", index.display()))?;
    for build in BUILDS {
        let text = |name: &str| -> Result<String> {
            String::from_utf8(read(&dir.join(name))?).map_err(|_| format!("{name}: not UTF-8"))
        };
        let files = Files {
            wasm: read(&dir.join(format!("{build}_bg.wasm")))?,
            glue: text(&format!("{build}.js"))?,
            loader: text(&format!("{build}_loader.js"))?,
        };
        let named = files.named(build)?;
        for (old, new, bytes) in [
            (
                format!("{build}_bg.wasm"),
                &named.wasm,
                files.wasm.as_slice(),
            ),
            (
                format!("{build}.js"),
                &named.glue,
                named.glue_text.as_bytes(),
            ),
            (
                format!("{build}_loader.js"),
                &named.loader,
                named.loader_text.as_bytes(),
            ),
        ] {
            std::fs::write(dir.join(new), bytes).map_err(|e| format!("cannot write {new}: {e}"))?;
            std::fs::remove_file(dir.join(&old))
                .map_err(|e| format!("cannot remove {old}: {e}"))?;
        }
        html = with_meta(&html, &named.meta(build))?;
    }
    std::fs::write(&index, html).map_err(|e| format!("cannot write {}: {e}", index.display()))
}

/// One build's files as trunk wrote them.
struct Files {
    wasm: Vec<u8>,
    glue: String,
    loader: String,
}

/// Their new names, and the glue and loader rewritten to name each other by them.
#[derive(Debug)]
struct Named {
    wasm: String,
    glue: String,
    glue_text: String,
    loader: String,
    loader_text: String,
}

impl Files {
    /// The wasm is named after its own hash, the glue after its hash once it names that wasm,
    /// the loader after its hash once it names that glue: a changed wasm changes all three.
    fn named(&self, build: &str) -> Result<Named> {
        let wasm = format!("{build}-{}_bg.wasm", short_hash(&self.wasm));
        let glue_text = replace_once(&self.glue, &format!("{build}_bg.wasm"), &wasm)?;
        let glue = format!("{build}-{}.js", short_hash(glue_text.as_bytes()));
        let loader_text =
            replace_once(&self.loader, &format!("./{build}.js"), &format!("./{glue}"))?;
        let loader = format!("{build}_loader-{}.js", short_hash(loader_text.as_bytes()));
        Ok(Named {
            wasm,
            glue,
            glue_text,
            loader,
            loader_text,
        })
    }
}

impl Named {
    fn meta(&self, build: &str) -> String {
        format!(
            r#"<meta name="conclave-{build}" content="/{} /{} /{}">"#,
            self.loader, self.glue, self.wasm
        )
    }
}

/// `text` with the one quoted occurrence of `name` replaced by `new`; quoted, so a longer name
/// that ends in `name` is never taken for it.
fn replace_once(text: &str, name: &str, new: &str) -> Result<String> {
    for quote in ['"', '\''] {
        let quoted = format!("{quote}{name}{quote}");
        match text.matches(&quoted).count() {
            0 => continue,
            1 => return Ok(text.replace(&quoted, &format!("{quote}{new}{quote}"))),
            n => return Err(format!("{name} is named {n} times; expected once")),
        }
    }
    Err(format!(
        "{name} is not named: did wasm-bindgen or trunk change how they refer to it?"
    ))
}

/// 16 hex digits of SHA-256, as long as trunk's own.
fn short_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn with_meta(html: &str, meta: &str) -> Result<String> {
    let at = html
        .find("</head>")
        .ok_or("index.html has no </head> for the worker's names")?;
    Ok(format!("{}{meta}{}", &html[..at], &html[at..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(build: &str, wasm: &[u8]) -> Files {
        Files {
            wasm: wasm.to_vec(),
            glue: format!("e=new URL('{build}_bg.wasm',import.meta.url)"),
            loader: format!(r#"import r from"./{build}.js";await r();"#),
        }
    }

    #[test]
    fn each_file_names_the_next_by_its_new_name() {
        let named = files("worker-simd", b"\0asm").named("worker-simd").unwrap();
        assert!(named.wasm.starts_with("worker-simd-") && named.wasm.ends_with("_bg.wasm"));
        assert_eq!(
            named.glue_text,
            format!("e=new URL('{}',import.meta.url)", named.wasm)
        );
        assert_eq!(
            named.loader_text,
            format!(r#"import r from"./{}";await r();"#, named.glue)
        );
        assert!(named.loader.starts_with("worker-simd_loader-"));
    }

    #[test]
    fn another_wasm_renames_all_three() {
        let one = files("worker-simd", b"\0asm one")
            .named("worker-simd")
            .unwrap();
        let two = files("worker-simd", b"\0asm two")
            .named("worker-simd")
            .unwrap();
        assert_ne!(one.wasm, two.wasm);
        assert_ne!(one.glue, two.glue);
        assert_ne!(one.loader, two.loader);
        let again = files("worker-simd", b"\0asm one")
            .named("worker-simd")
            .unwrap();
        assert_eq!(one.loader, again.loader);
    }

    #[test]
    fn a_name_found_twice_or_not_at_all_stops_the_build() {
        assert!(replace_once("'a.js' 'a.js'", "a.js", "b.js").is_err());
        assert!(replace_once("'xa.js'", "a.js", "b.js").is_err());
        assert_eq!(
            replace_once("\"a.js\"", "a.js", "b.js").unwrap(),
            "\"b.js\""
        );
    }

    #[test]
    fn the_names_go_in_the_head() {
        let named = files("worker", b"\0asm").named("worker").unwrap();
        let html = with_meta("<head><title>x</title></head><body>", &named.meta("worker")).unwrap();
        assert!(html.contains(&format!(
            r#"<meta name="conclave-worker" content="/{} /{} /{}"></head>"#,
            named.loader, named.glue, named.wasm
        )));
    }
}
