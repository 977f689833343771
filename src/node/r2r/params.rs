//! The six `rcl_interfaces` parameter services of the r2r build, served by
//! the node itself rather than by r2r's parameter handler: that handler
//! answers every set "successful" (it cannot refuse one), has no
//! descriptors, and panics when a reply cannot be sent (Fast DDS returns
//! RCL_RET_TIMEOUT when the client's response reader is not matched yet),
//! which took the whole node down. Here a set is checked first, exactly as
//! the rclrs build checks it, and a reply that cannot be sent is logged.

use super::{mw, respond, spawn};
use crate::node::error::Result;
use crate::node::live::Live;
use crate::node::param_specs::{spec_of, ParamSpec};
use crate::node::params::ParamValue;
use futures::executor::LocalPool;
use futures::StreamExt;
use r2r::rcl_interfaces::msg::{
    FloatingPointRange, IntegerRange, ListParametersResult, ParameterDescriptor,
    ParameterValue as ValueMsg, SetParametersResult,
};
use r2r::rcl_interfaces::srv::{
    DescribeParameters, GetParameterTypes, GetParameters, ListParameters, SetParameters,
    SetParametersAtomically,
};
use r2r::QosProfile;
use std::sync::Arc;

// rcl_interfaces/msg/ParameterType.
const NOT_SET: u8 = 0;
const BOOL: u8 = 1;
const INTEGER: u8 = 2;
const DOUBLE: u8 = 3;
const STRING: u8 = 4;
const BYTE_ARRAY: u8 = 5;
const BOOL_ARRAY: u8 = 6;
const INTEGER_ARRAY: u8 = 7;
const DOUBLE_ARRAY: u8 = 8;
const STRING_ARRAY: u8 = 9;

/// Serves list, get, get_parameter_types, describe, set and
/// set_parameters_atomically under `~/`.
pub fn serve(node: &mut r2r::Node, pool: &LocalPool, live: &Arc<Live>, logger: &str) -> Result<()> {
    serve_one::<ListParameters::Service>(node, pool, live, logger, "~/list_parameters", |l, r| {
        ListParameters::Response {
            result: list(&names(l), &r.prefixes, r.depth),
        }
    })?;
    serve_one::<GetParameters::Service>(node, pool, live, logger, "~/get_parameters", |l, r| {
        GetParameters::Response {
            values: r.names.iter().map(|n| value_msg(current(l, n))).collect(),
        }
    })?;
    serve_one::<GetParameterTypes::Service>(
        node,
        pool,
        live,
        logger,
        "~/get_parameter_types",
        |l, r| GetParameterTypes::Response {
            types: r
                .names
                .iter()
                .map(|n| current(l, n).map_or(NOT_SET, |v| type_of(&v)))
                .collect(),
        },
    )?;
    serve_one::<DescribeParameters::Service>(
        node,
        pool,
        live,
        logger,
        "~/describe_parameters",
        |l, r| DescribeParameters::Response {
            descriptors: r.names.iter().map(|n| describe(l, n)).collect(),
        },
    )?;
    serve_one::<SetParameters::Service>(node, pool, live, logger, "~/set_parameters", |l, r| {
        SetParameters::Response {
            results: r
                .parameters
                .iter()
                .map(|p| result(set(l, &p.name, &p.value)))
                .collect(),
        }
    })?;
    serve_one::<SetParametersAtomically::Service>(
        node,
        pool,
        live,
        logger,
        "~/set_parameters_atomically",
        |l, r| {
            let changes: Vec<(&str, &ValueMsg)> = r
                .parameters
                .iter()
                .map(|p| (p.name.as_str(), &p.value))
                .collect();
            SetParametersAtomically::Response {
                result: result(set_all(l, &changes)),
            }
        },
    )
}

