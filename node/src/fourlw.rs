//! Four-letter words on the client port (ZooKeeper's `FourLetterCommands`).

/// Every word ZooKeeper 3.8 recognises from the first four bytes of a connection.
pub const KNOWN: &[&str] = &[
    "conf", "cons", "crst", "dump", "envi", "gtmk", "ruok", "stmk", "srst", "srvr", "stat", "wchc",
    "wchp", "wchs", "mntr", "isro", "hash", "dirs",
];

pub fn is_known(word: &str) -> bool {
    KNOWN.contains(&word)
}
