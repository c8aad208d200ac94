//! The client wire protocol's byte encoding (jute). SKELETON (being written).
