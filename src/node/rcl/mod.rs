//! Thin safe wrappers over the rcl calls the recorder needs, shared by every
//! client library build (rclrs and r2r keep their rcl handles private and
//! offer no serialized take with message info): a context and node of the
//! recorder's own, serialized subscriptions with `rmw_message_info_t`, a
//! wait set, graph queries and runtime type support lookup. All unsafe code
//! of the recorder is in this file.

pub mod overrides;
pub mod recorder;

// Generated code: which of these lints fire depends on the headers.
#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    unused_imports,
    clippy::all,
    reason = "bindgen output for the rcl C API"
)]
mod ffi {
    include!(concat!(env!("OUT_DIR"), "/rcl_bindings.rs"));
}

use ffi::*;
use std::ffi::{CStr, CString};
use std::path::Path;
use std::ptr;

/// rcl return code of a failed call, with the call's name.
#[derive(Debug)]
pub struct RclError {
    pub call: &'static str,
    pub code: i32,
    pub detail: String,
}

impl std::fmt::Display for RclError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} returned {}: {}", self.call, self.code, self.detail)
    }
}

fn check(call: &'static str, code: rcl_ret_t) -> Result<(), RclError> {
    if code == RCL_RET_OK as rcl_ret_t {
        return Ok(());
    }
    // SAFETY: rcutils keeps a thread-local error string; reading and
    // resetting it is what every rcl client does after a failure.
    let detail = unsafe {
        let s = rcutils_get_error_string();
        let text = CStr::from_ptr(s.str_.as_ptr())
            .to_string_lossy()
            .into_owned();
        rcutils_reset_error();
        text
    };
    Err(RclError { call, code, detail })
}

fn cstring(call: &'static str, s: &str) -> Result<CString, RclError> {
    CString::new(s).map_err(|_| RclError {
        call,
        code: RCL_RET_INVALID_ARGUMENT as i32,
        detail: format!("{s:?} contains a NUL byte"),
    })
}

/// An rcl context and one node in it, owned by the recorder thread.
pub struct RclNode {
    context: Box<rcl_context_t>,
    node: Box<rcl_node_t>,
}

impl RclNode {
    /// Initializes a context from the environment (domain id, discovery
    /// range) and a node `name` in `namespace`.
    pub fn new(name: &str, namespace: &str) -> Result<RclNode, RclError> {
        let c_name = cstring("rcl_node_init", name)?;
        let c_ns = cstring("rcl_node_init", namespace)?;
        // SAFETY: zero-initialized handles are initialized by rcl before
        // use and finalized in Drop; they live in Boxes so rcl may keep
        // pointers to them.
        unsafe {
            let mut context = Box::new(rcl_get_zero_initialized_context());
            let mut options = rcl_get_zero_initialized_init_options();
            check(
                "rcl_init_options_init",
                rcl_init_options_init(&mut options, rcutils_get_default_allocator()),
            )?;
            let ret = rcl_init(0, ptr::null(), &options, context.as_mut());
            rcl_init_options_fini(&mut options);
            check("rcl_init", ret)?;
            let mut node = Box::new(rcl_get_zero_initialized_node());
            let node_options = rcl_node_get_default_options();
            let ret = rcl_node_init(
                node.as_mut(),
                c_name.as_ptr(),
                c_ns.as_ptr(),
                context.as_mut(),
                &node_options,
            );
            if let Err(e) = check("rcl_node_init", ret) {
                rcl_shutdown(context.as_mut());
                rcl_context_fini(context.as_mut());
                return Err(e);
            }
            Ok(RclNode { context, node })
        }
    }

