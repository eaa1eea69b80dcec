use std::ops::Deref;
use std::sync::Arc;

use exact_store::Store;

/// Everything a request handler may need, shared by all of them.
#[derive(Debug)]
pub struct App {
    pub store: Store,
}

/// Cheap to clone: one `Arc` around the [`App`].
#[derive(Clone, Debug)]
pub struct AppState(pub Arc<App>);

impl AppState {
    pub fn new(store: Store) -> Self {
        Self(Arc::new(App { store }))
    }
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.0
    }
}
