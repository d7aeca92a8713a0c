//! The frame worker binary; trunk builds it as a module worker next to the page.

fn main() {
    conclave_worker::start();
}
