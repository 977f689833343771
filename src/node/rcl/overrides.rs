//! Parameter overrides (`-p name:=value`, `--params-file`) as rcl parses
//! them from the command line, for the node's fully qualified name. rclrs
//! keeps its override map private and offers no way to list it, and the
//! node needs the whole list: to read `qos_overrides.<topic>.*` (names not
//! known in advance) and to warn about names it does not know.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;

use super::ffi::*;
use super::{check, RclError};
use crate::node::params::ParamValue;

/// Overrides that apply to the node `fqn` (e.g. `/robot1/motedb`), from
/// `args` (the process arguments, program name first). Later sources win,
/// as in rcl: a node-specific entry over a wildcard one.
pub fn parameter_overrides(
    args: &[String],
    fqn: &str,
) -> Result<BTreeMap<String, ParamValue>, RclError> {
    let c_args: Vec<CString> = args
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<_, _>>()
        .map_err(|_| RclError {
            call: "rcl_parse_arguments",
            code: RCL_RET_INVALID_ARGUMENT as i32,
            detail: "an argument contains a NUL byte".into(),
        })?;
    let ptrs: Vec<*const c_char> = c_args.iter().map(|a| a.as_ptr()).collect();
    let argc = i32::try_from(ptrs.len()).unwrap_or(i32::MAX);
    let mut out = BTreeMap::new();
    // SAFETY: argv outlives the call; the parsed arguments and the params
    // structure are finalized below on every path after a successful init.
    unsafe {
        let mut parsed = rcl_get_zero_initialized_arguments();
        check(
            "rcl_parse_arguments",
            rcl_parse_arguments(
                argc,
                ptrs.as_ptr(),
                rcutils_get_default_allocator(),
                &mut parsed,
            ),
        )?;
        let mut params: *mut rcl_params_t = std::ptr::null_mut();
        let got = check(
            "rcl_arguments_get_param_overrides",
            rcl_arguments_get_param_overrides(&parsed, &mut params),
        );
        if got.is_ok() && !params.is_null() {
            collect(&*params, fqn, &mut out);
            rcl_yaml_node_struct_fini(params);
        }
        let _finalized = rcl_arguments_fini(&mut parsed);
        got?;
    }
    Ok(out)
}

/// Node-name patterns apply in order of specificity: wildcards first, then
/// the node's own name, so the node's own entries win.
///
/// # Safety
/// `params` must be a valid structure from rcl.
unsafe fn collect(params: &rcl_params_t, fqn: &str, out: &mut BTreeMap<String, ParamValue>) {
    let nodes = params.num_nodes;
    for pass in [false, true] {
        for i in 0..nodes {
            let name = cstr(*params.node_names.add(i));
            let (matches, exact) = node_matches(&name, fqn);
            if !matches || exact != pass {
                continue;
            }
            let node = &*params.params.add(i);
            for j in 0..node.num_params {
                let key = cstr(*node.parameter_names.add(j));
                if let Some(v) = variant(&*node.parameter_values.add(j)) {
                    out.insert(key, v);
                }
            }
        }
    }
}

/// (applies to `fqn`, names it exactly). rcl writes names without the
/// leading slash; `/**` and `/*` patterns match any node.
fn node_matches(pattern: &str, fqn: &str) -> (bool, bool) {
    let p = pattern.trim_start_matches('/');
    let f = fqn.trim_start_matches('/');
    if p == f {
        return (true, true);
    }
    // `*` is one name level, `**` any number of them.
    let one_level = |prefix: &str| {
        f.strip_prefix(prefix)
            .is_some_and(|rest| !rest.contains('/'))
    };
    let wildcard = p == "**"
        || (p == "*" && !f.contains('/'))
        || (p.ends_with("/**") && f.starts_with(&p[..p.len() - 2]))
        || (p.ends_with("/*") && one_level(&p[..p.len() - 1]));
    let any_ns = p
        .strip_prefix("**/")
        .is_some_and(|name| f.rsplit('/').next() == Some(name));
    (wildcard || any_ns, false)
}

/// # Safety
/// `v` must be a valid variant from rcl.
unsafe fn variant(v: &rcl_variant_t) -> Option<ParamValue> {
    if !v.bool_value.is_null() {
        return Some(ParamValue::Bool(*v.bool_value));
    }
    if !v.integer_value.is_null() {
        return Some(ParamValue::Integer(*v.integer_value));
    }
    if !v.double_value.is_null() {
        return Some(ParamValue::Double(*v.double_value));
    }
    if !v.string_value.is_null() {
        return Some(ParamValue::String(cstr(v.string_value)));
    }
    if !v.string_array_value.is_null() {
        let a = &*v.string_array_value;
        let items = (0..a.size).map(|i| cstr(*a.data.add(i))).collect();
        return Some(ParamValue::StringArray(items));
    }
    // An empty YAML list parses as an empty array of any type.
    let empty = |size: usize| Some(ParamValue::StringArray(Vec::new())).filter(|_| size == 0);
    if !v.bool_array_value.is_null() {
        return empty((*v.bool_array_value).size);
    }
    if !v.integer_array_value.is_null() {
        return empty((*v.integer_array_value).size);
    }
    if !v.double_array_value.is_null() {
        return empty((*v.double_array_value).size);
    }
    None
}

/// # Safety
/// `p` must be null or a NUL-terminated string.
unsafe fn cstr(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    CStr::from_ptr(p).to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::node_matches;

    #[test]
    fn node_names_match_like_rcl() {
        assert_eq!(node_matches("/**", "/robot1/motedb"), (true, false));
        assert_eq!(node_matches("motedb", "/motedb"), (true, true));
        assert_eq!(
            node_matches("/robot1/motedb", "/robot1/motedb"),
            (true, true)
        );
        assert_eq!(node_matches("robot1/**", "/robot1/motedb"), (true, false));
        assert_eq!(node_matches("**/motedb", "/robot1/motedb"), (true, false));
        assert_eq!(node_matches("other", "/motedb"), (false, false));
        assert_eq!(node_matches("robot2/**", "/robot1/motedb"), (false, false));
        assert_eq!(node_matches("/*", "/motedb"), (true, false));
        assert_eq!(node_matches("/*", "/robot1/motedb"), (false, false));
        assert_eq!(node_matches("robot1/*", "/robot1/motedb"), (true, false));
    }
}
