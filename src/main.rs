//! The page binary: mounts the app.

// talc rather than std's dlmalloc (see the worker's crate root).
#[cfg(all(target_family = "wasm", not(target_feature = "atomics")))]
#[global_allocator]
static ALLOCATOR: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

fn main() {
    conclave::ui::mount();
}
