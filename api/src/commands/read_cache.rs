//! What requests read of the catalog over and over (the caller's account, an image, a set with
//! the caller's role in it, a type as a set offers it), kept between requests while the store's
//! cold version stays the same (`EventStore::cold_version`): no event outside the annotations'
//! streams has committed since, by this process or, on PostgreSQL, by another. There each read
//! is a round trip, and creating one annotation read four rows before its append. Where the
//! store cannot tell (SQLite, whose reads are function calls) nothing is kept.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;

use exact_domain::permissions::Permissions;
use exact_domain::Actor;
use exact_projections::catalog_read::{AnnotationTypeRow, ImageRow, ImageSetRow, UserRow};
use exact_store::EventStore;

use super::Commands;

/// Entries of one kind kept at most; all are dropped when it is reached (a cold commit drops
/// them anyway, and a server's working set is a few accounts, sets and types).
const CAPACITY: usize = 10_000;

/// One kind of row, each entry with the cold version it was read at.
#[derive(Debug)]
struct Cached<K, V> {
    entries: Mutex<HashMap<K, (u64, V)>>,
}

impl<K, V> Default for Cached<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Cached<K, V> {
    /// The entry for `key` if it was read at the current cold version, else what `load` reads
    /// (kept if found). The version is taken before the read: a commit during it leaves the
    /// entry already stale, never a stale one fresh.
    async fn get<E, F>(&self, store: &dyn EventStore, key: K, load: F) -> Result<Option<V>, E>
    where
        F: Future<Output = Result<Option<V>, E>>,
    {
        let Some(version) = store.cold_version() else {
            return load.await;
        };
        if let Some((read_at, value)) = self.lock().get(&key) {
            if *read_at == version {
                return Ok(Some(value.clone()));
            }
        }
        let loaded = load.await?;
        if let Some(value) = &loaded {
            let mut entries = self.lock();
            if entries.len() >= CAPACITY {
                entries.clear();
            }
            entries.insert(key, (version, value.clone()));
        }
        Ok(loaded)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (u64, V)>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The catalog rows commands read on every request.
#[derive(Debug, Default)]
pub(super) struct ReadCache {
    users: Cached<String, UserRow>,
    images: Cached<i64, ImageRow>,
    /// (user, superuser, staff, set) → the live set and the user's permissions in it.
    sets: Cached<(i64, bool, bool, i64), (ImageSetRow, Permissions)>,
    /// (type, set) → the live type and whether the set offers it.
    types: Cached<(i64, i64), (AnnotationTypeRow, bool)>,
}

impl Commands {
    /// The account named `username` (any case), as `ReadDb::user_by_username`.
    pub async fn user_by_username(&self, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
        let load = self.read.user_by_username(username);
        self.cache
            .users
            .get(self.store.as_ref(), username.to_owned(), load)
            .await
    }

    /// Image `id`, deleted or not, as `ReadDb::image`.
    pub async fn image(&self, id: i64) -> Result<Option<ImageRow>, sqlx::Error> {
        let load = self.read.image(id);
        self.cache.images.get(self.store.as_ref(), id, load).await
    }

    /// As `ReadDb::readable_set`.
    pub(super) async fn readable_set(
        &self,
        actor: Actor,
        id: i64,
    ) -> Result<Option<(ImageSetRow, Permissions)>, sqlx::Error> {
        let key = (actor.id, actor.superuser, actor.staff, id);
        let load = self.read.readable_set(actor, id);
        self.cache.sets.get(self.store.as_ref(), key, load).await
    }

    /// As `ReadDb::annotation_type_offered`.
    pub(super) async fn annotation_type_offered(
        &self,
        id: i64,
        image_set: i64,
    ) -> Result<Option<(AnnotationTypeRow, bool)>, sqlx::Error> {
        let load = self.read.annotation_type_offered(id, image_set);
        self.cache
            .types
            .get(self.store.as_ref(), (id, image_set), load)
            .await
    }
}
