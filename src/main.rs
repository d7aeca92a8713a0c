//! The page binary: mounts the app.

fn main() {
    conclave::ui::mount();
}
