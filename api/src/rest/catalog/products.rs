//! Products, which offer annotation types to the image sets they are linked to.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use exact_domain::product::ProductCommand;
use exact_projections::catalog_read::ProductRow;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::teams::readable_team;
use super::{created, not_found, ok};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::rest::body::{lenient, Body};
use crate::rest::filters::{DescriptionFilter, IdFilter, NameFilter};
use crate::rest::params::Params;
use crate::rest::shapes::{self, Product};
use crate::rest::{caller_for, if_match};
use crate::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/administration/products/",
            get(list_products).post(create_product),
        )
        .route(
            "/administration/products/{id}/",
            get(get_product)
                .patch(update_product)
                .put(update_product)
                .delete(delete_product),
        )
}

fn product_json(p: &ProductRow, sets: &[i64], types: &[i64]) -> Value {
    shapes::value(&Product::of(p, sets, types))
}

struct ProductLinks {
    sets: BTreeMap<i64, Vec<i64>>,
    types: BTreeMap<i64, Vec<i64>>,
}

async fn product_links(state: &AppState, auth: &Authenticated) -> Result<ProductLinks, ApiError> {
    let readable = state.read.readable_set_ids(auth.caller.actor).await?;
    let mut sets: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for (product, set) in state.read.product_links().await? {
        if readable.contains(&set) {
            sets.entry(product).or_default().push(set);
        }
    }
    let mut types: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for t in state.read.readable_types(auth.caller.actor).await? {
        types.entry(t.product).or_default().push(t.id);
    }
    Ok(ProductLinks { sets, types })
}

fn product_with(p: &ProductRow, links: &ProductLinks) -> Value {
    product_json(
        p,
        links.sets.get(&p.id).map_or(&[][..], Vec::as_slice),
        links.types.get(&p.id).map_or(&[][..], Vec::as_slice),
    )
}

/// The filters of the product list.
#[derive(Debug, Deserialize)]
struct ProductFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    name: NameFilter,
    #[serde(flatten)]
    description: DescriptionFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    team: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    creator: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    imagesets: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    annotationtype: Option<i64>,
}

/// Products
#[utoipa::path(get, path = "/administration/products/", responses((status = 200, body = crate::rest::shapes::ProductPage)))]
async fn list_products(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let links = product_links(&state, &auth).await?;
    let f: ProductFilters = params.filters()?;
    let ids = f.id.allowed();
    let (team, creator, set, annotation_type) = (f.team, f.creator, f.imagesets, f.annotationtype);
    let rows = state
        .read
        .readable_products(auth.caller.actor)
        .await?
        .iter()
        .filter(|p| ids.as_ref().is_none_or(|ids| ids.contains(&p.id)))
        .filter(|p| f.name.keeps(&p.name))
        .filter(|p| f.description.keeps(&p.description))
        .filter(|p| team.is_none_or(|t| t == p.team))
        .filter(|p| creator.is_none_or(|c| c == p.creator))
        .filter(|p| set.is_none_or(|s| links.sets.get(&p.id).is_some_and(|v| v.contains(&s))))
        .filter(|p| {
            annotation_type.is_none_or(|t| links.types.get(&p.id).is_some_and(|v| v.contains(&t)))
        })
        .map(|p| product_with(p, &links))
        .collect();
    Ok(Json(params.page_of(rows)?))
}

