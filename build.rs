//! Bindings and link settings for the ROS node (feature `node`, enabled by
//! each client library feature) only; plain builds need nothing from here.
//!
//! The recorder takes serialized messages at the rcl level, below any client
//! library (neither rclrs nor r2r exposes a serialized take with message
//! info), so bindgen generates the few rcl declarations it calls from the
//! installed headers (`src/node/rcl/wrapper.h`).
//!
//! The ROS 2 wheels' librcl loads `*_rosidl_generator_py.so` libraries that
//! need libpython symbols, so libpython is linked explicitly (with
//! `--no-as-needed`, or the linker drops it). RPATH (not RUNPATH, hence
//! `--disable-new-dtags`) covers every ROS library directory so that the
//! binaries run without LD_LIBRARY_PATH, including librcl's own dependencies.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=AMENT_PREFIX_PATH");
    println!("cargo:rerun-if-env-changed=MOTEDB_VENV");
    if env::var_os("CARGO_FEATURE_NODE").is_none() {
        return;
    }
    #[cfg(feature = "node")]
    rcl_bindings();
    let python = python_executable();
    let mut rpaths = ros_library_dirs();
    match python_link_info(&python) {
        Some((libdir, ldversion)) => {
            println!("cargo:rustc-link-search=native={libdir}");
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-lpython{ldversion}");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
            rpaths.push(PathBuf::from(libdir));
        }
        None => println!(
            "cargo:warning=could not ask {} for its LIBDIR; libpython not linked",
            python.display()
        ),
    }
    println!("cargo:rustc-link-arg=-Wl,--disable-new-dtags");
    for dir in rpaths {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
    }
}

/// The venv's python when there is one (scripts/setup), else python3.
fn python_executable() -> PathBuf {
    let venv = env::var_os("MOTEDB_VENV")
        .map(PathBuf::from)
        .or_else(|| env::var_os("CARGO_MANIFEST_DIR").map(|d| Path::new(&d).join(".venv")));
    match venv.map(|v| v.join("bin/python")) {
        Some(p) if p.exists() => p,
        _ => PathBuf::from("python3"),
    }
}

/// (LIBDIR, LDVERSION) from the interpreter's sysconfig.
fn python_link_info(python: &Path) -> Option<(String, String)> {
    let out = Command::new(python)
        .args([
            "-c",
            "import sysconfig as s; print(s.get_config_var('LIBDIR')); print(s.get_config_var('LDVERSION'))",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let mut lines = text.lines();
    let libdir = lines.next()?.trim().to_string();
    let ldversion = lines.next()?.trim().to_string();
    Some((libdir, ldversion))
}

/// `<prefix>/lib` of every ament prefix plus the wheels' `ros_*.libs`
/// directories (auditwheel-vendored dependencies of the ROS libraries).
fn ros_library_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let prefixes = env::var_os("AMENT_PREFIX_PATH").unwrap_or_default();
    for prefix in env::split_paths(&prefixes) {
        let lib = prefix.join("lib");
        if !lib.is_dir() {
            continue;
        }
        dirs.push(lib.clone());
        dirs.extend(vendored_lib_dirs(&lib));
    }
    dirs
}

fn vendored_lib_dirs(lib: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(lib) else {
        return found;
    };
    for py in entries.flatten() {
        if !py.file_name().to_string_lossy().starts_with("python") {
            continue;
        }
        let Ok(site) = std::fs::read_dir(py.path().join("site-packages")) else {
            continue;
        };
        for entry in site.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with("ros_") && name.ends_with(".libs") {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

/// `$OUT_DIR/rcl_bindings.rs` from `src/node/rcl/wrapper.h`, with the
/// include directories of every ament prefix (`<prefix>/include` and, in the
/// wheels' layout, `<prefix>/include/<pkg>`).
#[cfg(feature = "node")]
fn rcl_bindings() {
    let header = "src/node/rcl/wrapper.h";
    println!("cargo:rerun-if-changed={header}");
    let mut builder = bindgen::Builder::default()
        .header(header)
        .layout_tests(false)
        .size_t_is_usize(true)
        .generate_comments(false)
        .derive_default(false)
        .default_enum_style(bindgen::EnumVariation::Rust {
            non_exhaustive: false,
        })
        .allowlist_function("rcl_.*")
        .allowlist_function("rcutils_(get_error_string|reset_error|get_default_allocator)")
        .allowlist_function("rcutils_(get_zero_initialized_uint8_array|uint8_array_.*)")
        .allowlist_function("rmw_get_zero_initialized_.*")
        .allowlist_function("rmw_(names_and_types|topic_endpoint_info_array)_fini")
        .allowlist_function("rmw_feature_supported")
        .allowlist_type("rmw_qos_.*")
        .allowlist_var("RCL_RET_.*")
        .allowlist_var("RMW_RET_.*");
    let prefixes = env::var_os("AMENT_PREFIX_PATH").unwrap_or_default();
    for prefix in env::split_paths(&prefixes) {
        let include = prefix.join("include");
        let Ok(entries) = std::fs::read_dir(&include) else {
            continue;
        };
        builder = builder.clang_arg(format!("-I{}", include.display()));
        let mut dirs: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        for d in dirs {
            builder = builder.clang_arg(format!("-I{}", d.display()));
        }
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    builder
        .generate()
        .unwrap_or_else(|e| {
            panic!(
                "bindgen on {header} failed ({e}); is AMENT_PREFIX_PATH set (scripts/ros-env.sh)?"
            )
        })
        .write_to_file(out.join("rcl_bindings.rs"))
        .expect("write rcl_bindings.rs");
}