fn serve_one<S>(
    node: &mut r2r::Node,
    pool: &LocalPool,
    live: &Arc<Live>,
    logger: &str,
    name: &'static str,
    answer: impl Fn(&Live, &S::Request) -> S::Response + 'static,
) -> Result<()>
where
    S: r2r::WrappedServiceTypeSupport + 'static,
{
    let requests = node
        .create_service::<S>(name, QosProfile::parameters())
        .map_err(mw(name))?;
    let (live, logger) = (Arc::clone(live), logger.to_string());
    spawn(
        pool,
        requests.for_each(move |req| {
            let response = answer(&live, &req.message);
            respond(req, response, name, &logger);
            futures::future::ready(())
        }),
    )
}

fn names(live: &Live) -> Vec<&'static str> {
    live.with(|p| p.effective().into_iter().map(|(n, _)| n).collect())
}

fn current(live: &Live, name: &str) -> Option<ParamValue> {
    live.with(|p| {
        p.effective()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    })
}

/// rclcpp's ListParameters rule: with no prefixes, every name with fewer
/// than `depth` dots (depth 0: all); with prefixes, the names equal to a
/// prefix or under it within `depth` more levels. `prefixes` of the result
/// are the parents of the names returned.
fn list(names: &[&str], prefixes: &[String], depth: u64) -> ListParametersResult {
    let within = |rest: &str| depth == 0 || (rest.matches('.').count() as u64) < depth;
    let mut result = ListParametersResult::default();
    for name in names {
        let all = prefixes.is_empty() && within(name);
        let under = prefixes.iter().any(|prefix| {
            *name == prefix
                || name
                    .strip_prefix(prefix.as_str())
                    .and_then(|rest| rest.strip_prefix('.'))
                    .is_some_and(within)
        });
        if !(all || under) {
            continue;
        }
        result.names.push(name.to_string());
        if let Some((parent, _)) = name.rsplit_once('.') {
            if !result.prefixes.iter().any(|p| p == parent) {
                result.prefixes.push(parent.to_string());
            }
        }
    }
    result
}

fn describe(live: &Live, name: &str) -> ParameterDescriptor {
    let mut d = ParameterDescriptor {
        name: name.to_string(),
        ..ParameterDescriptor::default()
    };
    let (Some(spec), Some(value)) = (spec_of(name), current(live, name)) else {
        return d;
    };
    d.type_ = type_of(&value);
    d.description = spec.description.to_string();
    d.read_only = !spec.live;
    add_range(&mut d, spec);
    d
}

fn add_range(d: &mut ParameterDescriptor, spec: &ParamSpec) {
    let Some(min) = spec.min else { return };
    match d.type_ {
        INTEGER => d.integer_range.push(IntegerRange {
            from_value: min as i64,
            to_value: i64::MAX,
            step: 0,
        }),
        DOUBLE => d.floating_point_range.push(FloatingPointRange {
            from_value: min,
            to_value: f64::MAX,
            step: 0.0,
        }),
        _ => {}
    }
}

fn set(live: &Live, name: &str, value: &ValueMsg) -> std::result::Result<(), String> {
    live.apply(name, from_msg(name, value)?)
}

/// All or nothing: every change is checked, each on top of the ones
/// before it, then all are applied at once.
fn set_all(live: &Live, changes: &[(&str, &ValueMsg)]) -> std::result::Result<(), String> {
    let mut converted = Vec::with_capacity(changes.len());
    for (name, value) in changes {
        converted.push((name.to_string(), from_msg(name, value)?));
    }
    live.apply_all(converted)
}

fn result(outcome: std::result::Result<(), String>) -> SetParametersResult {
    SetParametersResult {
        successful: outcome.is_ok(),
        reason: outcome.err().unwrap_or_default(),
    }
}

fn type_of(v: &ParamValue) -> u8 {
    match v {
        ParamValue::Bool(_) => BOOL,
        ParamValue::Integer(_) => INTEGER,
        ParamValue::Double(_) => DOUBLE,
        ParamValue::String(_) => STRING,
        ParamValue::StringArray(_) => STRING_ARRAY,
    }
}

