//! Multi-key commands whose keys live on several shards (standalone mode).
//!
//! Each runs as a shard-ordered transaction (`crate::shard::txn`): lock every shard involved
//! in ascending order, run the per-shard steps the family files expose, release. No other
//! client sees a state in between, as in Valkey where the command runs at once. The steps
//! carry owned copies of keys and values, so nothing points into another shard.
//!
//! A command names its coordinator in its table entry (`CommandSpec::multi`), a [`Coord`].
//! Coordinators take their locks through [`lock`], which reuses the transaction of an EXEC in
//! progress instead of taking new ones (an EXEC already holds every shard it needs).

use super::{arity_error, Resolved};
use crate::commands::generic::{self, CopyOpts};
use crate::commands::string;
use crate::resp::Out;
use crate::session::ClientState;
use crate::shard::{unix_ms, Shard, Txn};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// What a coordinator gets: the connection's shard and state, the command, its arguments,
/// the positions of its keys, where the reply goes, and the EXEC transaction if one runs.
pub struct MultiCtx<'a> {
    pub shard: &'a Rc<Shard>,
    pub client: &'a ClientState,
    pub cmd: &'a Resolved,
    pub argv: &'a [&'a [u8]],
    pub key_pos: &'a [usize],
    pub out: &'a mut Out,
    pub txn: Option<&'a Txn>,
}

/// A future that lives on the shard's thread.
pub type LocalFut<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;

/// A future with an output that lives on the shard's thread.
pub type LocalFutOut<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

/// A multi-key command's coordinator.
pub type Coord = for<'a> fn(MultiCtx<'a>) -> LocalFut<'a>;

/// A transaction a coordinator holds: its own, or the EXEC's it runs inside.
pub enum TxnHandle<'a> {
    Own(Txn),
    Shared(&'a Txn),
}

impl TxnHandle<'_> {
    fn txn(&self) -> &Txn {
        match self {
            TxnHandle::Own(t) => t,
            TxnHandle::Shared(t) => t,
        }
    }

    /// Runs `f` on `target`, which the transaction holds.
    pub async fn run<R, F>(&self, target: usize, f: F) -> R
    where
        F: FnOnce(&Shard) -> R + Send + 'static,
        R: Send + 'static,
    {
        self.txn().run(target, f).await
    }
}

impl TxnHandle<'_> {
    /// The shards held, ascending.
    pub fn shards(&self) -> &[usize] {
        self.txn().shards()
    }
}

/// How a node-wide command reaches the shards: directly, or through the EXEC transaction
/// that already holds them all (a shard held by a transaction answers only its steps, so a
/// command inside EXEC must go through it). Dereferences to the connection's shard.
#[derive(Clone, Copy)]
pub struct Via<'a> {
    pub shard: &'a Rc<Shard>,
    pub txn: Option<&'a Txn>,
}

impl<'a> Via<'a> {
    pub fn direct(shard: &'a Rc<Shard>) -> Via<'a> {
        Via { shard, txn: None }
    }

    /// Runs `f` on shard `target` (see [`Shard::call`]).
    pub async fn call<R, F>(self, target: usize, f: F) -> R
    where
        F: FnOnce(&Shard) -> R + Send + 'static,
        R: Send + 'static,
    {
        match self.txn {
            Some(t) => t.run(target, f).await,
            None => self.shard.call(target, f).await,
        }
    }

    /// Locks `targets` (see [`lock`]).
    pub async fn lock(self, targets: impl IntoIterator<Item = usize>) -> TxnHandle<'a> {
        lock(self.shard, self.txn, targets).await
    }
}

impl std::ops::Deref for Via<'_> {
    type Target = Rc<Shard>;
    fn deref(&self) -> &Rc<Shard> {
        self.shard
    }
}

/// Locks `targets` for a coordinator, or reuses the EXEC's transaction `held`.
pub async fn lock<'a>(
    shard: &Rc<Shard>,
    held: Option<&'a Txn>,
    targets: impl IntoIterator<Item = usize>,
) -> TxnHandle<'a> {
    match held {
        Some(t) => TxnHandle::Shared(t),
        None => TxnHandle::Own(Txn::lock(shard, targets).await),
    }
}

