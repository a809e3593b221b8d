//! Unit tests of the bus rules, on a few state machines wired together with instant delivery
//! (the simulator covers faults; these pin down one rule each).

use std::collections::{BTreeMap, VecDeque};

use super::*;
use crate::wire;

/// Nodes with instant, lossless links; every frame goes through the wire codec.
struct Harness {
    nodes: Vec<ClusterState>,
    now: u64,
    conns: BTreeMap<(usize, LinkId), (usize, LinkId)>,
    queue: VecDeque<(usize, Input)>,
    /// Every action each node emitted, in order.
    actions: Vec<(usize, Action)>,
    /// A node cut off from the others: its messages and connects are lost both ways.
    cut: Option<usize>,
    /// The ids of nodes replaced by [`Harness::kill`].
    killed: BTreeMap<usize, NodeId>,
    /// Nodes that asked for a write pause not yet reported in effect.
    pauses: Vec<usize>,
    /// Whether pauses are reported in effect as soon as the queue is empty (as a driver
    /// whose writes stop at once would).
    confirm_pauses: bool,
}

fn slot(n: u16) -> Slot {
    Slot::new(n).expect("valid slot")
}

impl Harness {
    fn new(n: usize) -> Harness {
        let nodes = (0..n)
            .map(|i| {
                let mut cfg = ClusterConfig::new(&format!("127.0.0.{}", i + 1), 7000);
                cfg.node_timeout_ms = 1000;
                ClusterState::new(cfg, 0, 1000 + i as u64)
            })
            .collect();
        Harness {
            nodes,
            now: 0,
            conns: BTreeMap::new(),
            queue: VecDeque::new(),
            actions: Vec::new(),
            cut: None,
            killed: BTreeMap::new(),
            pauses: Vec::new(),
            confirm_pauses: true,
        }
    }

    /// Node `i`'s id (the one it had before [`Harness::kill`], if killed).
    fn id(&self, i: usize) -> NodeId {
        self.killed
            .get(&i)
            .copied()
            .unwrap_or_else(|| self.nodes[i].myself())
    }

    fn admin(&mut self, i: usize, op: AdminOp) -> Result<AdminOk, AdminError> {
        let (ok, actions) = self.nodes[i].admin(self.now, op)?;
        self.carry_out(i, actions);
        self.drain();
        Ok(ok)
    }

    fn carry_out(&mut self, i: usize, actions: Vec<Action>) {
        if let Some(k) = actions.iter().position(|a| *a == Action::Persist) {
            assert_eq!(k, 0, "Persist must come first in its batch");
        }
        for action in actions {
            match &action {
                Action::Connect { link, ip, .. } => {
                    let to = (0..self.nodes.len()).find(|j| self.nodes[*j].config().ip == *ip);
                    if let Some(j) = to.filter(|j| !self.is_cut(i, *j)) {
                        let from_ip = self.nodes[i].config().ip.clone();
                        let peer = self.nodes[j].accept_link(self.now, &from_ip, ip).unwrap();
                        self.conns.insert((i, *link), (j, peer));
                        self.conns.insert((j, peer), (i, *link));
                        self.queue.push_back((i, Input::LinkUp(*link)));
                    } else {
                        self.queue.push_back((i, Input::LinkDown(*link)));
                    }
                }
                Action::Send { link, msg } => {
                    let to = self.conns.get(&(i, *link)).copied();
                    if let Some((j, peer)) = to.filter(|(j, _)| !self.is_cut(i, *j)) {
                        let bytes = wire::encode_to_vec(msg);
                        let (back, _) = wire::decode(&bytes).unwrap().unwrap();
                        self.queue
                            .push_back((j, Input::Message(peer, Box::new(back))));
                    }
                }
                Action::CloseLink(link) => {
                    if let Some((j, peer)) = self.conns.remove(&(i, *link)) {
                        self.conns.remove(&(j, peer));
                        self.queue.push_back((j, Input::LinkDown(peer)));
                    }
                }
                Action::PauseWrites { .. } => self.pauses.push(i),
                _ => {}
            }
            self.actions.push((i, action));
        }
    }

    fn is_cut(&self, a: usize, b: usize) -> bool {
        self.cut.is_some_and(|c| c == a || c == b)
    }

    fn drain(&mut self) {
        let mut budget = 100_000;
        loop {
            while let Some((i, input)) = self.queue.pop_front() {
                budget -= 1;
                assert!(budget > 0, "message storm");
                let actions = self.nodes[i].handle(self.now, input);
                self.carry_out(i, actions);
            }
            if !self.confirm_pauses || self.pauses.is_empty() {
                return;
            }
            for i in std::mem::take(&mut self.pauses) {
                self.confirm_pause(i);
            }
        }
    }

    /// Reports node `i`'s write pause in effect, at its current offset.
    fn confirm_pause(&mut self, i: usize) {
        let offset = self.nodes[i].repl_offset;
        let actions = self.nodes[i].writes_paused(self.now, offset);
        self.carry_out(i, actions);
    }