    /// Every topic on the graph with its type names.
    pub fn topic_names_and_types(&self) -> Result<Vec<(String, Vec<String>)>, RclError> {
        // SAFETY: rcl fills a zero-initialized names_and_types that we read
        // within its sizes and then finalize.
        unsafe {
            let mut nat = rmw_get_zero_initialized_names_and_types();
            let mut alloc = rcutils_get_default_allocator();
            check(
                "rcl_get_topic_names_and_types",
                rcl_get_topic_names_and_types(self.node.as_ref(), &mut alloc, false, &mut nat),
            )?;
            let mut out = Vec::with_capacity(nat.names.size);
            for i in 0..nat.names.size {
                let name = CStr::from_ptr(*nat.names.data.add(i))
                    .to_string_lossy()
                    .into_owned();
                let types = &*nat.types.add(i);
                let types = (0..types.size)
                    .map(|j| {
                        CStr::from_ptr(*types.data.add(j))
                            .to_string_lossy()
                            .into_owned()
                    })
                    .collect();
                out.push((name, types));
            }
            rmw_names_and_types_fini(&mut nat);
            Ok(out)
        }
    }

    /// QoS profiles offered by the publishers of `topic`.
    pub fn publishers(&self, topic: &str) -> Result<Vec<Endpoint>, RclError> {
        let c_topic = cstring("rcl_get_publishers_info_by_topic", topic)?;
        // SAFETY: as above; the array is read within its size, then freed.
        unsafe {
            let mut alloc = rcutils_get_default_allocator();
            let mut infos = rmw_get_zero_initialized_topic_endpoint_info_array();
            check(
                "rcl_get_publishers_info_by_topic",
                rcl_get_publishers_info_by_topic(
                    self.node.as_ref(),
                    &mut alloc,
                    c_topic.as_ptr(),
                    false,
                    &mut infos,
                ),
            )?;
            let out = (0..infos.size)
                .map(|i| {
                    let info = &*infos.info_array.add(i);
                    Endpoint {
                        qos: info.qos_profile,
                        type_hash: type_hash_text(&info.topic_type_hash),
                    }
                })
                .collect();
            rmw_topic_endpoint_info_array_fini(&mut infos, &mut alloc);
            Ok(out)
        }
    }
}

impl Drop for RclNode {
    fn drop(&mut self) {
        // SAFETY: both handles were initialized in new(); subscriptions
        // and wait sets borrow the node and are dropped before it.
        unsafe {
            rcl_node_fini(self.node.as_mut());
            rcl_shutdown(self.context.as_mut());
            rcl_context_fini(self.context.as_mut());
        }
    }
}

/// A publisher as the graph reports it.
pub struct Endpoint {
    pub qos: rmw_qos_profile_t,
    /// `RIHS01_<64 hex>`; None when the middleware reports no hash.
    pub type_hash: Option<String>,
}

/// rosidl_stringify_type_hash for the one version that exists:
/// `RIHS01_<value in lowercase hex>`. Unset (0) or unknown versions give
/// None, as rosbag2's type_hash_to_string gives "".
fn type_hash_text(h: &rosidl_type_hash_t) -> Option<String> {
    if h.version != 1 {
        return None;
    }
    let hex: String = h.value.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("RIHS01_{hex}"))
}

/// Chosen subscription QoS.
pub struct SubQos {
    pub reliable: bool,
    pub transient_local: bool,
    pub depth: usize,
}

impl SubQos {
    /// Sets history (keep last), depth, reliability and durability of an
    /// rcl publisher's or subscription's profile.
    fn apply(&self, p: &mut rmw_qos_profile_t) {
        p.history = rmw_qos_history_policy_e::RMW_QOS_POLICY_HISTORY_KEEP_LAST;
        p.depth = self.depth;
        p.reliability = if self.reliable {
            rmw_qos_reliability_policy_e::RMW_QOS_POLICY_RELIABILITY_RELIABLE
        } else {
            rmw_qos_reliability_policy_e::RMW_QOS_POLICY_RELIABILITY_BEST_EFFORT
        };
        p.durability = if self.transient_local {
            rmw_qos_durability_policy_e::RMW_QOS_POLICY_DURABILITY_TRANSIENT_LOCAL
        } else {
            rmw_qos_durability_policy_e::RMW_QOS_POLICY_DURABILITY_VOLATILE
        };
    }
}

/// What one take returns besides the bytes.
pub struct TakeInfo {
    pub source_timestamp: i64,
    pub received_timestamp: i64,
    pub publication_sequence_number: u64,
    pub publisher_gid: [u8; 16],
}

