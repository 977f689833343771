//! Schema-driven CDR decoding of stored messages for offline tools.
