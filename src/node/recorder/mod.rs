//! Recorder logic that does not depend on the client library: topic
//! selection, QoS adaptation, the queue to the writer thread and loss
//! accounting. The middleware side (subscriptions, takes, graph queries)
//! is in the adapter.

pub mod clock;
pub mod ingest;
pub mod latency;
pub mod marks;
pub mod qos;
pub mod select;