/// Groups argument positions by the shard owning the key at each position.
pub fn by_shard(shard: &Shard, argv: &[&[u8]], positions: &[usize]) -> BTreeMap<usize, Vec<usize>> {
    let mut m: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for &p in positions {
        m.entry(shard.shard_of_key(argv[p])).or_default().push(p);
    }
    m
}

/// Owned copies of the arguments at `positions`.
pub fn owned(argv: &[&[u8]], positions: &[usize]) -> Vec<Vec<u8>> {
    positions.iter().map(|&p| argv[p].to_vec()).collect()
}

/// Borrowed views of owned arguments.
pub fn refs(v: &[Vec<u8>]) -> Vec<&[u8]> {
    v.iter().map(Vec::as_slice).collect()
}

pub async fn mget_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        argv,
        key_pos: positions,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;

    let groups = by_shard(shard, argv, positions);
    let txn = lock(shard, held, groups.keys().copied()).await;
    let mut values: Vec<Option<Vec<u8>>> = vec![None; argv.len()];
    for (&t, ps) in &groups {
        let keys = owned(argv, ps);
        let got = txn
            .run(t, move |s| {
                let now = unix_ms();
                let mut ks = s.ks.borrow_mut();
                let config = s.config.borrow();
                let mut sink = Out::new(false);
                let mut ctx = super::KeyCtx {
                    ks: &mut ks,
                    db,
                    now_ms: now,
                    out: &mut sink,
                    config: &config,
                };
                keys.iter()
                    .map(|k| string::mget_value(&mut ctx, k))
                    .collect::<Vec<_>>()
            })
            .await;
        for (&p, v) in ps.iter().zip(got) {
            values[p] = v;
        }
    }
    drop(txn);
    out.array(argv.len() - 1);
    for v in &values[1..] {
        match v {
            Some(b) => out.bulk(b),
            None => out.null(),
        }
    }
}

pub async fn mset_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        cmd: r,
        argv,
        key_pos: positions,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;
    let nx = r.spec.name == "msetnx";

    if argv.len().is_multiple_of(2) {
        out.err(arity_error(&r.fullname));
        return;
    }
    let groups = by_shard(shard, argv, positions);
    let txn = lock(shard, held, groups.keys().copied()).await;
    if nx {
        for (&t, ps) in &groups {
            let keys = owned(argv, ps);
            let any = txn
                .run(t, move |s| {
                    let now = unix_ms();
                    let mut ks = s.ks.borrow_mut();
                    keys.iter()
                        .any(|k| generic::exists_for_write(&mut ks, db, k, now))
                })
                .await;
            if any {
                out.int(0);
                return;
            }
        }
    }
    for (&t, ps) in &groups {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = ps
            .iter()
            .map(|&p| (argv[p].to_vec(), argv[p + 1].to_vec()))
            .collect();
        txn.run(t, move |s| {
            let now = unix_ms();
            let pairs: Vec<(&[u8], &[u8])> = pairs
                .iter()
                .map(|(k, v)| (k.as_slice(), v.as_slice()))
                .collect();
            string::mset_pairs(&mut s.ks.borrow_mut().dbs[db], &pairs, now);
        })
        .await;
    }
    drop(txn);
    if nx {
        out.int(1);
    } else {
        out.ok();
    }
}

pub async fn count_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        cmd: r,
        argv,
        key_pos: positions,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;
    let name = r.spec.name;

    let groups = by_shard(shard, argv, positions);
    let txn = lock(shard, held, groups.keys().copied()).await;
    let mut total = 0;
    for (&t, ps) in &groups {
        let keys = owned(argv, ps);
        total += txn
            .run(t, move |s| {
                let now = unix_ms();
                let mut ks = s.ks.borrow_mut();
                let keys = refs(&keys);
                match name {
                    "exists" => generic::exists_count(&mut ks, db, &keys, now),
                    "touch" => generic::touch_count(&mut ks, db, &keys, now),
                    _ => generic::del_keys(&mut ks, db, &keys, now),
                }
            })
            .await;
    }
    drop(txn);
    out.int(total);
}

