#!/usr/bin/env python3
"""Generate Rust message crates for rosidl_runtime_rs 0.7 from installed ROS 2 IDL.

Usage:  python rosidl_rs_gen.py --prefix <ament prefix> <pkg>...

For each package, reads <prefix>/share/<pkg>/{msg,srv}/*.idl with rosidl_parser and
writes <prefix>/share/<pkg>/rust/:

    Cargo.toml          [package.metadata.ros-env] include = true; other generated
                        packages as dependencies with version "*"
    src/lib.rs          only for building the crate on its own (ros-env ignores it)
    src/msg.rs          idiomatic messages      (ros-env: <pkg>::msg)
    src/msg/rmw.rs      C-layout messages       (ros-env: <pkg>::msg::rmw)
    src/srv.rs          idiomatic services      (ros-env: <pkg>::srv)
    src/srv/rmw.rs      C-layout services       (ros-env: <pkg>::srv::rmw)

This is the layout the crates.io crate ros-env 0.3 include!()s, which rclrs 0.8 uses
for its interfaces. The generated code follows rosidl_generator_rs (ros2-rust):
idiomatic structs convert to and from #[repr(C)] RMW structs whose Default runs the
rosidl_generator_c init function (so IDL default values apply); constants are
associated consts; services are `Foo` with `Foo_Request` / `Foo_Response`.

Output is plain ASCII and deterministic; files are rewritten only when their content
changes, and nothing is written outside <prefix>/share/<pkg>/rust/. Actions
(action/*.idl) are not generated.
"""

import argparse
import math
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

sys.dont_write_bytecode = True  # write nothing outside share/<pkg>/rust/

from rosidl_parser.definition import (
    AbstractGenericString,
    Array,
    BasicType,
    BoundedSequence,
    BoundedString,
    BoundedWString,
    IdlLocator,
    Message,
    NamedType,
    NamespacedType,
    Service,
    UnboundedSequence,
    UnboundedString,
    UnboundedWString,
)
from rosidl_parser.parser import parse_idl_file

RUNTIME_VERSION = '0.7'
KINDS = ('msg', 'srv')

RUST_KEYWORDS = {
    'as', 'break', 'const', 'continue', 'crate', 'else', 'enum', 'extern', 'false', 'fn',
    'for', 'if', 'impl', 'in', 'let', 'loop', 'match', 'mod', 'move', 'mut', 'pub', 'ref',
    'return', 'self', 'Self', 'static', 'struct', 'super', 'trait', 'true', 'type',
    'unsafe', 'use', 'where', 'while', 'gen', 'async', 'await', 'dyn', 'abstract',
    'become', 'box', 'do', 'final', 'macro', 'override', 'priv', 'typeof', 'unsized',
    'virtual', 'yield', 'try',
}

BASIC_RS = {
    'boolean': 'bool', 'octet': 'u8', 'byte': 'u8', 'char': 'u8', 'wchar': 'u16',
    'float': 'f32', 'double': 'f64',
    'int8': 'i8', 'uint8': 'u8', 'int16': 'i16', 'uint16': 'u16',
    'int32': 'i32', 'uint32': 'u32', 'int64': 'i64', 'uint64': 'u64',
    'short': 'i16', 'unsigned short': 'u16', 'long': 'i32', 'unsigned long': 'u32',
    'long long': 'i64', 'unsigned long long': 'u64',
}

COW = 'std::borrow::Cow'
MSG_TRAIT = 'rosidl_runtime_rs::Message'


class GenError(Exception):
    pass


def rs_name(name):
    return name + '_' if name in RUST_KEYWORDS else name


def ascii_text(text):
    """Comment text made plain ASCII (non-ASCII characters become U+XXXX)."""
    out = []
    for ch in text:
        if ch == '\t':
            out.append('    ')
        elif 32 <= ord(ch) < 127:
            out.append(ch)
        elif ord(ch) >= 127:
            out.append('U+%04X' % ord(ch))
    return ''.join(out).rstrip()


def rs_str_literal(value):
    out = ['"']
    for ch in value:
        o = ord(ch)
        if ch == '\\':
            out.append('\\\\')
        elif ch == '"':
            out.append('\\"')
        elif ch == '\n':
            out.append('\\n')
        elif ch == '\r':
            out.append('\\r')
        elif ch == '\t':
            out.append('\\t')
        elif 32 <= o < 127:
            out.append(ch)
        else:
            out.append('\\u{%x}' % o)
    out.append('"')
    return ''.join(out)


