//! Recipe claims (ZooKeeper's "Recipes and Solutions"): the lock's external resource sees
//! holders in order (`recipe.lock-two-holders`; the fenced lock rejects stale tokens), and at
//! the end names are unique and kept, monitors and config readers current.

use crate::check::{Claim, Violation, violation};
use crate::world::{Who, World};
use ensemble_core::zxid::Zxid;
use ensemble_proto::proto::Request;

/// The lock recipe's external resource: the highest lock token that acted on it, and who.
#[derive(Default)]
pub struct Resource {
    pub(crate) max: i64,
    pub(crate) last: Option<(usize, i64)>,
}

impl World {
    pub(crate) fn resource(&mut self, c: usize, token: i64, fenced: bool) {
        let who = Who::C(c);
        if fenced && token < self.resource.max {
            self.stats.resource_rejected += 1;
            self.log(
                who,
                "",
                format_args!(
                    "resource REJECTS token {} (fenced: {} seen)",
                    Zxid(token as u64),
                    Zxid(self.resource.max as u64)
                ),
            );
            return;
        }
        if token < self.resource.max {
            let (holder, t) = self.resource.last.unwrap_or((usize::MAX, 0));
            self.fail(violation(Claim::RecipeLockTwoHolders, self.sched.now, format!("client {c} acted on the resource holding the lock with node zxid {}, after client {holder} had acted holding it with node zxid {}: two holders at once", Zxid(token as u64), Zxid(t as u64))));
            return;
        }
        self.resource.max = token;
        self.resource.last = Some((c, token));
        self.log(
            who,
            "",
            format_args!("resource accepts token {}", Zxid(token as u64)),
        );
    }
}
impl World {
    /// The recipes' claims at the end of a run: names unique and kept, monitors and config
    /// readers current.
    pub(crate) fn recipe_end_checks(&mut self) -> Result<(), Violation> {
        let now = self.sched.now;
        let r = &self.reference;
        // recipes
        if let Some(v) = &self.shared.name_violation {
            return Err(violation(Claim::RecipeDuplicateName, now, v.clone()));
        }
        let last = r.last;
        for name in self.shared.names.keys() {
            if r.node_at(name, last).is_none() {
                return Err(violation(
                    Claim::RecipeNameLost,
                    now,
                    format!("name {name} was given out but is gone from the final tree"),
                ));
            }
        }
        for c in &self.clients {
            use crate::client::RoleState;
            if let RoleState::Monitor(w) | RoleState::ConfigReader(w) = &c.role {
                let path = if matches!(c.role, RoleState::Monitor(_)) {
                    "/members"
                } else {
                    "/config"
                };
                let req = if matches!(c.role, RoleState::Monitor(_)) {
                    Request::GetChildren {
                        path: path.into(),
                        watch: false,
                    }
                } else {
                    Request::GetData {
                        path: path.into(),
                        watch: false,
                    }
                };
                let want = r.expected_read(&req, last);
                if want.is_some() && w.view != want {
                    let claim = if matches!(c.role, RoleState::Monitor(_)) {
                        Claim::RecipeMembershipView
                    } else {
                        Claim::RecipeConfigStale
                    };
                    return Err(violation(
                        claim,
                        now,
                        format!(
                            "client {} ends with view {:?} (read at {}), but {path} is {:?} at {last}",
                            c.idx,
                            w.view,
                            Zxid(w.view_zxid as u64),
                            want
                        ),
                    ));
                }
            }
            if let RoleState::Lock(l) | RoleState::Election(l) = &c.role {
                self.stats.lock_acquisitions += l.acquisitions;
            }
        }
        Ok(())
    }
}