/// A subscription that takes serialized (CDR) messages.
pub struct SerializedSub<'n> {
    node: &'n RclNode,
    handle: Box<rcl_subscription_t>,
    buffer: rcl_serialized_message_t,
}

impl<'n> SerializedSub<'n> {
    pub fn new(
        node: &'n RclNode,
        topic: &str,
        ts: TypeSupport,
        qos: &SubQos,
    ) -> Result<SerializedSub<'n>, RclError> {
        let c_topic = cstring("rcl_subscription_init", topic)?;
        // SAFETY: type support comes from the type's own library (see
        // TypeSupport); handle and buffer are finalized in Drop.
        unsafe {
            let mut options = rcl_subscription_get_default_options();
            qos.apply(&mut options.qos);
            let mut handle = Box::new(rcl_get_zero_initialized_subscription());
            check(
                "rcl_subscription_init",
                rcl_subscription_init(
                    handle.as_mut(),
                    node.node.as_ref(),
                    ts.0,
                    c_topic.as_ptr(),
                    &options,
                ),
            )?;
            let mut buffer = rcutils_get_zero_initialized_uint8_array();
            let alloc = rcutils_get_default_allocator();
            if let Err(e) = check(
                "rcutils_uint8_array_init",
                rcutils_uint8_array_init(&mut buffer, 4096, &alloc),
            ) {
                rcl_subscription_fini(handle.as_mut(), node.node.as_ptr_mut());
                return Err(e);
            }
            Ok(SerializedSub {
                node,
                handle,
                buffer,
            })
        }
    }

    /// Takes one message: Ok(None) when none is waiting.
    pub fn take(&mut self) -> Result<Option<(Vec<u8>, TakeInfo)>, RclError> {
        // SAFETY: the buffer is an initialized rcutils array that rcl grows
        // as needed; bytes are copied out within buffer_length.
        unsafe {
            let mut info = rmw_get_zero_initialized_message_info();
            let ret = rcl_take_serialized_message(
                self.handle.as_ref(),
                &mut self.buffer,
                &mut info,
                ptr::null_mut(),
            );
            if ret == RCL_RET_SUBSCRIPTION_TAKE_FAILED as rcl_ret_t {
                return Ok(None);
            }
            check("rcl_take_serialized_message", ret)?;
            let bytes =
                std::slice::from_raw_parts(self.buffer.buffer, self.buffer.buffer_length).to_vec();
            Ok(Some((
                bytes,
                TakeInfo {
                    source_timestamp: info.source_timestamp,
                    received_timestamp: info.received_timestamp,
                    publication_sequence_number: info.publication_sequence_number,
                    publisher_gid: info.publisher_gid.data,
                },
            )))
        }
    }
}

impl Drop for SerializedSub<'_> {
    fn drop(&mut self) {
        // SAFETY: initialized in new(); the node outlives us ('n).
        unsafe {
            rcutils_uint8_array_fini(&mut self.buffer);
            rcl_subscription_fini(self.handle.as_mut(), self.node.node.as_ptr_mut());
        }
    }
}

trait AsPtrMut {
    fn as_ptr_mut(&self) -> *mut rcl_node_t;
}

impl AsPtrMut for Box<rcl_node_t> {
    /// rcl_subscription_fini takes a mutable node pointer but does not
    /// modify the node.
    fn as_ptr_mut(&self) -> *mut rcl_node_t {
        self.as_ref() as *const rcl_node_t as *mut rcl_node_t
    }
}

/// A publisher of serialized (CDR) messages: the benchmark harness
/// (`node::bench`) publishes through it.
pub struct SerializedPub<'n> {
    node: &'n RclNode,
    handle: Box<rcl_publisher_t>,
}