def doc_lines(lines, indent):
    pad = ' ' * indent
    out = []
    for line in lines:
        text = ascii_text(line)
        out.append(pad + ('/// ' + text if text else '///'))
    return out


def constant_rs(type_, value):
    """(rust type, rust literal) for a constant."""
    if isinstance(type_, AbstractGenericString):
        return "&'static str", rs_str_literal(str(value))
    if not isinstance(type_, BasicType):
        raise GenError('unsupported constant type %r' % (type_,))
    tn = type_.typename
    if tn not in BASIC_RS:
        raise GenError('unsupported constant type %s' % tn)
    rty = BASIC_RS[tn]
    if tn == 'boolean':
        return rty, 'true' if value else 'false'
    if tn in ('float', 'double'):
        v = float(value)
        if math.isnan(v):
            return rty, '%s::NAN' % rty
        if math.isinf(v):
            return rty, '%s::%s' % (rty, 'INFINITY' if v > 0 else 'NEG_INFINITY')
        text = repr(v)
        if not any(c in text for c in '.eE'):
            text += '.0'
        return rty, text + rty
    if isinstance(value, str):
        if len(value) != 1:
            raise GenError('bad %s constant value %r' % (tn, value))
        value = ord(value)
    return rty, '%d%s' % (int(value), rty)


