//! A personal access token (its secret is shown once, on creation, outside this shape).

use exact_projections::catalog_read::TokenRow;
use serde::Serialize;
use utoipa::ToSchema;

use crate::rest::params::format_time;

#[derive(Debug, Serialize, ToSchema)]
pub struct Token {
    pub id: String,
    pub name: String,
    #[schema(format = DateTime)]
    pub created: String,
    #[schema(format = DateTime)]
    pub revoked: Option<String>,
}

/// A token as its creation answers it: with its secret in `token`, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub shown: Token,
    pub token: String,
}

impl Token {
    pub fn of(t: &TokenRow) -> Self {
        Token {
            id: t.token.clone(),
            name: t.name.clone(),
            created: format_time(t.created),
            revoked: t.revoked.map(format_time),
        }
    }
}
