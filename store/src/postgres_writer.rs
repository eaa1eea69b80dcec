//! PostgreSQL's group commit. Appends that arrive while others are being written wait in a queue
//! and go together into one transaction (`transaction::append_group`): one that fails (a
//! version conflict, a read model's refusal) fails alone and the others still commit, so to each
//! caller the outcome is exactly that of an append of its own. One commit, one WAL flush, and
//! one take of the advisory lock serve them all, and small appends are written as one: on
//! PostgreSQL each statement is a round trip, and a single annotation's dozen of them, not the
//! commit, was what bounded the rate.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use sqlx::postgres::PgPool;
use sqlx::{PgConnection, Postgres, Transaction};
use tokio::sync::{mpsc, watch};

use crate::cold::ColdCommits;
use crate::inline::{Projections, Tx};
use crate::plan::BuildAppend;
use crate::transaction;
use crate::transaction::Outcome;
use crate::{AppendContext, Clock, Result};

/// The advisory lock that serializes appenders across processes: "EXACTLOG" as a big-endian
/// integer.
pub(crate) const APPEND_LOCK: i64 = 0x4558_4143_544C_4F47;
/// Appends written in one transaction at most: a group's callers all wait for its commit.
const MAX_GROUP: usize = 256;

/// An append waiting for the writer, and where its outcome goes.
pub(crate) struct Pending {
    pub(crate) context: AppendContext,
    pub(crate) build: BuildAppend,
    pub(crate) reply: transaction::Reply,
}

/// What the writer task needs; it owns no handle to the store, so the task ends when the
/// store's queue sender is dropped.
pub(crate) struct Writer {
    pub(crate) pool: PgPool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) projections: Projections,
    pub(crate) committed: watch::Sender<i64>,
    pub(crate) cold: Arc<ColdCommits>,
}

/// A transaction holding the append lock, so that nothing is appended meanwhile. (Futures
/// here are boxed and written out: as `async fn`s their borrows defeat the compiler's proof
/// that the writer's task is `Send`.)
pub(crate) fn locked_transaction(
    pool: &PgPool,
) -> BoxFuture<'_, Result<Transaction<'static, Postgres>>> {
    Box::pin(async move {
        // One round trip: the writer's every statement is one that each append waits for.
        let begin = format!("BEGIN; SELECT pg_advisory_xact_lock({APPEND_LOCK})");
        Ok(pool.begin_with(begin).await?)
    })
}

impl Writer {
    /// Starts the writer on a thread of its own, with a runtime of its own; appends are sent
    /// to it through the returned queue. Every append waits for the writer's round trips one
    /// after the other: on the server's runtime each answer from PostgreSQL waited its turn
    /// behind the requests being handled, here it wakes the writer at once. `self.pool` should
    /// connect lazily, so that its connection is opened (and its socket driven) on that runtime.
    pub(crate) fn start(self) -> std::io::Result<mpsc::UnboundedSender<Pending>> {
        let (jobs, queue) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        std::thread::Builder::new()
            .name("exact-pg-writer".into())
            .spawn(move || runtime.block_on(Arc::new(self).run(queue)))?;
        Ok(jobs)
    }

    async fn run(self: Arc<Self>, mut queue: mpsc::UnboundedReceiver<Pending>) {
        while let Some(first) = queue.recv().await {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
            // On a task of its own: a group that panics (a bug in a command) loses only
            // itself, its transaction rolled back as it is dropped; its callers hear that the
            // writer stopped mid-append.
            let writer = self.clone();
            if tokio::spawn(async move { writer.write_group(group).await })
                .await
                .is_err()
            {
                tracing::error!(
                    "a group of appends panicked on the PostgreSQL writer; it was rolled back"
                );
            }
        }
    }

    async fn write_group(&self, group: Vec<Pending>) {
        let (parts, replies): (Vec<_>, Vec<_>) = group
            .into_iter()
            .map(|p| ((p.context, p.build), p.reply))
            .unzip();
        match self.commit_group(parts).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(transaction::answer(outcome, &self.committed));
                }
            }
            Err(e) => transaction::refuse_all(replies, &e),
        }
    }

    /// Writes the group in one transaction and ends it; the error is the transaction's own
    /// failure, and then nothing of the group is stored.
    async fn commit_group(
        &self,
        parts: Vec<(AppendContext, BuildAppend)>,
    ) -> Result<Vec<Result<Outcome>>> {
        let mut tx = locked_transaction(&self.pool).await?;
        let outcomes = self.write_parts(&mut tx, parts).await?;
        if outcomes.len() == 1 && outcomes[0].is_err() {
            // An append alone that failed: nothing of it may stay.
            tx.rollback().await?;
            return Ok(outcomes);
        }
        let cold = outcomes.iter().any(|outcome| {
            matches!(outcome, Ok(Outcome::Written(envelopes)) if self.cold.touched_by(envelopes))
        });
        if cold {
            crate::postgres::announce_cold(&mut tx).await?;
        }
        tx.commit().await?;
        if cold {
            // Before any caller hears of the commit, so that what it reads next is read anew.
            self.cold.moved();
        }
        Ok(outcomes)
    }

    /// The group's appends in the open transaction: one alone as it is, several together
    /// (`transaction::append_group`). The error is the transaction's own failure.
    fn write_parts<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        parts: Vec<(AppendContext, BuildAppend)>,
    ) -> BoxFuture<'a, Result<Vec<Result<Outcome>>>> {
        Box::pin(async move {
            let mut tx = Tx::Postgres(tx);
            if let [(context, build)] = parts.as_slice() {
                let outcome = transaction::append(
                    &mut tx,
                    context,
                    build,
                    self.clock.as_ref(),
                    &self.projections,
                )
                .await;
                return Ok(vec![outcome]);
            }
            transaction::append_group(&mut tx, &parts, self.clock.as_ref(), &self.projections).await
        })
    }
}