pub async fn rename_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        cmd: r,
        argv,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;

    let nx = r.spec.name == "renamenx";
    let (src, dst) = (argv[1].to_vec(), argv[2].to_vec());
    let (ts, td) = (shard.shard_of_key(&src), shard.shard_of_key(&dst));
    let txn = lock(shard, held, [ts, td]).await;
    let s2 = src.clone();
    let src_exists = txn
        .run(ts, move |s| {
            generic::exists_for_write(&mut s.ks.borrow_mut(), db, &s2, unix_ms())
        })
        .await;
    if !src_exists {
        out.err("no such key");
        return;
    }
    if nx {
        let d2 = dst.clone();
        let dst_exists = txn
            .run(td, move |s| {
                generic::exists_for_write(&mut s.ks.borrow_mut(), db, &d2, unix_ms())
            })
            .await;
        if dst_exists {
            out.int(0);
            return;
        }
    }
    let taken = txn
        .run(ts, move |s| {
            generic::rename_take(&mut s.ks.borrow_mut(), db, &src, unix_ms()).ok()
        })
        .await;
    let Some((entry, at)) = taken else {
        out.err("no such key");
        return;
    };
    txn.run(td, move |s| {
        generic::rename_put(&mut s.ks.borrow_mut(), db, &dst, entry, at, unix_ms())
    })
    .await;
    drop(txn);
    if nx {
        out.int(1);
    } else {
        out.ok();
    }
}

pub async fn copy_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        argv,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;

    let databases = shard.config.borrow().databases;
    let Some(CopyOpts { dst_db, replace }) = generic::copy_opts(out, argv, db, databases) else {
        return;
    };
    let (src, dst) = (argv[1].to_vec(), argv[2].to_vec());
    let (ts, td) = (shard.shard_of_key(&src), shard.shard_of_key(&dst));
    let txn = lock(shard, held, [ts, td]).await;
    let read = txn
        .run(ts, move |s| {
            generic::copy_read(&mut s.ks.borrow_mut(), db, &src, unix_ms())
        })
        .await;
    let Some((entry, at)) = read else {
        out.int(0);
        return;
    };
    let wrote = txn
        .run(td, move |s| {
            generic::copy_write(
                &mut s.ks.borrow_mut(),
                dst_db,
                &dst,
                entry,
                at,
                replace,
                unix_ms(),
            )
        })
        .await;
    drop(txn);
    out.int(i64::from(wrote));
}

pub async fn lcs_async(ctx: MultiCtx<'_>) {
    let MultiCtx {
        shard,
        client,
        argv,
        out,
        txn: held,
        ..
    } = ctx;
    let db = client.db;

    let (ka, kb) = (argv[1].to_vec(), argv[2].to_vec());
    let (ta, tb) = (shard.shard_of_key(&ka), shard.shard_of_key(&kb));
    let txn = lock(shard, held, [ta, tb]).await;
    let read = |key: Vec<u8>| {
        move |s: &Shard| {
            let mut ks = s.ks.borrow_mut();
            let config = s.config.borrow();
            let mut sink = Out::new(false);
            let mut ctx = super::KeyCtx {
                ks: &mut ks,
                db,
                now_ms: unix_ms(),
                out: &mut sink,
                config: &config,
            };
            string::lcs_operand(&mut ctx, &key)
        }
    };
    let a = txn.run(ta, read(ka)).await;
    let b = txn.run(tb, read(kb)).await;
    drop(txn);
    let (Ok(a), Ok(b)) = (a, b) else {
        out.err("The specified keys must contain string values");
        return;
    };
    let Some(o) = string::lcs_opts(out, argv) else {
        return;
    };
    let max = shard.config.borrow().proto_max_bulk_len;
    string::lcs_reply(out, &a, &b, o, max);
}

/// The coordinator of MGET (see [`Coord`]).
pub fn mget(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(mget_async(ctx))
}

/// The coordinator of MSET (see [`Coord`]).
pub fn mset(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(mset_async(ctx))
}

/// The coordinator of DEL, UNLINK, EXISTS and TOUCH (see [`Coord`]).
pub fn count(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(count_async(ctx))
}

/// The coordinator of RENAME (see [`Coord`]).
pub fn rename(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(rename_async(ctx))
}

/// The coordinator of COPY (see [`Coord`]).
pub fn copy(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(copy_async(ctx))
}

/// The coordinator of LCS (see [`Coord`]).
pub fn lcs(ctx: MultiCtx<'_>) -> LocalFut<'_> {
    Box::pin(lcs_async(ctx))
}