class Generator:
    """Renders the Rust sources of one package."""

    def __init__(self, package):
        self.package = package
        self.deps = set()

    # ---- type names -------------------------------------------------------

    def nested_path(self, type_, idiomatic, rmw_wanted):
        """Path of a message type as seen from <pkg>::<kind> (idiomatic) or
        <pkg>::<kind>::rmw (not idiomatic)."""
        names = list(type_.namespaced_name())
        if len(names) != 3:
            raise GenError('unsupported namespaced type %s' % '::'.join(names))
        pkg, sub, name = names
        if pkg == self.package:
            prefix = 'super::' if idiomatic else 'super::super::'
        else:
            self.deps.add(pkg)
            prefix = pkg + '::'
        if rmw_wanted:
            return '%s%s::rmw::%s' % (prefix, sub, name)
        return '%s%s::%s' % (prefix, sub, name)

    def rs_type(self, type_, idiomatic, want_idiomatic=None):
        if want_idiomatic is None:
            want_idiomatic = idiomatic
        idio = idiomatic and want_idiomatic
        if isinstance(type_, BasicType):
            if type_.typename not in BASIC_RS:
                raise GenError('unsupported basic type %s' % type_.typename)
            return BASIC_RS[type_.typename]
        if isinstance(type_, BoundedString):
            return 'rosidl_runtime_rs::BoundedString<%d>' % type_.maximum_size
        if isinstance(type_, BoundedWString):
            return 'rosidl_runtime_rs::BoundedWString<%d>' % type_.maximum_size
        if isinstance(type_, UnboundedString):
            return 'std::string::String' if idio else 'rosidl_runtime_rs::String'
        if isinstance(type_, UnboundedWString):
            return 'std::string::String' if idio else 'rosidl_runtime_rs::WString'
        if isinstance(type_, Array):
            return '[%s; %d]' % (self.rs_type(type_.value_type, idiomatic, want_idiomatic),
                                 type_.size)
        if isinstance(type_, UnboundedSequence):
            inner = self.rs_type(type_.value_type, idiomatic, want_idiomatic)
            if idio:
                return 'Vec<%s>' % inner
            return 'rosidl_runtime_rs::Sequence<%s>' % inner
        if isinstance(type_, BoundedSequence):
            # Bounded sequences need SequenceAlloc elements, i.e. RMW types.
            inner = self.rs_type(type_.value_type, idiomatic, False)
            return 'rosidl_runtime_rs::BoundedSequence<%s, %d>' % (inner, type_.maximum_size)
        if isinstance(type_, NamespacedType):
            return self.nested_path(type_, idiomatic, not want_idiomatic)
        if isinstance(type_, NamedType):
            raise GenError('unresolved named type %s' % type_.name)
        raise GenError('unsupported type %r' % (type_,))

    # ---- struct bodies ----------------------------------------------------

    def struct(self, msg, idiomatic):
        st = msg.structure
        name = st.namespaced_type.name
        out = []
        out.append('// Corresponds to %s__%s__%s' % (
            self.package, st.namespaced_type.namespaces[1], name))
        comments = doc_lines(st.get_comment_lines(), 0)
        out.extend(comments if comments else ['#[allow(missing_docs)]'])
        if '_' in name[1:]:
            out.append('#[allow(non_camel_case_types)]')
        out.append('#[cfg_attr(feature = "serde", derive(Deserialize, Serialize))]')
        if not idiomatic:
            out.append('#[repr(C)]')
        out.append('#[derive(Clone, Debug, PartialEq, PartialOrd)]')
        out.append('pub struct %s {' % name)
        for member in st.members:
            comments = doc_lines(member.get_comment_lines(), 4)
            out.extend(comments if comments else ['    #[allow(missing_docs)]'])
            if isinstance(member.type, Array) and member.type.size > 32:
                out.append('    #[cfg_attr(feature = "serde", '
                           'serde(with = "serde_big_array::BigArray"))]')
            out.append('    pub %s: %s,' % (rs_name(member.name),
                                            self.rs_type(member.type, idiomatic)))
        out.append('}')
        out.append('')
        if msg.constants:
            out.append('impl %s {' % name)
            for const in msg.constants:
                comments = doc_lines(getattr(const, 'get_comment_lines', lambda: [])(), 4)
                out.extend(comments if comments else ['    #[allow(missing_docs)]'])
                rty, lit = constant_rs(const.type, const.value)
                out.append('    pub const %s: %s = %s;' % (rs_name(const.name), rty, lit))
            out.append('}')
            out.append('')
        return out

    # ---- RMW messages -----------------------------------------------------

    def rmw_message(self, msg):
        st = msg.structure
        name = st.namespaced_type.name
        sub = st.namespaced_type.namespaces[1]
        c = '%s__%s__%s' % (self.package, sub, name)
        out = []
        out.append('#[link(name = "%s__rosidl_typesupport_c")]' % self.package)
        out.append('unsafe extern "C" {')
        out.append('    fn rosidl_typesupport_c__get_message_type_support_handle__%s()'
                   ' -> *const std::ffi::c_void;' % c)
        out.append('}')
        out.append('')
        out.append('#[link(name = "%s__rosidl_generator_c")]' % self.package)
        out.append('unsafe extern "C" {')
        out.append('    fn %s__init(msg: *mut %s) -> bool;' % (c, name))
        out.append('    fn %s__Sequence__init(seq: *mut rosidl_runtime_rs::Sequence<%s>,'
                   ' size: usize) -> bool;' % (c, name))
        out.append('    fn %s__Sequence__fini(seq: *mut rosidl_runtime_rs::Sequence<%s>);'
                   % (c, name))
        out.append('    fn %s__Sequence__copy(in_seq: &rosidl_runtime_rs::Sequence<%s>,'
                   ' out_seq: *mut rosidl_runtime_rs::Sequence<%s>) -> bool;'
                   % (c, name, name))
        out.append('}')
        out.append('')
        out.extend(self.struct(msg, idiomatic=False))
        out.append('''\
impl std::default::Default for {name} {{
    fn default() -> Self {{
        // SAFETY: a zeroed bit pattern is a valid message, and init() may be
        // called on it; init() applies the IDL default values.
        unsafe {{
            let mut msg = std::mem::zeroed();
            if !{c}__init(&mut msg as *mut _) {{
                panic!("Call to {c}__init() failed");
            }}
            msg
        }}
    }}
}}

impl rosidl_runtime_rs::SequenceAlloc for {name} {{
    fn sequence_init(seq: &mut rosidl_runtime_rs::Sequence<Self>, size: usize) -> bool {{
        // SAFETY: the pointer is valid.
        unsafe {{ {c}__Sequence__init(seq as *mut _, size) }}
    }}
    fn sequence_fini(seq: &mut rosidl_runtime_rs::Sequence<Self>) {{
        // SAFETY: the pointer is valid.
        unsafe {{ {c}__Sequence__fini(seq as *mut _) }}
    }}
    fn sequence_copy(in_seq: &rosidl_runtime_rs::Sequence<Self>, out_seq: &mut rosidl_runtime_rs::Sequence<Self>) -> bool {{
        // SAFETY: the pointers are valid.
        unsafe {{ {c}__Sequence__copy(in_seq, out_seq as *mut _) }}
    }}
}}

impl rosidl_runtime_rs::Message for {name} {{
    type RmwMsg = Self;
    fn into_rmw_message(msg_cow: {cow}<'_, Self>) -> {cow}<'_, Self::RmwMsg> {{
        msg_cow
    }}
    fn from_rmw_message(msg: Self::RmwMsg) -> Self {{
        msg
    }}
}}

impl rosidl_runtime_rs::RmwMessage for {name}
where
    Self: Sized,
{{
    const TYPE_NAME: &'static str = "{pkg}/{sub}/{name}";
    fn get_type_support() -> *const std::ffi::c_void {{
        // SAFETY: no preconditions.
        unsafe {{ rosidl_typesupport_c__get_message_type_support_handle__{c}() }}
    }}
}}
'''.format(name=name, c=c, cow=COW, pkg=self.package, sub=sub))
        return out

    # ---- idiomatic messages -----------------------------------------------

    def to_rmw_field(self, member, owned):
        f = rs_name(member.name)
        t = member.type
        src = 'msg.' + f
        if isinstance(t, Array):
            vt = t.value_type
            if isinstance(vt, (UnboundedString, UnboundedWString)):
                if owned:
                    return '%s.map(|elem| elem.as_str().into())' % src
                return ('%s.each_ref().map(|elem| elem.as_str().into())' % src)
            if isinstance(vt, NamespacedType):
                ty = self.rs_type(vt, True)
                if owned:
                    return ('%s.map(|elem| <%s as %s>::into_rmw_message(%s::Owned(elem))'
                            '.into_owned())' % (src, ty, MSG_TRAIT, COW))
                return ('%s.each_ref().map(|elem| <%s as %s>::into_rmw_message('
                        '%s::Borrowed(elem)).into_owned())' % (src, ty, MSG_TRAIT, COW))
            if isinstance(vt, BasicType):
                return src
            return src if owned else src + '.clone()'
        if isinstance(t, (UnboundedString, UnboundedWString)):
            return '%s.as_str().into()' % src
        if isinstance(t, UnboundedSequence):
            vt = t.value_type
            it = 'into_iter()' if owned else 'iter()'
            if isinstance(vt, (UnboundedString, UnboundedWString)):
                return '%s.%s.map(|elem| elem.as_str().into()).collect()' % (src, it)
            if isinstance(vt, NamespacedType):
                ty = self.rs_type(vt, True)
                kind = 'Owned' if owned else 'Borrowed'
                return ('%s.%s.map(|elem| <%s as %s>::into_rmw_message(%s::%s(elem))'
                        '.into_owned()).collect()' % (src, it, ty, MSG_TRAIT, COW, kind))
            return '%s.as_slice().into()' % src
        if isinstance(t, NamespacedType):
            ty = self.rs_type(t, True)
            arg = '%s::Owned(%s)' % (COW, src) if owned else '%s::Borrowed(&%s)' % (COW, src)
            return '<%s as %s>::into_rmw_message(%s).into_owned()' % (ty, MSG_TRAIT, arg)
        if isinstance(t, BasicType):
            return src
        # bounded strings and bounded sequences are the same type on both sides
        return src if owned else src + '.clone()'

    def from_rmw_field(self, member):
        f = rs_name(member.name)
        t = member.type
        src = 'msg.' + f
        if isinstance(t, Array):
            vt = t.value_type
            if isinstance(vt, (UnboundedString, UnboundedWString)):
                return '%s.map(|elem| elem.to_string())' % src
            if isinstance(vt, NamespacedType):
                return '%s.map(<%s as %s>::from_rmw_message)' % (
                    src, self.rs_type(vt, True), MSG_TRAIT)
            return src
        if isinstance(t, UnboundedSequence):
            vt = t.value_type
            if isinstance(vt, BasicType):
                return '%s.into()' % src
            if isinstance(vt, (UnboundedString, UnboundedWString)):
                return '%s.into_iter().map(|elem| elem.to_string()).collect()' % src
            if isinstance(vt, NamespacedType):
                return '%s.into_iter().map(<%s as %s>::from_rmw_message).collect()' % (
                    src, self.rs_type(vt, True), MSG_TRAIT)
            return '%s.into_iter().collect()' % src
        if isinstance(t, (UnboundedString, UnboundedWString)):
            return '%s.to_string()' % src
        if isinstance(t, NamespacedType):
            return '<%s as %s>::from_rmw_message(%s)' % (self.rs_type(t, True), MSG_TRAIT, src)
        return src

    def idiomatic_message(self, msg):
        st = msg.structure
        name = st.namespaced_type.name
        sub = st.namespaced_type.namespaces[1]
        out = self.struct(msg, idiomatic=True)
        rmw = 'super::%s::rmw::%s' % (sub, name)
        out.append('impl std::default::Default for %s {' % name)
        out.append('    fn default() -> Self {')
        out.append('        // The RMW default carries the IDL default values.')
        out.append('        <Self as %s>::from_rmw_message(<%s as std::default::Default>'
                   '::default())' % (MSG_TRAIT, rmw))
        out.append('    }')
        out.append('}')
        out.append('')
        out.append('impl %s for %s {' % (MSG_TRAIT, name))
        out.append('    type RmwMsg = %s;' % rmw)
        out.append('')
        out.append("    fn into_rmw_message(msg_cow: %s<'_, Self>) -> %s<'_, Self::RmwMsg> {"
                   % (COW, COW))
        out.append('        match msg_cow {')
        for owned in (True, False):
            out.append('            %s::%s(msg) => %s::Owned(Self::RmwMsg {'
                       % (COW, 'Owned' if owned else 'Borrowed', COW))
            for member in st.members:
                out.append('                %s: %s,' % (rs_name(member.name),
                                                       self.to_rmw_field(member, owned)))
            out.append('            }),')
        out.append('        }')
        out.append('    }')
        out.append('')
        out.append('    fn from_rmw_message(msg: Self::RmwMsg) -> Self {')
        out.append('        Self {')
        for member in st.members:
            out.append('            %s: %s,' % (rs_name(member.name), self.from_rmw_field(member)))
        out.append('        }')
        out.append('    }')
        out.append('}')
        out.append('')
        return out

    # ---- services ---------------------------------------------------------

    def service(self, srv):
        name = srv.namespaced_type.name
        sub = srv.namespaced_type.namespaces[1]
        c = '%s__%s__%s' % (self.package, sub, name)
        return ('''\
#[link(name = "{pkg}__rosidl_typesupport_c")]
unsafe extern "C" {{
    fn rosidl_typesupport_c__get_service_type_support_handle__{c}() -> *const std::ffi::c_void;
}}

// Corresponds to {c}
#[allow(missing_docs)]
pub struct {name};

impl rosidl_runtime_rs::Service for {name} {{
    type Request = {name}_Request;
    type Response = {name}_Response;

    fn get_type_support() -> *const std::ffi::c_void {{
        // SAFETY: no preconditions.
        unsafe {{ rosidl_typesupport_c__get_service_type_support_handle__{c}() }}
    }}
}}
'''.format(pkg=self.package, c=c, name=name)).split('\n')

    # ---- files ------------------------------------------------------------

    def render(self, kind, specs, rmw):
        out = [
            '// Generated by motedb scripts/rosidl_rs_gen.py from %s/%s/*.idl; do not edit.'
            % (self.package, kind),
            '#[cfg(feature = "serde")]',
            'use serde::{Deserialize, Serialize};',
            '',
        ]
        for spec in specs:
            if isinstance(spec, Message):
                out.extend(self.rmw_message(spec) if rmw else self.idiomatic_message(spec))
            else:
                for m in (spec.request_message, spec.response_message):
                    out.extend(self.rmw_message(m) if rmw else self.idiomatic_message(m))
                out.extend(self.service(spec))
        while out and out[-1] == '':
            out.pop()
        return '\n'.join(out) + '\n'