impl<'n> SerializedPub<'n> {
    pub fn new(
        node: &'n RclNode,
        topic: &str,
        ts: TypeSupport,
        qos: &SubQos,
    ) -> Result<SerializedPub<'n>, RclError> {
        let c_topic = cstring("rcl_publisher_init", topic)?;
        // SAFETY: as for SerializedSub; the handle is finalized in Drop.
        unsafe {
            let mut options = rcl_publisher_get_default_options();
            qos.apply(&mut options.qos);
            let mut handle = Box::new(rcl_get_zero_initialized_publisher());
            check(
                "rcl_publisher_init",
                rcl_publisher_init(
                    handle.as_mut(),
                    node.node.as_ref(),
                    ts.0,
                    c_topic.as_ptr(),
                    &options,
                ),
            )?;
            Ok(SerializedPub { node, handle })
        }
    }

    /// Publishes `cdr` (encapsulation header included) as is.
    pub fn publish(&self, cdr: &[u8]) -> Result<(), RclError> {
        // SAFETY: rcl reads buffer_length bytes from buffer and keeps no
        // pointer to it after the call; the allocator is never used.
        unsafe {
            let msg = rcl_serialized_message_t {
                buffer: cdr.as_ptr() as *mut u8,
                buffer_length: cdr.len(),
                buffer_capacity: cdr.len(),
                allocator: rcutils_get_default_allocator(),
            };
            check(
                "rcl_publish_serialized_message",
                rcl_publish_serialized_message(self.handle.as_ref(), &msg, ptr::null_mut()),
            )
        }
    }

    /// Subscriptions matched on the graph.
    pub fn subscription_count(&self) -> Result<usize, RclError> {
        let mut n = 0usize;
        // SAFETY: a valid publisher and an out-parameter.
        unsafe {
            check(
                "rcl_publisher_get_subscription_count",
                rcl_publisher_get_subscription_count(self.handle.as_ref(), &mut n),
            )?;
        }
        Ok(n)
    }

    /// Waits until every reliable subscriber acknowledged everything
    /// published; false on timeout.
    pub fn wait_for_all_acked(&self, timeout: std::time::Duration) -> Result<bool, RclError> {
        let ns = i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX);
        // SAFETY: a valid publisher.
        let ret = unsafe { rcl_publisher_wait_for_all_acked(self.handle.as_ref(), ns) };
        if ret == RCL_RET_TIMEOUT as rcl_ret_t {
            return Ok(false);
        }
        check("rcl_publisher_wait_for_all_acked", ret)?;
        Ok(true)
    }
}

impl Drop for SerializedPub<'_> {
    fn drop(&mut self) {
        // SAFETY: initialized in new(); the node outlives us ('n).
        unsafe {
            rcl_publisher_fini(self.handle.as_mut(), self.node.node.as_ptr_mut());
        }
    }
}

/// Waits on a set of subscriptions.
pub struct WaitSet<'n> {
    node: &'n RclNode,
    handle: rcl_wait_set_t,
    capacity: usize,
}