    /// Advances time in ticks, delivering everything in between.
    fn run(&mut self, ms: u64) {
        let end = self.now + ms;
        while self.now < end {
            self.now += TICK_INTERVAL_MS;
            for i in 0..self.nodes.len() {
                let actions = self.nodes[i].handle(self.now, Input::Tick);
                self.carry_out(i, actions);
                self.drain();
            }
        }
    }

    fn meet_all(&mut self) {
        for j in 1..self.nodes.len() {
            let ip = self.nodes[j].config().ip.clone();
            self.admin(
                0,
                AdminOp::Meet {
                    ip,
                    port: 7000,
                    bus_port: 17000,
                },
            )
            .unwrap();
        }
        self.run(3000);
    }

    fn events(&self, i: usize) -> Vec<&Event> {
        self.actions
            .iter()
            .filter(|(n, _)| *n == i)
            .filter_map(|(_, a)| match a {
                Action::Log(e) => Some(e),
                _ => None,
            })
            .collect()
    }
}

/// MEET: the met node is first a handshake entry, and both sides end up knowing each other by
/// their real ids, through gossip for the third node too.
#[test]
fn meet_handshake_learns_ids() {
    let mut h = Harness::new(3);
    h.meet_all();
    for i in 0..3 {
        let known: Vec<NodeId> = h.nodes[i].node_ids().copied().collect();
        assert_eq!(known.len(), 3, "node {i} knows {known:?}");
        for j in 0..3 {
            let flags = h.nodes[i].node_flags(&h.id(j)).unwrap();
            assert!(!flags.contains(NodeFlags::HANDSHAKE));
        }
    }
    assert!(h
        .events(0)
        .iter()
        .any(|e| matches!(e, Event::HandshakeDone(_))));
}

/// Two primaries with the same configEpoch: the one with the smaller id moves to a new epoch,
/// the other keeps its own.
#[test]
fn config_epoch_collision_moves_smaller_id() {
    let mut h = Harness::new(2);
    h.admin(0, AdminOp::AddSlots(vec![(slot(0), slot(99))]))
        .unwrap();
    h.admin(1, AdminOp::AddSlots(vec![(slot(100), slot(199))]))
        .unwrap();
    h.meet_all();
    let (a, b) = (h.nodes[0].my_config_epoch(), h.nodes[1].my_config_epoch());
    assert_ne!(a, b, "collision not resolved");
    let smaller = if h.id(0) < h.id(1) { 0 } else { 1 };
    assert!(h.nodes[smaller].my_config_epoch() > 0);
    assert_eq!(h.nodes[1 - smaller].my_config_epoch(), 0);
}

/// "Last failover wins": a claim with a greater configEpoch takes slots over; an UPDATE about
/// a newer owner makes a stale primary give its slots up and follow it.
#[test]
fn greater_epoch_wins_and_update_demotes_stale_primary() {
    let mut h = Harness::new(2);
    h.admin(0, AdminOp::SetConfigEpoch(1)).unwrap();
    h.admin(0, AdminOp::AddSlots(vec![(slot(0), slot(16383))]))
        .unwrap();
    h.admin(1, AdminOp::SetConfigEpoch(2)).unwrap();
    h.meet_all();
    assert_eq!(h.nodes[1].slot_owner(slot(5)), Some(h.id(0)));
    // Node 1 hears, in an UPDATE, that it owns everything at epoch 9 (as after a failover it
    // won elsewhere): node 0 must lose its slots and follow node 1.
    let update = Message {
        sender: h.nodes[1].sender_info(),
        body: Body::Update {
            node: h.id(1),
            config_epoch: 9,
            slots: crate::topology::SlotBitmap::full(),
        },
    };
    let link = h
        .conns
        .keys()
        .find(|(n, _)| *n == 0)
        .map(|(_, l)| *l)
        .unwrap();
    let actions = h.nodes[0].handle(h.now, Input::Message(link, Box::new(update)));
    assert_eq!(actions.first(), Some(&Action::Persist));
    assert_eq!(h.nodes[0].slot_owner(slot(5)), Some(h.id(1)));
    assert!(!h.nodes[0].is_primary());
    assert_eq!(h.nodes[0].my_primary(), Some(h.id(1)));
    // An older claim does not move anything back.
    let stale = Message {
        sender: h.nodes[1].sender_info(),
        body: Body::Update {
            node: h.id(1),
            config_epoch: 3,
            slots: crate::topology::SlotBitmap::new(),
        },
    };
    h.nodes[0].handle(h.now, Input::Message(link, Box::new(stale)));
    assert_eq!(h.nodes[0].slot_owner(slot(5)), Some(h.id(1)));
}

/// Single shard: the electorate is the primary and its replicas (quorum 2 of 3); with three
/// primaries it is the primaries only; with small-cluster voting off it is Valkey's.
#[test]
fn electorate_modes() {
    let h = single_shard(false);
    for i in 0..3 {
        let e = h.nodes[i].electorate();
        assert_eq!(e.mode, ElectorateMode::ReplicaSets);
        assert_eq!(e.members.len(), 3);
        assert_eq!(e.quorum(), 2);
    }
    assert_eq!(
        h.nodes[1].electorate().digest(),
        h.nodes[2].electorate().digest()
    );

    let mut h = Harness::new(3);
    for i in 0..3u16 {
        h.admin(
            i as usize,
            AdminOp::AddSlots(vec![(slot(i * 100), slot(i * 100 + 99))]),
        )
        .unwrap();
    }
    h.meet_all();
    let e = h.nodes[0].electorate();
    assert_eq!((e.mode, e.members.len()), (ElectorateMode::Primaries, 3));
}