pub(super) async fn readable_product(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<ProductRow, ApiError> {
    state
        .read
        .readable_products(auth.caller.actor)
        .await?
        .into_iter()
        .find(|p| p.id == id)
        .ok_or_else(|| not_found("product"))
}

/// One product
#[utoipa::path(get, path = "/administration/products/{id}/", responses((status = 200, body = crate::rest::shapes::Product)))]
async fn get_product(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Response, ApiError> {
    let product = readable_product(&state, &auth, id).await?;
    let links = product_links(&state, &auth).await?;
    Ok(ok(
        params.shape(product_with(&product, &links)),
        product.version,
    ))
}

/// What a product's creation reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewProduct)]
pub(in crate::rest) struct NewProductBody {
    #[serde(deserialize_with = "lenient::required_string")]
    name: String,
    #[serde(deserialize_with = "lenient::required_int")]
    team: i64,
    #[serde(default, deserialize_with = "lenient::string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient::ids")]
    imagesets: Option<Vec<i64>>,
}

/// What a product's update reads; only what is sent changes.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ProductChange)]
pub(in crate::rest) struct ProductChangeBody {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    description: Option<String>,
    #[serde(default, deserialize_with = "lenient::ids")]
    imagesets: Option<Vec<i64>>,
}

/// Create a product
#[utoipa::path(post, path = "/administration/products/", request_body = NewProductBody, responses((status = 201, body = crate::rest::shapes::Product)))]
async fn create_product(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewProductBody>,
) -> Result<Response, ApiError> {
    let NewProductBody {
        name,
        team,
        description,
        imagesets,
    } = fields;
    let description = description.unwrap_or_default();
    let sets = imagesets.unwrap_or_default();
    let caller = caller_for(&auth, &body);
    // Staff manage every team's products (the domain's rule) without reading its team.
    if !auth.caller.actor.staff {
        readable_team(&state, &auth, team).await?;
    }
    // The links are checked first: one refused must not leave the product made without it.
    for &image_set in &sets {
        state.commands.may_link(&caller, image_set).await?;
    }
    let written = state
        .commands
        .create_product(&caller, team, name, description)
        .await?;
    let mut version = written.version;
    for image_set in sets {
        version = state
            .commands
            .product_command(
                &caller,
                written.id,
                None,
                &ProductCommand::Link { image_set },
            )
            .await?
            .version;
    }
    let product = readable_product(&state, &auth, written.id).await?;
    let links = product_links(&state, &auth).await?;
    Ok(created(product_with(&product, &links), version))
}

/// Change a product, its linked sets
#[utoipa::path(patch, path = "/administration/products/{id}/", request_body = ProductChangeBody, responses((status = 200, body = crate::rest::shapes::Product)))]
async fn update_product(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<ProductChangeBody>,
) -> Result<Response, ApiError> {
    readable_product(&state, &auth, id).await?;
    let caller = caller_for(&auth, &body);
    let mut expected = if_match(&headers)?;
    let ProductChangeBody {
        name,
        description,
        imagesets,
    } = fields;
    // The links to make and to take away, each checked before anything is written: a refused
    // one must not leave the rest of the change applied.
    let (mut link, mut unlink) = (Vec::new(), Vec::new());
    if let Some(wanted) = imagesets {
        let links = product_links(&state, &auth).await?;
        let now: BTreeSet<i64> = links
            .sets
            .get(&id)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let wanted: BTreeSet<i64> = wanted.into_iter().collect();
        link.extend(wanted.difference(&now).copied());
        unlink.extend(now.difference(&wanted).copied());
    }
    for &image_set in link.iter().chain(&unlink) {
        state.commands.may_link(&caller, image_set).await?;
    }
    if name.is_some() || description.is_some() {
        let written = state
            .commands
            .product_command(
                &caller,
                id,
                expected,
                &ProductCommand::Change { name, description },
            )
            .await?;
        expected = expected.map(|_| written.version);
    }
    let commands = link
        .into_iter()
        .map(|image_set| ProductCommand::Link { image_set })
        .chain(
            unlink
                .into_iter()
                .map(|image_set| ProductCommand::Unlink { image_set }),
        );
    for command in commands {
        let w = state
            .commands
            .product_command(&caller, id, expected, &command)
            .await?;
        expected = expected.map(|_| w.version);
    }
    let product = readable_product(&state, &auth, id).await?;
    let links = product_links(&state, &auth).await?;
    Ok(ok(product_with(&product, &links), product.version))
}

/// Delete a product, its types and their live annotations (the log keeps them)
///
/// EXACT's product delete: gone from lists, with its types and their live annotations.
#[utoipa::path(delete, path = "/administration/products/{id}/", responses((status = 204)))]
async fn delete_product(
    State(state): State<AppState>,
    auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    readable_product(&state, &auth, id).await?;
    state
        .commands
        .product_command(
            &auth.caller,
            id,
            if_match(&headers)?,
            &ProductCommand::Delete,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