fn value_msg(v: Option<ParamValue>) -> ValueMsg {
    let mut m = ValueMsg::default();
    match v {
        None => m.type_ = NOT_SET,
        Some(ParamValue::Bool(b)) => (m.type_, m.bool_value) = (BOOL, b),
        Some(ParamValue::Integer(i)) => (m.type_, m.integer_value) = (INTEGER, i),
        Some(ParamValue::Double(d)) => (m.type_, m.double_value) = (DOUBLE, d),
        Some(ParamValue::String(s)) => (m.type_, m.string_value) = (STRING, s),
        Some(ParamValue::StringArray(a)) => (m.type_, m.string_array_value) = (STRING_ARRAY, a),
    }
    m
}

/// The neutral value of a set request. An empty array of any type is an
/// empty string list (YAML `[]` has no element type); a type the node has
/// no parameter of is refused with its name.
fn from_msg(name: &str, m: &ValueMsg) -> std::result::Result<ParamValue, String> {
    Ok(match m.type_ {
        BOOL => ParamValue::Bool(m.bool_value),
        INTEGER => ParamValue::Integer(m.integer_value),
        DOUBLE => ParamValue::Double(m.double_value),
        STRING => ParamValue::String(m.string_value.clone()),
        STRING_ARRAY => ParamValue::StringArray(m.string_array_value.clone()),
        BOOL_ARRAY if m.bool_array_value.is_empty() => ParamValue::StringArray(Vec::new()),
        INTEGER_ARRAY if m.integer_array_value.is_empty() => ParamValue::StringArray(Vec::new()),
        DOUBLE_ARRAY if m.double_array_value.is_empty() => ParamValue::StringArray(Vec::new()),
        BYTE_ARRAY if m.byte_array_value.is_empty() => ParamValue::StringArray(Vec::new()),
        NOT_SET => return Err(format!("{name}: cannot be unset (it is declared)")),
        other => return Err(format!("{name}: unsupported parameter type {other}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAMES: &[&str] = &["a", "b.c", "b.d.e", "bb.f"];

    fn listed(prefixes: &[&str], depth: u64) -> (Vec<String>, Vec<String>) {
        let prefixes: Vec<String> = prefixes.iter().map(|s| s.to_string()).collect();
        let r = list(NAMES, &prefixes, depth);
        (r.names, r.prefixes)
    }

    #[test]
    fn list_without_prefixes_follows_depth() {
        assert_eq!(listed(&[], 0).0, ["a", "b.c", "b.d.e", "bb.f"]);
        assert_eq!(listed(&[], 1).0, ["a"]);
        assert_eq!(listed(&[], 2).0, ["a", "b.c", "bb.f"]);
        assert_eq!(listed(&[], 0).1, ["b", "b.d", "bb"]);
    }

    #[test]
    fn list_with_a_prefix_takes_only_names_under_it() {
        // "bb.f" shares the letters of "b" but is not under it.
        assert_eq!(listed(&["b"], 0).0, ["b.c", "b.d.e"]);
        assert_eq!(listed(&["b"], 1).0, ["b.c"]);
        assert_eq!(listed(&["b.d.e"], 1).0, ["b.d.e"]);
    }

    #[test]
    fn values_convert_both_ways_and_odd_types_are_refused_by_name() {
        for v in [
            ParamValue::Bool(true),
            ParamValue::Integer(-3),
            ParamValue::Double(0.5),
            ParamValue::String("x".into()),
            ParamValue::StringArray(vec!["/a".into()]),
        ] {
            assert_eq!(from_msg("p", &value_msg(Some(v.clone()))).unwrap(), v);
        }
        let empty_ints = ValueMsg {
            type_: INTEGER_ARRAY,
            ..ValueMsg::default()
        };
        assert_eq!(
            from_msg("topics", &empty_ints).unwrap(),
            ParamValue::StringArray(Vec::new())
        );
        let ints = ValueMsg {
            type_: INTEGER_ARRAY,
            integer_array_value: vec![1],
            ..ValueMsg::default()
        };
        let e = from_msg("topics", &ints).unwrap_err();
        assert!(e.contains("topics") && e.contains("unsupported"), "{e}");
        let e = from_msg("topics", &value_msg(None)).unwrap_err();
        assert!(e.contains("cannot be unset"), "{e}");
    }
}