/// A single shard loses its primary: the replicas mark it FAIL by their own quorum, one is
/// elected with the other's vote, takes every slot at a new configEpoch, and the other follows.
#[test]
fn single_shard_election() {
    let mut h = single_shard(false);
    let p = h.id(0);
    h.kill(0);
    h.run(8000);
    let winner = (1..3)
        .find(|i| h.nodes[*i].is_primary())
        .expect("a replica was promoted");
    let other = 3 - winner;
    assert_eq!(h.nodes[winner].my_slots().count(), 16384);
    assert!(h.nodes[winner].my_config_epoch() > 1);
    assert_eq!(h.nodes[other].my_primary(), Some(h.id(winner)));
    assert!(h.nodes[other]
        .node_flags(&p)
        .unwrap()
        .contains(NodeFlags::FAIL));
    // The voter persisted before its ack left.
    let vote_batch: Vec<&Action> = h
        .actions
        .iter()
        .filter(|(n, _)| *n == other)
        .map(|(_, a)| a)
        .collect();
    let ack = vote_batch
        .iter()
        .position(
            |a| matches!(a, Action::Send { msg, .. } if matches!(msg.body, Body::AuthAck { .. })),
        )
        .expect("a vote was sent");
    assert!(vote_batch[..ack].contains(&&Action::Persist));
    assert!(h.nodes[other].last_vote_epoch() >= h.nodes[winner].my_config_epoch());
}

/// Vote rules: one vote per epoch (sent again to the same candidate if it asks again), none
/// while the primary is up, none across electorates.
#[test]
fn vote_rules() {
    let mut h = single_shard(false);
    let link = h.nodes[2].links.keys().next().copied().unwrap();
    let digest = h.nodes[2].electorate().digest();
    let request = |h: &Harness, epoch: u64, digest: u64, force: bool| {
        let mut sender = h.nodes[1].sender_info();
        sender.current_epoch = epoch;
        Box::new(Message {
            sender,
            body: Body::AuthRequest {
                force_ack: force,
                electorate_digest: digest,
            },
        })
    };
    let refused = |actions: &[Action], why: &str| {
        actions.iter().any(
            |a| matches!(a, Action::Log(Event::VoteRefused { reason, .. }) if reason.contains(why)),
        )
    };
    let epoch = h.nodes[2].current_epoch() + 1;
    let now = h.now;
    let r = request(&h, epoch, digest, false);
    let a = h.nodes[2].handle(now, Input::Message(link, r));
    assert!(refused(&a, "primary is up"), "{a:?}");
    let r = request(&h, epoch, digest ^ 1, true);
    let a = h.nodes[2].handle(now, Input::Message(link, r));
    assert!(refused(&a, "electorate differs"), "{a:?}");
    let r = request(&h, epoch, digest, true);
    let a = h.nodes[2].handle(now, Input::Message(link, r));
    assert_eq!(a.first(), Some(&Action::Persist));
    assert!(a.iter().any(
        |x| matches!(x, Action::Send { msg, .. } if msg.body == Body::AuthAck { epoch, vote: true })
    ));
    // The same candidate asking again (our answer may have been lost) gets the same vote,
    // nothing new to persist; any other candidate in that epoch is refused.
    let r = request(&h, epoch, digest, true);
    let a = h.nodes[2].handle(now + 5000, Input::Message(link, r));
    assert!(!a.contains(&Action::Persist), "{a:?}");
    assert!(a.iter().any(
        |x| matches!(x, Action::Send { msg, .. } if msg.body == Body::AuthAck { epoch, vote: true })
    ));
    let mut other = h.nodes[0].sender_info();
    other.current_epoch = epoch;
    let r = Box::new(Message {
        sender: other,
        body: Body::AuthRequest {
            force_ack: true,
            electorate_digest: digest,
        },
    });
    let a = h.nodes[2].handle(now + 5000, Input::Message(link, r));
    assert!(refused(&a, "already voted"), "{a:?}");
}

/// FORGET removes a node and bans its id for 60 s: gossip cannot bring it back before then.
#[test]
fn forget_bans_for_a_minute() {
    let mut h = Harness::new(3);
    h.meet_all();
    let gone = h.id(2);
    assert_eq!(
        h.admin(0, AdminOp::Forget(h.id(0))),
        Err(AdminError::ForgetMyself)
    );
    h.admin(0, AdminOp::Forget(gone)).unwrap();
    assert!(h.nodes[0].node_flags(&gone).is_none());
    h.run(10_000); // node 1 still gossips about node 2
    assert!(h.nodes[0].node_flags(&gone).is_none());
    assert!(h.nodes[0].is_banned(h.now, &gone));
    h.run(55_000);
    assert!(!h.nodes[0].is_banned(h.now, &gone));
    assert!(
        h.nodes[0].node_flags(&gone).is_some(),
        "gossip re-adds it after the ban"
    );
}