impl<'n> WaitSet<'n> {
    pub fn new(node: &'n RclNode) -> WaitSet<'n> {
        // SAFETY: a zero-initialized wait set is valid to resize/fini.
        WaitSet {
            node,
            handle: unsafe { rcl_get_zero_initialized_wait_set() },
            capacity: 0,
        }
    }

    /// Waits up to `timeout` for any of `subs`; returns which are ready.
    pub fn wait(
        &mut self,
        subs: &[&SerializedSub<'_>],
        timeout: std::time::Duration,
    ) -> Result<Vec<bool>, RclError> {
        if subs.is_empty() {
            std::thread::sleep(timeout);
            return Ok(Vec::new());
        }
        // SAFETY: the wait set is (re)initialized to hold subs.len()
        // subscriptions; the subscription pointers stay valid during
        // rcl_wait because `subs` borrows them.
        unsafe {
            if self.capacity != subs.len() {
                self.fini();
                let ctx = self.node.context.as_ref() as *const rcl_context_t as *mut rcl_context_t;
                check(
                    "rcl_wait_set_init",
                    rcl_wait_set_init(
                        &mut self.handle,
                        subs.len(),
                        0,
                        0,
                        0,
                        0,
                        0,
                        ctx,
                        rcutils_get_default_allocator(),
                    ),
                )?;
                self.capacity = subs.len();
            }
            check("rcl_wait_set_clear", rcl_wait_set_clear(&mut self.handle))?;
            for s in subs {
                check(
                    "rcl_wait_set_add_subscription",
                    rcl_wait_set_add_subscription(
                        &mut self.handle,
                        s.handle.as_ref(),
                        ptr::null_mut(),
                    ),
                )?;
            }
            let ret = rcl_wait(
                &mut self.handle,
                i64::try_from(timeout.as_nanos()).unwrap_or(i64::MAX),
            );
            if ret == RCL_RET_TIMEOUT as rcl_ret_t {
                return Ok(vec![false; subs.len()]);
            }
            check("rcl_wait", ret)?;
            let ready = std::slice::from_raw_parts(
                self.handle.subscriptions,
                self.handle.size_of_subscriptions,
            );
            Ok(ready.iter().map(|p| !p.is_null()).collect())
        }
    }

    fn fini(&mut self) {
        if self.capacity > 0 {
            // SAFETY: initialized when capacity > 0.
            unsafe {
                rcl_wait_set_fini(&mut self.handle);
                self.handle = rcl_get_zero_initialized_wait_set();
            }
            self.capacity = 0;
        }
    }
}

impl Drop for WaitSet<'_> {
    fn drop(&mut self) {
        self.fini();
    }
}

/// A message type support handle from the type's rosidl_typesupport_c
/// library, loaded at run time so any installed type can be recorded.
#[derive(Clone, Copy)]
pub struct TypeSupport(*const rosidl_message_type_support_t);

/// Whether the middleware fills `publication_sequence_number` of the
/// message info (rmw_feature_supported), which gap counting needs.
pub fn publication_sequence_numbers_supported() -> bool {
    // SAFETY: a pure query of the linked rmw implementation.
    unsafe {
        rmw_feature_supported(rmw_feature_e::RMW_FEATURE_MESSAGE_INFO_PUBLICATION_SEQUENCE_NUMBER)
    }
}

/// Finds `pkg/msg/Type`'s type support in `lib<pkg>__rosidl_typesupport_c.so`
/// under the prefixes (else the loader's search path). The library stays
/// loaded for the life of the process.
pub fn load_type_support(
    type_name: &str,
    prefixes: &[std::path::PathBuf],
) -> Result<TypeSupport, String> {
    let parts: Vec<&str> = type_name.split('/').collect();
    let [pkg, kind, name] = parts.as_slice() else {
        return Err(format!("type name {type_name:?} is not pkg/msg/Type"));
    };
    let file = format!("lib{pkg}__rosidl_typesupport_c.so");
    let candidates: Vec<String> = prefixes
        .iter()
        .map(|p| p.join("lib").join(&file))
        .filter(|p| Path::exists(p))
        .map(|p| p.display().to_string())
        .chain(std::iter::once(file.clone()))
        .collect();
    let symbol =
        format!("rosidl_typesupport_c__get_message_type_support_handle__{pkg}__{kind}__{name}");
    let c_symbol =
        CString::new(symbol.clone()).map_err(|_| format!("bad type name {type_name:?}"))?;
    for lib in &candidates {
        let Ok(c_lib) = CString::new(lib.as_str()) else {
            continue;
        };
        // SAFETY: dlopen/dlsym with NUL-terminated names; the handle is
        // never closed, so the returned type support stays valid. The
        // symbol has the signature rosidl generates:
        // `const rosidl_message_type_support_t * (void)`.
        unsafe {
            let handle = libc::dlopen(c_lib.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
            if handle.is_null() {
                continue;
            }
            let sym = libc::dlsym(handle, c_symbol.as_ptr());
            if sym.is_null() {
                continue;
            }
            let get: extern "C" fn() -> *const rosidl_message_type_support_t =
                std::mem::transmute(sym);
            let ts = get();
            if !ts.is_null() {
                return Ok(TypeSupport(ts));
            }
        }
    }
    Err(format!(
        "no type support for {type_name}: {file} with {symbol} not found"
    ))
}