def package_version(share):
    try:
        root = ET.parse(share / 'package.xml').getroot()
        version = (root.findtext('version') or '').strip()
    except (OSError, ET.ParseError):
        version = ''
    parts = version.split('.')
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return version
    return '0.0.0'


def load_specs(share, package, kind):
    specs = []
    folder = share / kind
    if not folder.is_dir():
        return specs
    for idl in sorted(folder.glob('*.idl')):
        locator = IdlLocator(share, Path(kind) / idl.name)
        try:
            content = parse_idl_file(locator).content
        except Exception as exc:  # the parser raises assorted exception types
            raise GenError('%s: cannot parse: %s' % (idl, exc)) from exc
        wanted = Message if kind == 'msg' else Service
        for elem in content.elements:
            if isinstance(elem, wanted):
                ns = (elem.structure.namespaced_type if isinstance(elem, Message)
                      else elem.namespaced_type)
                if list(ns.namespaces) != [package, kind]:
                    raise GenError('%s: unexpected namespace %s' % (idl, ns.namespaces))
                specs.append(elem)
    return specs


def cargo_toml(package, version, deps):
    lines = [
        '# Generated by motedb scripts/rosidl_rs_gen.py; do not edit.',
        '[package]',
        'name = "%s"' % package,
        'version = "%s"' % version,
        'edition = "2021"',
        '',
        '[dependencies]',
        'rosidl_runtime_rs = "%s"' % RUNTIME_VERSION,
        'serde = { version = "1", optional = true, features = ["derive"] }',
        'serde-big-array = { version = "0.5.1", optional = true }',
    ]
    lines += ['%s = "*"' % dep for dep in deps]
    serde = ['"dep:serde"', '"dep:serde-big-array"', '"rosidl_runtime_rs/serde"']
    serde += ['"%s/serde"' % dep for dep in deps]
    lines += [
        '',
        '[features]',
        'serde = [%s]' % ', '.join(serde),
        '',
        '# Read by the ros-env crate: include!() this package into ros_env::%s.' % package,
        '[package.metadata.ros-env]',
        'include = true',
    ]
    return '\n'.join(lines) + '\n'