/// Admin refusals carry Valkey's texts and change nothing.
#[test]
fn admin_errors() {
    let mut h = Harness::new(2);
    h.admin(0, AdminOp::AddSlots(vec![(slot(1), slot(3))]))
        .unwrap();
    assert_eq!(
        h.admin(0, AdminOp::AddSlots(vec![(slot(3), slot(4))]))
            .unwrap_err()
            .to_string(),
        "Slot 3 is already busy"
    );
    assert_eq!(
        h.admin(
            0,
            AdminOp::AddSlots(vec![(slot(7), slot(8)), (slot(8), slot(8))])
        ),
        Err(AdminError::SlotRepeated(slot(8)))
    );
    assert_eq!(
        h.admin(0, AdminOp::DelSlots(vec![(slot(9), slot(9))])),
        Err(AdminError::SlotUnassigned(slot(9)))
    );
    assert_eq!(h.nodes[0].my_slots().count(), 3);
    assert_eq!(
        h.admin(0, AdminOp::Replicate(h.id(0))),
        Err(AdminError::ReplicateMyself)
    );
    assert_eq!(
        h.admin(0, AdminOp::Failover(FailoverMode::Default)),
        Err(AdminError::FailoverOnPrimary)
    );
    h.admin(0, AdminOp::SetConfigEpoch(5)).unwrap();
    assert_eq!(
        h.admin(0, AdminOp::SetConfigEpoch(6)),
        Err(AdminError::EpochAlreadySet)
    );
    assert_eq!(
        h.admin(0, AdminOp::BumpEpoch),
        Ok(AdminOk::Bump {
            bumped: false,
            epoch: 5
        })
    );
    h.meet_all();
    assert_eq!(
        h.admin(1, AdminOp::SetConfigEpoch(1)),
        Err(AdminError::EpochNotAlone)
    );
    assert_eq!(h.admin(1, AdminOp::Replicate(h.id(0))), Ok(AdminOk::Done));
    h.run(1000);
    assert_eq!(
        h.admin(0, AdminOp::Replicate(h.id(1))),
        Err(AdminError::ReplicateReplica)
    );
}

/// A node restored from its rendered and re-parsed `nodes.conf` has the same id, epochs, vote,
/// slots, migrations and peers.
#[test]
fn restore_from_nodes_conf() {
    let mut h = Harness::new(2);
    h.admin(0, AdminOp::SetConfigEpoch(3)).unwrap();
    h.admin(0, AdminOp::AddSlots(vec![(slot(0), slot(500))]))
        .unwrap();
    h.meet_all();
    let peer = h.id(1);
    h.admin(0, AdminOp::SetSlot(slot(7), SetSlotOp::Migrating(peer)))
        .unwrap();
    let text = h.nodes[0].persisted().render();
    let parsed = crate::config::PersistedConfig::parse(&text).unwrap();
    let back = ClusterState::restore(h.nodes[0].config().clone(), &parsed, 0, 5).unwrap();
    let before = &h.nodes[0];
    assert_eq!(back.myself(), before.myself());
    assert_eq!(back.current_epoch(), before.current_epoch());
    assert_eq!(back.my_config_epoch(), 3);
    assert_eq!(back.my_slots(), before.my_slots());
    assert_eq!(back.topology().migrating, vec![(slot(7), peer)]);
    assert!(back.node_flags(&peer).is_some());
}

/// A topology snapshot indexes slot owners and finds nodes by id.
#[test]
fn topology_snapshot() {
    let mut h = Harness::new(2);
    h.admin(1, AdminOp::AddSlots(vec![(slot(10), slot(20))]))
        .unwrap();
    h.meet_all();
    let t = h.nodes[0].topology();
    assert_eq!(t.myself, h.id(0));
    assert_eq!(t.owner(slot(15)).map(|n| n.id), Some(h.id(1)));
    assert!(t.owner(slot(21)).is_none());
    assert_eq!(t.node(&h.id(1)).map(|n| n.slots.count()), Some(11));
    assert_eq!(t.size, 1);
}

/// CLUSTER FAILOVER: the primary pauses writes, the replica catches up to the paused offset and
/// wins an election with forced acks; the old primary follows it and resumes. TAKEOVER skips the
/// election and takes a new configEpoch on its own.
#[test]
fn manual_failover_and_takeover() {
    let mut h = single_shard(false);
    h.nodes[0].set_replication(&[500], None);
    h.nodes[1].set_replication(&[400], Some(h.now));
    h.admin(1, AdminOp::Failover(FailoverMode::Default))
        .unwrap();
    h.run(300);
    assert!(h
        .actions
        .iter()
        .any(|(n, a)| *n == 0 && matches!(a, Action::PauseWrites { .. })));
    assert!(!h.nodes[1].is_primary(), "must wait for the paused offset");
    h.nodes[1].set_replication(&[500], Some(h.now));
    h.run(1000);
    assert!(h.nodes[1].is_primary());
    assert_eq!(h.nodes[0].my_primary(), Some(h.id(1)));
    assert!(h
        .actions
        .iter()
        .any(|(n, a)| *n == 0 && *a == Action::ResumeWrites));

    let before = h.nodes[1].my_config_epoch();
    h.admin(2, AdminOp::Failover(FailoverMode::Takeover))
        .unwrap();
    assert!(h.nodes[2].is_primary());
    assert!(h.nodes[2].my_config_epoch() > before);
    h.run(1000);
    assert_eq!(h.nodes[1].my_primary(), Some(h.id(2)));
    assert_eq!(h.nodes[0].slot_owner(slot(0)), Some(h.id(2)));
}

