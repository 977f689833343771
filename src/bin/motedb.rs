//! The offline `motedb` CLI.
fn main() {
    eprintln!("motedb: not yet implemented");
    std::process::exit(2);
}