def lib_rs(kinds):
    lines = [
        '// Generated by motedb scripts/rosidl_rs_gen.py; do not edit.',
        '// Only used when this crate is built on its own; ros-env ignores this file.',
        '#![allow(non_camel_case_types, missing_docs)]',
        '#![allow(clippy::derive_partial_eq_without_eq, clippy::upper_case_acronyms)]',
        '',
    ]
    for kind in kinds:
        lines += [
            '#[path = "%s.rs"]' % kind,
            'mod %s_idiomatic;' % kind,
            'pub mod %s {' % kind,
            '    pub use super::%s_idiomatic::*;' % kind,
            '    pub mod rmw;',
            '}',
            '',
        ]
    return '\n'.join(lines).rstrip('\n') + '\n'


def generate(prefix, package):
    share = prefix / 'share' / package
    if not share.is_dir():
        raise GenError('%s: no such package directory' % share)
    gen = Generator(package)
    files = {}
    kinds = []
    for kind in KINDS:
        specs = load_specs(share, package, kind)
        if not specs:
            continue
        kinds.append(kind)
        files['src/%s.rs' % kind] = gen.render(kind, specs, rmw=False)
        files['src/%s/rmw.rs' % kind] = gen.render(kind, specs, rmw=True)
    if not kinds:
        raise GenError('%s: no msg or srv interfaces found' % share)
    files['src/lib.rs'] = lib_rs(kinds)
    files['Cargo.toml'] = cargo_toml(package, package_version(share), sorted(gen.deps))
    write_tree(share / 'rust', files)
    return sorted(gen.deps)


