//! `ensemble import` and `ensemble export`.
