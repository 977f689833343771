//! The ROS 2 node binary.
fn main() {
    eprintln!("motedb_node: not yet implemented");
    std::process::exit(2);
}
