//! The ROS 2 node binary: `motedb_node [--ros-args ...]`.

fn main() {
    match motedb::node::run() {
        Ok(()) => {}
        Err(e) => {
            eprintln!("motedb_node: {e}");
            std::process::exit(1);
        }
    }
}