def write_tree(root, files):
    for rel, text in sorted(files.items()):
        text.encode('ascii')  # raises if anything non-ASCII slipped through
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if path.read_text(encoding='ascii') == text:
                continue
        except (OSError, UnicodeDecodeError):
            pass
        tmp = path.with_name(path.name + '.tmp')
        tmp.write_text(text, encoding='ascii')
        os.replace(tmp, path)
    # Remove what an earlier run wrote to src/ and this one did not (e.g. a kind that
    # is gone): ros-env include!()s every file in src/.
    keep = {root / rel for rel in files}
    src = root / 'src'
    for dirpath, dirnames, filenames in os.walk(src, topdown=False):
        for fn in filenames:
            p = Path(dirpath) / fn
            if p not in keep:
                p.unlink()
        if Path(dirpath) != src and not os.listdir(dirpath):
            os.rmdir(dirpath)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--prefix', required=True, type=Path,
                    help='ament prefix holding share/<pkg>/{msg,srv}/*.idl')
    ap.add_argument('packages', nargs='+', metavar='pkg')
    args = ap.parse_args(argv)
    prefix = args.prefix.resolve()
    missing = {}
    try:
        for package in args.packages:
            deps = generate(prefix, package)
            for dep in deps:
                if not (prefix / 'share' / dep / 'rust' / 'Cargo.toml').exists() \
                        and dep not in args.packages:
                    missing.setdefault(dep, []).append(package)
            print('%s: %s/share/%s/rust' % (package, prefix, package))
    except GenError as exc:
        print('rosidl_rs_gen: error: %s' % exc, file=sys.stderr)
        return 1
    for dep, users in sorted(missing.items()):
        print('rosidl_rs_gen: warning: %s needs %s, which has no generated crate in this '
              'prefix (ros-env will drop %s)' % (', '.join(users), dep, ', '.join(users)),
              file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
