//! Combining over the prepared form: the members of a batch decided in
//! arrival order, each from the numbers its caller read for it (all in one
//! read view) plus the deltas of the members admitted before it (semantics,
//! "Combining concurrent consumes"; [`evaluate_batch`](crate::evaluate_batch)
//! is the same over a snapshot, and the property tests hold the two to each
//! other).
//!
//! Members are given by name, not by the numbers of
//! [`number_request`](Prepared::number_request): a number for a resource no
//! limit mentions stands only until the next `number_request`, so the
//! numbers of a batch's earlier members could already stand for nothing.

use super::{PathDecision, Prepared, Resources};
use crate::decide::{Decision, Request};
use crate::error::{Error, Result};
use crate::model::Model;
use crate::snapshot::check_request;

/// One member of [`Prepared::evaluate_batch`]: a request and the numbers
/// [`Prepared::evaluate`] takes for it, in the same shapes (`n` being the
/// number of deltas and `path` the project's [`Prepared::path`]):
/// `local[r]` = u(project, r), `subtree[k * n + r]` = U(path[k], r),
/// `generations[k]` = the generation read for path[k]. Every member's
/// numbers come from the batch's one read: a member's own admission is
/// not in the numbers of the members after it (the batch adds it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedMember {
    pub request: Request,
    pub local: Vec<i64>,
    pub subtree: Vec<i64>,
    pub generations: Vec<u64>,
}

impl Prepared {
    /// Decides `members` in order, each against its own numbers plus the
    /// deltas of the members admitted before it: the decisions (and
    /// errors) the same requests would get one by one, each committed
    /// before the next is read. One result per member; a member's error
    /// is its own and leaves the others' decisions as they were. Claims
    /// are named (project ids, with the generations the member passed).
    ///
    /// A member's errors come in [`evaluate`](Self::evaluate)'s order (its
    /// request, an unknown project, `shape-mismatch`, the usage errors of
    /// its own numbers), then `overflow` when adding an earlier admission
    /// to its usage overflows, then the decision's (release below zero,
    /// overflow).
    pub fn evaluate_batch(&self, members: &[PreparedMember]) -> Vec<Result<Decision>> {
        // (node, resource, delta) of every admitted member so far.
        let mut earlier: Vec<(usize, &str, i64)> = Vec::new();
        members
            .iter()
            .map(|member| {
                let decided = self.decide_member(member, &earlier);
                match decided {
                    Ok((node, decision)) => {
                        if let PathDecision::Admitted { .. } = decision {
                            earlier.extend(
                                member
                                    .request
                                    .deltas
                                    .iter()
                                    .map(|d| (node, d.resource.as_str(), d.delta)),
                            );
                        }
                        let path = self.nodes(node);
                        let ids: Vec<&str> = path.iter().map(|&n| self.ids[n].as_str()).collect();
                        Ok(decision.named(&ids, &member.generations))
                    }
                    Err(e) => Err(e),
                }
            })
            .collect()
    }

    /// One member's decision (with its node), its usage raised by
    /// `earlier` as [`evaluate_batch`](crate::evaluate_batch) raises a
    /// snapshot's: the member's own usage by an earlier admission of the
    /// same project; each path node's subtree usage by an earlier admission
    /// in its subtree (under flat, only the project's own counts).
    fn decide_member(
        &self,
        member: &PreparedMember,
        earlier: &[(usize, &str, i64)],
    ) -> Result<(usize, PathDecision)> {
        let request = &member.request;
        let names: Vec<&str> = request.deltas.iter().map(|d| d.resource.as_str()).collect();
        check_request(&request.project, &names)?;
        let node = self.require(&request.project)?;
        let path = self.nodes(node);
        self.check_numbers(
            &path,
            &names,
            &member.local,
            &member.subtree,
            &member.generations,
        )?;
        let n = names.len();
        let mut local = member.local.clone();
        let mut subtree = member.subtree.clone();
        for &(from, resource, delta) in earlier {
            let Some(r) = names.iter().position(|&x| x == resource) else {
                continue;
            };
            let overflow = |at: usize| Error::Overflow {
                project: self.ids[at].clone(),
                resource: resource.to_string(),
            };
            if from == node {
                local[r] = local[r].checked_add(delta).ok_or_else(|| overflow(node))?;
            }
            if self.model == Model::Flat {
                // Flat decides on the project's own usage alone.
                continue;
            }
            let above = self.nodes(from);
            for (k, &at) in path.iter().enumerate() {
                if above.contains(&at) {
                    let u = &mut subtree[k * n + r];
                    *u = u.checked_add(delta).ok_or_else(|| overflow(at))?;
                }
            }
        }
        let limits = self.limits_of(&names);
        let amounts: Vec<i64> = request.deltas.iter().map(|d| d.delta).collect();
        let resources = Resources {
            names: &names,
            limits: &limits,
        };
        let decision = self.decide_checked(
            &path,
            &resources,
            &amounts,
            &local,
            &subtree,
            &member.generations,
        )?;
        Ok((node, decision))
    }
}