/// CLUSTER FAILOVER waits for the primary's driver to report its write pause in effect: until
/// then the replica is not told an offset, so it cannot win on an offset that writes admitted
/// before the pause will still move; once reported, it catches up to that final offset first.
#[test]
fn manual_failover_waits_for_the_pause_to_hold() {
    let mut h = single_shard(false);
    h.confirm_pauses = false;
    h.nodes[0].set_replication(&[500], None);
    h.nodes[1].set_replication(&[500], Some(h.now));
    h.admin(1, AdminOp::Failover(FailoverMode::Default))
        .unwrap();
    h.run(2000);
    assert_eq!(h.pauses, vec![0], "the primary asked its driver to pause");
    assert!(!h.nodes[1].is_primary(), "won before the pause held");
    // Writes admitted before the pause finished: the final offset is 600.
    h.nodes[0].set_replication(&[600], None);
    h.pauses.clear();
    h.confirm_pause(0);
    h.drain();
    h.run(500);
    assert!(!h.nodes[1].is_primary(), "won without the last writes");
    h.nodes[1].set_replication(&[600], Some(h.now));
    h.run(1000);
    assert!(h.nodes[1].is_primary());
    assert_eq!(h.nodes[0].my_primary(), Some(h.id(1)));
    // A report that comes after the pause ended changes nothing.
    let actions = h.nodes[0].writes_paused(h.now, 700);
    assert!(actions.is_empty(), "{actions:?}");
}

/// A peer's announced hostname reaches the other nodes, and a change of it (CONFIG SET
/// cluster-announce-hostname, applied with `reconfigure`) follows; the snapshot shows it.
#[test]
fn hostname_spreads_and_follows_reconfigure() {
    let mut h = Harness::new(2);
    let mut cfg = h.nodes[1].config().clone();
    cfg.hostname = "b.example".into();
    h.nodes[1].reconfigure(cfg.clone());
    h.meet_all();
    let b = h.id(1);
    let host_seen_by_a = |h: &Harness| h.nodes[0].topology().node(&b).map(|n| n.hostname.clone());
    assert_eq!(host_seen_by_a(&h).as_deref(), Some("b.example"));
    cfg.hostname = "c.example".into();
    h.nodes[1].reconfigure(cfg);
    assert_eq!(h.nodes[1].topology().me().hostname, "c.example");
    h.run(10_000);
    assert_eq!(host_seen_by_a(&h).as_deref(), Some("c.example"));
}

/// The snapshot's slot table names the same owners as the state (it is built from the nodes'
/// bitmaps for speed).
#[test]
fn snapshot_slot_table_matches_owners() {
    let mut h = Harness::new(3);
    h.admin(0, AdminOp::AddSlots(vec![(slot(0), slot(5000))]))
        .unwrap();
    h.admin(
        1,
        AdminOp::AddSlots(vec![(slot(5001), slot(5001)), (slot(9000), slot(16383))]),
    )
    .unwrap();
    h.meet_all();
    for i in 0..3 {
        let t = h.nodes[i].topology();
        for s in Slot::all() {
            assert_eq!(
                t.owner(s).map(|n| n.id),
                h.nodes[i].slot_owner(s),
                "node {i} slot {}",
                s.get()
            );
        }
    }
}

/// One primary (node 0, all slots) and two replicas; `no_failover` keeps the replicas from
/// running elections of their own.
fn single_shard(no_failover: bool) -> Harness {
    let mut h = Harness::new(3);
    for i in 1..3 {
        let mut cfg = h.nodes[i].config().clone();
        cfg.replica_no_failover = no_failover;
        h.nodes[i].reconfigure(cfg);
    }
    h.admin(0, AdminOp::SetConfigEpoch(1)).unwrap();
    h.admin(0, AdminOp::AddSlots(vec![(slot(0), slot(16383))]))
        .unwrap();
    h.meet_all();
    let p = h.id(0);
    h.admin(1, AdminOp::Replicate(p)).unwrap();
    h.admin(2, AdminOp::Replicate(p)).unwrap();
    h.run(2000);
    h
}

/// Where in `h.actions` node `i` first did what `what` matches.
fn first(h: &Harness, i: usize, what: impl Fn(&Action) -> bool) -> Option<usize> {
    h.actions.iter().position(|(n, a)| *n == i && what(a))
}

fn is_vote(a: &Action) -> bool {
    matches!(a, Action::Send { msg, .. } if matches!(msg.body, Body::AuthAck { .. }))
}

