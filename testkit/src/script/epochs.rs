//! `epochs id=N accepted=E from=S current=C`: a crashed server's persisted epochs, as some
//! history left them.

use super::{World, num};
use ensemble_core::server::Epochs;

pub fn epochs(w: &mut World, args: &[&str]) {
    let id = num(args, "id");
    assert!(!w.up(id), "epochs of a running server");
    w.disks.get_mut(&id).expect("disk").persist_epochs(Epochs {
        accepted_epoch: num(args, "accepted") as u32,
        accepted_from: num(args, "from"),
        current_epoch: num(args, "current") as u32,
    });
}
