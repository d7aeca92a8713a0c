//! What users download: each wasm file raw, gzip and brotli (as a server would send it).

use std::path::Path;

use crate::{Result, read};

fn gzip(bytes: &[u8]) -> usize {
    crate::compress::gzip(bytes).len()
}

fn brotli(bytes: &[u8]) -> usize {
    crate::compress::brotli(bytes).len()
}

pub fn report(dist: &Path) -> Result {
    let entries =
        std::fs::read_dir(dist).map_err(|e| format!("cannot read {}: {e}", dist.display()))?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm" || x == "js"))
        .collect();
    files.sort();
    println!(
        "{:<40} {:>10} {:>10} {:>10}",
        "file", "raw", "gzip", "brotli"
    );
    for path in files {
        let bytes = read(&path)?;
        println!(
            "{:<40} {:>10} {:>10} {:>10}",
            path.file_name().unwrap_or_default().to_string_lossy(),
            bytes.len(),
            gzip(&bytes),
            brotli(&bytes)
        );
    }
    Ok(())
}