/// Sync mode's hold: when the primary of a single shard fails, both replicas hold their
/// acknowledgements as soon as they see it FAIL, so the voter's hold comes before its vote;
/// once the winner is elected the other replica follows it and acknowledges again. Nothing is
/// held while nothing fails.
#[test]
fn voter_holds_acks_before_voting_and_resumes_with_the_winner() {
    let mut h = single_shard(false);
    assert!(h.actions.iter().all(|(_, a)| *a != Action::HoldAcks));
    h.cut = Some(0);
    h.run(6000);
    let winner = (1..3)
        .find(|i| h.nodes[*i].is_primary())
        .expect("a replica was promoted");
    let other = 3 - winner;
    let held = first(&h, other, |a| *a == Action::HoldAcks).expect("the voter held its acks");
    let fail = first(&h, other, |a| matches!(a, Action::Log(Event::Fail(_))));
    let vote = first(&h, other, is_vote).expect("the voter voted");
    assert!(held < vote, "acks held only after the vote left");
    assert!(
        fail.is_some_and(|f| held < f),
        "hold and FAIL in one batch, hold first"
    );
    let resumed = first(&h, other, |a| *a == Action::ResumeAcks).expect("acks resumed");
    assert!(resumed > vote);
    assert_eq!(h.nodes[other].my_primary(), Some(h.id(winner)));
    assert!(!h.nodes[other].acks_held() && !h.nodes[winner].acks_held());
    assert!(first(&h, 0, |a| *a == Action::HoldAcks).is_none());
    // Restarted, the voter does not know whether its vote is for an election still running.
    let text = h.nodes[other].persisted().render();
    let parsed = crate::config::PersistedConfig::parse(&text).unwrap();
    let cfg = h.nodes[other].config().clone();
    let back = ClusterState::restore(cfg, &parsed, h.now, 7).unwrap();
    assert!(
        back.acks_held(),
        "a replica with a vote on record restarts holding its acks"
    );
}

/// A primary that was only cut off, with no election to replace it (the replicas may not fail
/// over): its replicas hold their acknowledgements while they see it FAIL and acknowledge
/// again once the FAIL is cleared, so writes waiting in sync mode do not wait for ever.
#[test]
fn held_acks_resume_when_the_primary_is_back() {
    let mut h = single_shard(true);
    h.cut = Some(0);
    h.run(3000);
    for i in 1..3 {
        assert!(h.nodes[i].acks_held(), "replica {i} holds its acks");
    }
    h.cut = None;
    h.run(5000);
    for i in 1..3 {
        assert!(!h.nodes[i].acks_held(), "replica {i} acknowledges again");
        let cleared = first(&h, i, |a| matches!(a, Action::Log(Event::FailCleared(_))));
        let resumed = first(&h, i, |a| *a == Action::ResumeAcks);
        assert!(
            cleared.is_some() && resumed > cleared,
            "replica {i}: resumed after FAIL"
        );
    }
    assert_eq!(h.nodes[1].my_primary(), Some(h.id(0)));
}

/// A vote keeps the voter's acknowledgements held after the primary's FAIL is cleared, until
/// the election it voted in is over (the election timeout and a tenth since the vote) and the
/// candidate has been heard from since, still a replica: it could otherwise have won with less
/// than the voter acknowledged, and the voter not know it yet.
#[test]
fn a_vote_holds_acks_until_its_election_is_over() {
    let mut h = single_shard(true);
    h.cut = Some(0);
    h.run(3000);
    // Node 1 asks node 2 for a vote (its own election is what `replica_no_failover` stops).
    let link = h.nodes[2].nodes[&h.id(1)].inbound_link.unwrap();
    let mut sender = h.nodes[1].sender_info();
    sender.current_epoch += 1;
    let request = Message {
        sender,
        body: Body::AuthRequest {
            force_ack: false,
            electorate_digest: h.nodes[2].electorate().digest(),
        },
    };
    let voted_at = h.now;
    let actions = h.nodes[2].handle(h.now, Input::Message(link, Box::new(request)));
    assert!(actions.iter().any(is_vote), "{actions:?}");
    // The primary is back; the candidate goes quiet.
    h.cut = Some(1);
    let hold_ms = h.nodes[2].ack_hold_ms();
    h.run(hold_ms + 2000);
    assert!(first(
        &h,
        2,
        |a| matches!(a, Action::Log(Event::FailCleared(p)) if *p == h.id(0))
    )
    .is_some());
    assert!(
        h.nodes[2].acks_held(),
        "held until the candidate is heard from"
    );
    h.cut = None;
    let mut resumed = None;
    while resumed.is_none() && h.now < voted_at + hold_ms + 10_000 {
        h.run(TICK_INTERVAL_MS);
        resumed = (!h.nodes[2].acks_held()).then_some(h.now);
    }
    assert!(resumed.is_some(), "the voter acknowledges again");
    assert_eq!(h.nodes[2].my_primary(), Some(h.id(0)));
}

