//! The transport: links between servers (`peer`: per (sender, receiver, channel) FIFO, as TCP,
//! until a break) and client connections (`client`).

pub(crate) mod client;
mod peer;

pub(crate) use peer::chname;
