//! ros2msg definitions: the text form stored in the catalog and in MCAP
//! schema records (encoding `ros2msg`), and its parsed form.
//!
//! Text layout (MCAP registry, rosbag2): the main type's `.msg` text, then
//! for each dependency a line of 80 `=`, a line `MSG: pkg/msg/Type` and
//! that type's `.msg` text. `MSG: pkg/Type` (older writers) is accepted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

use super::error::{Error, Result};

/// The separator line between definitions in a ros2msg schema.
pub const SEPARATOR: &str =
    "================================================================================";

/// A builtin (primitive) type. Bounded strings carry their bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Primitive {
    Bool,
    Byte,
    Char,
    Int8,
    UInt8,
    Int16,
    UInt16,
    Int32,
    UInt32,
    Int64,
    UInt64,
    Float32,
    Float64,
    String(Option<u64>),
    WString(Option<u64>),
}

impl Primitive {
    fn from_name(name: &str) -> Option<Primitive> {
        Some(match name {
            "bool" => Primitive::Bool,
            "byte" => Primitive::Byte,
            "char" => Primitive::Char,
            "int8" => Primitive::Int8,
            "uint8" => Primitive::UInt8,
            "int16" => Primitive::Int16,
            "uint16" => Primitive::UInt16,
            "int32" => Primitive::Int32,
            "uint32" => Primitive::UInt32,
            "int64" => Primitive::Int64,
            "uint64" => Primitive::UInt64,
            "float32" => Primitive::Float32,
            "float64" => Primitive::Float64,
            "string" => Primitive::String(None),
            "wstring" => Primitive::WString(None),
            _ => return None,
        })
    }

    fn parse(token: &str) -> std::result::Result<Option<Primitive>, String> {
        for (prefix, wide) in [("string<=", false), ("wstring<=", true)] {
            if let Some(bound) = token.strip_prefix(prefix) {
                let n = parse_bound(bound)?;
                return Ok(Some(if wide {
                    Primitive::WString(Some(n))
                } else {
                    Primitive::String(Some(n))
                }));
            }
        }
        Ok(Primitive::from_name(token))
    }
}

