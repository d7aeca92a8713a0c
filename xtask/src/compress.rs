//! Brotli and gzip copies of the built app, next to each file (`NAME.br`, `NAME.gz`): the
//! server sends them to browsers that accept them, so users download the smallest form
//! without the server compressing anything per request.

use std::io::Write as _;
use std::path::Path;

use crate::{Result, files_under, read};

/// What browsers fetch as text or wasm; images and the like are compressed already.
const COMPRESSIBLE: [&str; 6] = ["wasm", "js", "css", "html", "svg", "json"];

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(bytes).expect("in-memory write");
    enc.finish().expect("in-memory write")
}

pub fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params).expect("in-memory write");
    out
}

/// Writes the copies for every compressible file under `dir`, dropping stale ones (trunk
/// leaves old copies alone, and a copy of an older build must never be served).
pub fn precompress(dir: &Path) -> Result {
    for path in files_under(dir)? {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !COMPRESSIBLE.contains(&ext) {
            continue;
        }
        let bytes = read(&path)?;
        for (suffix, packed) in [("br", brotli(&bytes)), ("gz", gzip(&bytes))] {
            let copy = path.with_file_name(format!(
                "{}.{suffix}",
                path.file_name().unwrap_or_default().to_string_lossy()
            ));
            if packed.len() < bytes.len() {
                std::fs::write(&copy, packed)
                    .map_err(|e| format!("cannot write {}: {e}", copy.display()))?;
            } else {
                let _ = std::fs::remove_file(&copy);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_round_trip_and_skip_what_does_not_shrink() {
        let dir = std::env::temp_dir().join(format!("conclave-precompress-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("snippets")).unwrap();
        let js = "export const x = 'conclave';\n".repeat(100);
        std::fs::write(dir.join("app.js"), &js).unwrap();
        std::fs::write(dir.join("snippets/inline0.js"), &js).unwrap();
        std::fs::write(dir.join("tiny.css"), "a{}").unwrap();
        std::fs::write(dir.join("tiny.css.br"), "stale").unwrap();
        std::fs::write(dir.join("photo.png"), &js).unwrap();
        precompress(&dir).unwrap();

        let mut back = Vec::new();
        let br = std::fs::read(dir.join("app.js.br")).unwrap();
        brotli::BrotliDecompress(&mut &br[..], &mut back).unwrap();
        assert_eq!(back, js.as_bytes());
        let gz = std::fs::read(dir.join("app.js.gz")).unwrap();
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut back).unwrap();
        assert_eq!(back, js.as_bytes());
        assert!(
            dir.join("snippets/inline0.js.br").exists(),
            "subdirectories too"
        );
        assert!(
            !dir.join("tiny.css.br").exists(),
            "a copy that does not shrink goes"
        );
        assert!(!dir.join("photo.png.br").exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