/// A broken link starts the failure clock at once, and the state names the moment the node
/// becomes PFAIL, so the driver's timer (`Input::Timer`) flags it then, not at the next tick.
#[test]
fn failure_is_detected_at_its_deadline_between_ticks() {
    let mut h = three_primaries(&[], |_| {});
    let dead = h.id(0);
    h.kill(0);
    let died = h.now;
    let nt = h.nodes[1].config().node_timeout_ms;
    let at = h.nodes[1].next_deadline_ms(h.now).expect("a deadline");
    assert!(at <= died + nt + 1, "clock started at the link drop: {at}");
    assert!(at > died + nt / 2, "not before the node timeout: {at}");
    let a = h.nodes[1].handle(at - 1, Input::Timer);
    assert!(!a.contains(&Action::Log(Event::PFail(dead))), "too early");
    assert!(!h.nodes[1]
        .node_flags(&dead)
        .unwrap()
        .contains(NodeFlags::PFAIL));
    h.now = at;
    let a = h.nodes[1].handle(at, Input::Timer);
    h.carry_out(1, a);
    h.drain();
    assert!(h.nodes[1]
        .node_flags(&dead)
        .unwrap()
        .intersects(NodeFlags::PFAIL.union(NodeFlags::FAIL)));
    // The new report went to the other voter at once: once it times the node out too, FAIL
    // follows without waiting for a regular ping's gossip.
    let at2 = h.nodes[2].next_deadline_ms(h.now).unwrap_or(h.now);
    h.now = h.now.max(at2);
    let a = h.nodes[2].handle(h.now, Input::Timer);
    h.carry_out(2, a);
    h.drain();
    assert!(h.nodes[2]
        .node_flags(&dead)
        .unwrap()
        .contains(NodeFlags::FAIL));
    assert!(h.nodes[1]
        .node_flags(&dead)
        .unwrap()
        .contains(NodeFlags::FAIL));
}

/// A vote request that a voter did not act on (it had not seen the FAIL yet; here: lost) is
/// asked again in the same epoch, so the election is won without waiting for a retry.
#[test]
fn unanswered_vote_requests_are_asked_again() {
    let mut h = single_shard(false);
    h.kill(0);
    // Tick until the first vote request goes out, and lose it.
    let mut lost = 0;
    for _ in 0..100 {
        if lost > 0 {
            break;
        }
        h.now += TICK_INTERVAL_MS;
        for i in 1..3 {
            let a = h.nodes[i].handle(h.now, Input::Tick);
            h.carry_out(i, a);
            let before = h.queue.len();
            h.queue.retain(|(_, input)| {
                !matches!(input, Input::Message(_, m) if matches!(m.body, Body::AuthRequest { .. }))
            });
            lost += before - h.queue.len();
            h.drain();
        }
    }
    assert!(lost > 0, "an election started");
    h.run(2000);
    let winner = (1..3)
        .find(|i| h.nodes[*i].is_primary())
        .expect("a replica was promoted");
    let started = h
        .events(winner)
        .iter()
        .filter(|e| matches!(e, Event::ElectionStarted { .. }))
        .count();
    assert_eq!(started, 1, "won in its first epoch, by asking again");
}

impl Harness {
    /// Node `i` dies: its links drop, and it is replaced by a fresh node at an address nobody
    /// knows (so reconnects fail), ticking alone.
    fn kill(&mut self, i: usize) {
        let ends: Vec<(usize, LinkId)> = self
            .conns
            .keys()
            .filter(|(n, _)| *n == i)
            .copied()
            .collect();
        for end in ends {
            if let Some((j, peer)) = self.conns.remove(&end) {
                self.conns.remove(&(j, peer));
                self.queue.push_back((j, Input::LinkDown(peer)));
            }
        }
        self.killed.insert(i, self.id(i));
        let ip = format!("127.0.0.{}", 200 + i);
        self.nodes[i] = ClusterState::new(ClusterConfig::new(&ip, 7000), self.now, 1);
        self.drain();
    }

    /// Runs until `cond` holds, at most `max_ms`; whether it did.
    fn run_until(&mut self, max_ms: u64, cond: impl Fn(&Harness) -> bool) -> bool {
        let end = self.now + max_ms;
        while self.now < end {
            if cond(self) {
                return true;
            }
            self.run(TICK_INTERVAL_MS);
        }
        cond(self)
    }
}

/// Three primaries with distinct epochs and a third of the slots each (nodes 0, 1, 2), then
/// replicas: node `r` replicates primary `primary_of[r - 3]`. Node timeout 1 s; `tune` adjusts
/// every node's settings first.
fn three_primaries(primary_of: &[usize], tune: impl Fn(&mut ClusterConfig)) -> Harness {
    let mut h = Harness::new(3 + primary_of.len());
    for i in 0..h.nodes.len() {
        let mut cfg = h.nodes[i].config().clone();
        tune(&mut cfg);
        h.nodes[i].reconfigure(cfg);
    }
    let ranges = [(0, 5460), (5461, 10922), (10923, 16383)];
    for (p, (first, last)) in ranges.into_iter().enumerate() {
        h.admin(p, AdminOp::SetConfigEpoch(p as u64 + 1)).unwrap();
        h.admin(p, AdminOp::AddSlots(vec![(slot(first), slot(last))]))
            .unwrap();
    }
    h.meet_all();
    for (k, &p) in primary_of.iter().enumerate() {
        let id = h.id(p);
        h.admin(3 + k, AdminOp::Replicate(id)).unwrap();
    }
    h.run(3000);
    for i in 0..h.nodes.len() {
        assert!(h.nodes[i].cluster_ok(), "node {i} is not ok after setup");
    }
    h
}