/// What a field holds before any array suffix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BaseType {
    Primitive(Primitive),
    /// Canonical `pkg/msg/Type`.
    Complex(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArrayKind {
    Single,
    /// `T[N]`: exactly N elements, no length on the wire.
    Fixed(u64),
    /// `T[<=N]`: a sequence of at most N.
    Bounded(u64),
    /// `T[]`
    Unbounded,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldType {
    pub base: BaseType,
    pub array: ArrayKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: String,
    pub ty: FieldType,
    /// Default value text, as written.
    pub default: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constant {
    pub name: String,
    pub ty: Primitive,
    pub value: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageSpec {
    /// Canonical `pkg/msg/Type`.
    pub name: String,
    pub fields: Vec<Field>,
    pub constants: Vec<Constant>,
}

/// A parsed schema: the root type and every type it depends on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    pub root: String,
    pub types: BTreeMap<String, MessageSpec>,
}

impl Schema {
    /// Parses a ros2msg schema whose main definition is `root_type`.
    pub fn parse(root_type: &str, text: &str) -> Result<Schema> {
        let root = canonical_name(root_type)?;
        let mut types = BTreeMap::new();
        for (name, body) in split_sections(&root, text)? {
            let spec = parse_message(&name, &body)?;
            types.insert(name, spec);
        }
        let mut schema = Schema { root, types };
        schema.resolve_header_aliases();
        schema.check_complete()?;
        Ok(schema)
    }

    pub fn get(&self, name: &str) -> Result<&MessageSpec> {
        self.types
            .get(name)
            .ok_or_else(|| Error::MissingType(name.to_string()))
    }

    /// An unqualified `Header` means std_msgs/msg/Header unless the package
    /// defines its own.
    fn resolve_header_aliases(&mut self) {
        let names: BTreeSet<String> = self.types.keys().cloned().collect();
        for spec in self.types.values_mut() {
            for field in &mut spec.fields {
                if let BaseType::Complex(name) = &mut field.ty.base {
                    if !names.contains(name.as_str()) && name.ends_with("/msg/Header") {
                        *name = "std_msgs/msg/Header".to_string();
                    }
                }
            }
        }
    }

    fn check_complete(&self) -> Result<()> {
        for spec in self.types.values() {
            for name in spec.complex_refs() {
                if !self.types.contains_key(name) {
                    return Err(Error::MissingType(name.to_string()));
                }
            }
        }
        Ok(())
    }
}

impl MessageSpec {
    fn complex_refs(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().filter_map(|f| match &f.ty.base {
            BaseType::Complex(n) => Some(n.as_str()),
            BaseType::Primitive(_) => None,
        })
    }
}

/// `pkg/Type` or `pkg/msg/Type` to `pkg/msg/Type`; `pkg/srv/Type` and
/// `pkg/action/Type` (service and action generated types) stay as they are.
pub fn canonical_name(name: &str) -> Result<String> {
    let parts: Vec<&str> = name.trim().split('/').collect();
    let ok = |s: &&str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    match parts.as_slice() {
        [pkg, ty] if ok(pkg) && ok(ty) => Ok(format!("{pkg}/msg/{ty}")),
        [pkg, kind @ ("msg" | "srv" | "action"), ty] if ok(pkg) && ok(ty) => {
            Ok(format!("{pkg}/{kind}/{ty}"))
        }
        _ => Err(Error::BadTypeName(name.to_string())),
    }
}

fn split_type(canonical: &str) -> (&str, &str) {
    let mut parts = canonical.split('/');
    let pkg = parts.next().unwrap_or_default();
    let ty = parts.next_back().unwrap_or_default();
    (pkg, ty)
}

fn is_separator(line: &str) -> bool {
    let t = line.trim();
    t.len() >= 3 && t.bytes().all(|b| b == b'=')
}

/// Splits schema text into (canonical type name, body) sections.
fn split_sections(root: &str, text: &str) -> Result<Vec<(String, String)>> {
    let mut sections = vec![(root.to_string(), String::new())];
    let mut expect_name = false;
    for (i, line) in text.lines().enumerate() {
        if is_separator(line) {
            expect_name = true;
            continue;
        }
        if expect_name {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            let Some(name) = t.strip_prefix("MSG:") else {
                return Err(Error::BadDefinition {
                    type_name: root.to_string(),
                    line: i + 1,
                    reason: format!(
                        "expected `MSG: pkg/msg/Type` after the separator, found {t:?}"
                    ),
                });
            };
            sections.push((canonical_name(name)?, String::new()));
            expect_name = false;
            continue;
        }
        if let Some((_, body)) = sections.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    Ok(sections)
}

/// Parses one `.msg` body. `name` is canonical.
pub fn parse_message(name: &str, body: &str) -> Result<MessageSpec> {
    let (pkg, _) = split_type(name);
    let mut spec = MessageSpec {
        name: name.to_string(),
        fields: Vec::new(),
        constants: Vec::new(),
    };
    for (i, raw) in body.lines().enumerate() {
        let bad = |reason: String| Error::BadDefinition {
            type_name: name.to_string(),
            line: i + 1,
            reason,
        };
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        parse_line(pkg, line, &mut spec).map_err(bad)?;
    }
    Ok(spec)
}

fn parse_line(pkg: &str, line: &str, spec: &mut MessageSpec) -> std::result::Result<(), String> {
    let (type_token, rest) = line
        .split_once(|c: char| c.is_whitespace())
        .ok_or_else(|| format!("expected `type name`, found {line:?}"))?;
    let rest = rest.trim();
    let ty = parse_field_type(pkg, type_token)?;
    if let Some((cname, value)) = split_constant(rest) {
        let (BaseType::Primitive(p), ArrayKind::Single) = (&ty.base, ty.array) else {
            return Err(format!(
                "constant {cname} must have a builtin non-array type"
            ));
        };
        spec.constants.push(Constant {
            name: cname.to_string(),
            ty: *p,
            value: value.trim().to_string(),
        });
        return Ok(());
    }
    let (fname, default) = match rest.split_once(|c: char| c.is_whitespace()) {
        Some((n, d)) => (n, Some(d.trim().to_string())),
        None => (rest, None),
    };
    if !is_identifier(fname) {
        return Err(format!("bad field name {fname:?}"));
    }
    spec.fields.push(Field {
        name: fname.to_string(),
        ty,
        default,
    });
    Ok(())
}

/// `NAME=VALUE` (spaces allowed around `=`) when the part before `=` is a
/// plain identifier.
fn split_constant(rest: &str) -> Option<(&str, &str)> {
    let (name, value) = rest.split_once('=')?;
    let name = name.trim();
    is_identifier(name).then_some((name, value))
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !s.starts_with(|c: char| c.is_ascii_digit())
}

/// Drops a `#` comment that is not inside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') => return &line[..i],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
    }
    line
}

fn parse_bound(s: &str) -> std::result::Result<u64, String> {
    s.parse::<u64>().map_err(|_| format!("bad bound {s:?}"))
}

fn parse_field_type(pkg: &str, token: &str) -> std::result::Result<FieldType, String> {
    let (base, array) = match token.strip_suffix(']') {
        Some(head) => {
            let (base, inside) = head
                .rsplit_once('[')
                .ok_or_else(|| format!("bad array type {token:?}"))?;
            let array = if inside.is_empty() {
                ArrayKind::Unbounded
            } else if let Some(b) = inside.strip_prefix("<=") {
                ArrayKind::Bounded(parse_bound(b)?)
            } else {
                ArrayKind::Fixed(parse_bound(inside)?)
            };
            (base, array)
        }
        None => (token, ArrayKind::Single),
    };
    let base = match Primitive::parse(base)? {
        Some(p) => BaseType::Primitive(p),
        None if base.contains('/') => {
            BaseType::Complex(canonical_name(base).map_err(|e| e.to_string())?)
        }
        None if is_identifier(base) => BaseType::Complex(format!("{pkg}/msg/{base}")),
        None => return Err(format!("bad type {base:?}")),
    };
    Ok(FieldType { base, array })
}

/// Builds the full ros2msg text of `type_name` (main definition plus every
/// dependency, breadth first) from `share/<pkg>/msg/<Type>.msg` files under
/// the given install prefixes (AMENT_PREFIX_PATH entries), like rosbag2.
/// A type without `.msg` files (known only as `.idl`, or generated from a
/// `.srv` or `.action`) is rendered from its type description (`.json`).
pub fn resolve(type_name: &str, prefixes: &[PathBuf]) -> Result<String> {
    match resolve_msg_files(type_name, prefixes) {
        Err(e @ Error::DefinitionNotFound { .. }) => {
            match super::type_description::find(type_name, prefixes)? {
                Some(d) => Ok(d.definition),
                None => Err(e),
            }
        }
        other => other,
    }
}

fn resolve_msg_files(type_name: &str, prefixes: &[PathBuf]) -> Result<String> {
    let root = canonical_name(type_name)?;
    let mut out = String::new();
    let mut seen = BTreeSet::from([root.clone()]);
    let mut queue = VecDeque::from([root.clone()]);
    while let Some(name) = queue.pop_front() {
        let body = read_msg_file(&name, prefixes)?;
        if name != root {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(SEPARATOR);
            out.push_str("\nMSG: ");
            out.push_str(&name);
            out.push('\n');
        }
        out.push_str(&body);
        let spec = parse_message(&name, &body)?;
        for dep in spec.complex_refs() {
            let dep = header_fallback(dep, prefixes);
            if seen.insert(dep.clone()) {
                queue.push_back(dep);
            }
        }
    }
    Ok(out)
}

/// Same-package `Header` that does not exist means std_msgs/msg/Header.
fn header_fallback(dep: &str, prefixes: &[PathBuf]) -> String {
    if dep.ends_with("/msg/Header") && find_msg_file(dep, prefixes).is_none() {
        return "std_msgs/msg/Header".to_string();
    }
    dep.to_string()
}

fn find_msg_file(canonical: &str, prefixes: &[PathBuf]) -> Option<PathBuf> {
    if canonical.split('/').nth(1) != Some("msg") {
        return None;
    }
    let (pkg, ty) = split_type(canonical);
    prefixes
        .iter()
        .map(|p| msg_path(p, pkg, ty))
        .find(|p| p.is_file())
}

fn msg_path(prefix: &Path, pkg: &str, ty: &str) -> PathBuf {
    prefix
        .join("share")
        .join(pkg)
        .join("msg")
        .join(format!("{ty}.msg"))
}

fn read_msg_file(canonical: &str, prefixes: &[PathBuf]) -> Result<String> {
    let (pkg, ty) = split_type(canonical);
    let path = find_msg_file(canonical, prefixes).ok_or_else(|| Error::DefinitionNotFound {
        package: pkg.to_string(),
        kind: canonical.split('/').nth(1).unwrap_or("msg").to_string(),
        name: ty.to_string(),
        prefixes: prefixes.to_vec(),
    })?;
    std::fs::read_to_string(&path).map_err(|e| Error::ReadDefinition {
        path,
        reason: e.to_string(),
    })
}

/// Install prefixes from an AMENT_PREFIX_PATH-style value (`:`-separated).
pub fn prefixes_from_env_value(value: &str) -> Vec<PathBuf> {
    value
        .split(':')
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_fields_arrays_constants_defaults() {
        let text = "\
# comment
uint8 DEBUG=1 # trailing
string NAME = \"a # b\"
int32[] a
float64[9] cov
string<=5[<=3] names
Header header
geometry_msgs/Point p
bool flag true
================================================================================
MSG: std_msgs/Header
builtin_interfaces/Time stamp
string frame_id
================================================================================
MSG: builtin_interfaces/msg/Time
int32 sec
uint32 nanosec
================================================================================
MSG: geometry_msgs/msg/Point
float64 x
float64 y
float64 z
";
        let s = Schema::parse("my_pkg/msg/Thing", text).unwrap();
        let t = s.get("my_pkg/msg/Thing").unwrap();
        assert_eq!(t.constants.len(), 2);
        assert_eq!(t.constants[1].value, "\"a # b\"");
        assert_eq!(t.fields.len(), 6);
        assert_eq!(t.fields[1].ty.array, ArrayKind::Fixed(9));
        assert_eq!(
            t.fields[2].ty,
            FieldType {
                base: BaseType::Primitive(Primitive::String(Some(5))),
                array: ArrayKind::Bounded(3)
            }
        );
        assert_eq!(
            t.fields[3].ty.base,
            BaseType::Complex("std_msgs/msg/Header".into())
        );
        assert_eq!(t.fields[5].default.as_deref(), Some("true"));
        assert_eq!(s.types.len(), 4);
    }

    #[test]
    fn missing_dependency_is_an_error() {
        let e = Schema::parse("a/msg/B", "c/D d\n").unwrap_err();
        assert_eq!(e, Error::MissingType("c/msg/D".into()));
    }

    #[test]
    fn bad_lines_are_errors() {
        assert!(matches!(
            Schema::parse("a/msg/B", "int32\n"),
            Err(Error::BadDefinition { line: 1, .. })
        ));
        assert!(Schema::parse("a/msg/B", "int32[x] v\n").is_err());
        assert!(Schema::parse("a/msg/B", "int32 1v\n").is_err());
        assert!(Schema::parse("a/msg/B", "x\n====\nnot msg\n").is_err());
        assert!(Schema::parse("bad", "").is_err());
    }
}
