//! EXACT's `/administration/`: products and their annotation types (name, vector type, colour,
//! node count, default size, sort order, closed, area hit test, concealed and blurred, active),
//! and for superusers and staff the accounts too (create, activate and deactivate, set a
//! password, staff and superuser flags), so no account needs the command line. Every change is
//! a REST call made by the page's forms (`web/static/forms.js`).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use exact_projections::catalog_read::AnnotationTypeRow;

use super::{error_page, render, Frame, PageUser};
use crate::error::ApiError;
use crate::AppState;

#[derive(Serialize)]
struct Product {
    id: i64,
    name: String,
    description: String,
    team: String,
    sets: Vec<i64>,
    types: Vec<AnnotationTypeRow>,
}

#[derive(Serialize)]
struct Account {
    id: i64,
    username: String,
    email: String,
    is_active: bool,
    is_staff: bool,
    is_superuser: bool,
}

#[derive(Serialize)]
struct Context<'a> {
    frame: Frame<'a>,
    products: Vec<Product>,
    /// Teams the user may make products in, and the sets they may link.
    teams: Vec<(i64, String)>,
    sets: Vec<(i64, String)>,
    accounts: Option<Vec<Account>>,
}

pub async fn administration_page(State(state): State<AppState>, user: PageUser) -> Response {
    match context(&state, &user).await {
        Ok(context) => render(StatusCode::OK, "administration.html", context),
        Err(e) => error_page(Some(&user), &e),
    }
}

async fn context<'a>(state: &AppState, user: &'a PageUser) -> Result<Context<'a>, ApiError> {
    let actor = user.user.actor();
    let mut types_of: BTreeMap<i64, Vec<AnnotationTypeRow>> = BTreeMap::new();
    for t in state.read.readable_types(actor).await? {
        types_of.entry(t.product).or_default().push(t);
    }
    let mut sets_of: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (product, set) in state.read.product_links().await? {
        sets_of.entry(product).or_default().push(set);
    }
    let mut team_names: BTreeMap<i64, String> = BTreeMap::new();
    for team in state.read.readable_teams(actor).await? {
        team_names.insert(team.id, team.name);
    }
    let mut products = Vec::new();
    for p in state.read.readable_products(actor).await? {
        let team = match team_names.get(&p.team) {
            Some(name) => name.clone(),
            None => state
                .read
                .team(p.team)
                .await?
                .map(|t| t.name)
                .unwrap_or_default(),
        };
        let mut types = types_of.remove(&p.id).unwrap_or_default();
        types.sort_by_key(|t| (t.sort_order, t.id));
        products.push(Product {
            id: p.id,
            name: p.name,
            description: p.description,
            team,
            sets: sets_of.remove(&p.id).unwrap_or_default(),
            types,
        });
    }
    let sets = state
        .read
        .readable_sets(actor)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let accounts = if user.user.is_staff || user.user.is_superuser {
        Some(
            state
                .read
                .users()
                .await?
                .into_iter()
                .map(|u| Account {
                    id: u.id,
                    username: u.username,
                    email: u.email,
                    is_active: u.is_active,
                    is_staff: u.is_staff,
                    is_superuser: u.is_superuser,
                })
                .collect(),
        )
    } else {
        None
    };
    Ok(Context {
        frame: user.frame(),
        products,
        teams: team_names.into_iter().collect(),
        sets,
        accounts,
    })
}