/// Which replicas (by index) follow `primary` in node `viewer`'s view.
fn replicas_of(h: &Harness, viewer: usize, primary: usize) -> Vec<usize> {
    let t = h.nodes[viewer].topology();
    let p = h.id(primary);
    (0..h.nodes.len())
        .filter(|r| t.node(&h.id(*r)).is_some_and(|n| n.primary == Some(p)))
        .collect()
}

/// Replica migration: primary 0 loses its only replica (node 3, killed) while primary 1 has two
/// (nodes 4, 5). Once node 3 is FAIL and primary 0 has been orphaned for the migration delay,
/// exactly one replica of primary 1 moves to primary 0: the one with the smaller id. Not before
/// the delay, and every node learns the move.
#[test]
fn replica_migrates_to_orphaned_primary() {
    let mut h = three_primaries(&[0, 1, 1, 2], |_| {});
    let dead = h.id(3);
    h.kill(3);
    assert!(
        h.run_until(10_000, |h| h.nodes[4]
            .node_flags(&dead)
            .is_some_and(|f| f.contains(NodeFlags::FAIL))),
        "the dead replica was never marked FAIL: {:?}",
        (0..7)
            .map(|i| h.nodes[i].node_flags(&dead))
            .collect::<Vec<_>>()
    );
    h.run(REPLICA_MIGRATION_DELAY_MS - 1000);
    assert_eq!(
        replicas_of(&h, 4, 1),
        vec![4, 5],
        "migrated before the delay"
    );
    h.run(3000);
    let migrant = if h.id(4) < h.id(5) { 4 } else { 5 };
    let stayed = 9 - migrant;
    assert_eq!(h.nodes[migrant].my_primary(), Some(h.id(0)));
    assert_eq!(h.nodes[stayed].my_primary(), Some(h.id(1)));
    for viewer in [0, 1, 2, 4, 5, 6] {
        assert_eq!(
            replicas_of(&h, viewer, 0),
            vec![3, migrant],
            "view of {viewer}"
        );
        assert_eq!(replicas_of(&h, viewer, 1), vec![stayed], "view of {viewer}");
    }
    let moved = |i: usize| {
        h.events(i)
            .iter()
            .filter(|e| matches!(e, Event::MigratedToOrphan(_)))
            .count()
    };
    assert_eq!((moved(migrant), moved(stayed)), (1, 0));
    // The move was persisted (the role is part of nodes.conf).
    let conf = h.nodes[migrant].persisted();
    let me = conf.myself().expect("myself");
    assert_eq!(me.primary, Some(h.id(0)));
    // Nothing moves again: primary 0 is no longer orphaned, primary 1 has one replica.
    h.run(10_000);
    assert_eq!(replicas_of(&h, 0, 1), vec![stayed]);
}

/// No migration when the donor would be left with fewer than `cluster-migration-barrier`
/// replicas (barrier 2 with two replicas), nor with `cluster-allow-replica-migration no`.
#[test]
fn replica_migration_barrier_and_switch() {
    let tunes: [fn(&mut ClusterConfig); 2] = [
        |c| c.migration_barrier = 2,
        |c| c.allow_replica_migration = false,
    ];
    for tune in tunes {
        let mut h = three_primaries(&[0, 1, 1, 2], tune);
        let dead = h.id(3);
        h.kill(3);
        h.run(15_000);
        assert!(h.nodes[4]
            .node_flags(&dead)
            .unwrap()
            .contains(NodeFlags::FAIL));
        assert_eq!(replicas_of(&h, 0, 1), vec![4, 5]);
        assert_eq!(replicas_of(&h, 0, 0), vec![3]);
    }
}

/// A replica promoted by a failover is a migration target even though it never had a replica
/// (Valkey: it "failed over a primary that had replicas"): primary 0 dies, its only replica
/// (node 3) wins the election, and a replica of primary 1 then moves to it.
#[test]
fn promoted_replica_gets_a_migrant() {
    let mut h = three_primaries(&[0, 1, 1, 2], |_| {});
    h.kill(0);
    assert!(
        h.run_until(15_000, |h| h.nodes[3].is_primary()),
        "node 3 was never promoted"
    );
    h.run(REPLICA_MIGRATION_DELAY_MS + 3000);
    let migrant = if h.id(4) < h.id(5) { 4 } else { 5 };
    assert_eq!(h.nodes[migrant].my_primary(), Some(h.id(3)));
    assert_eq!(replicas_of(&h, 1, 3), vec![migrant]);
}

/// A primary that never had a replica (it got its slots before any replica existed) is not a
/// migration target: with two replicas on primary 1 and none elsewhere, nobody moves.
#[test]
fn primary_never_replicated_is_no_target() {
    let mut h = three_primaries(&[1, 1], |_| {});
    h.run(REPLICA_MIGRATION_DELAY_MS + 5000);
    assert_eq!(replicas_of(&h, 0, 1), vec![3, 4]);
    assert!((0..5).all(|i| !h
        .events(i)
        .iter()
        .any(|e| matches!(e, Event::MigratedToOrphan(_)))));
}
