//! `/administration/export_formats/`: a team's export formats in EXACT's language, made and
//! changed with a live preview on a real set. The editor starts a new format from the store's
//! default format (the one `format=exact` exports with, of no team: superusers change it);
//! every save and the preview go through the REST API (`administration/export_formats/`).

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use exact_domain::export_format::FormatSettings;
use serde::{Deserialize, Serialize};

use super::{error_page, render, Frame, PageUser};
use crate::error::ApiError;
use crate::exports::visible_formats;
use crate::AppState;

#[derive(Deserialize)]
pub struct Which {
    /// The format to edit; none: a new one.
    format: Option<i64>,
    /// The set to preview on.
    set: Option<i64>,
}

#[derive(Serialize)]
struct Listed {
    id: i64,
    name: String,
    team: String,
    public: bool,
}

#[derive(Serialize)]
struct Editing {
    id: Option<i64>,
    team: Option<i64>,
    /// The store's default format: of no team, naming no types, changed by superusers.
    default: bool,
    version: Option<i64>,
    settings: FormatSettings,
}

#[derive(Serialize)]
struct TypeChoice {
    id: i64,
    label: String,
    team: i64,
}

#[derive(Serialize)]
struct Context<'a> {
    frame: Frame<'a>,
    formats: Vec<Listed>,
    editing: Editing,
    teams: Vec<(i64, String)>,
    types: Vec<TypeChoice>,
    sets: Vec<(i64, String)>,
    preview_set: Option<i64>,
    /// Superusers change the default format.
    superuser: bool,
}

pub async fn export_formats_page(
    State(state): State<AppState>,
    user: PageUser,
    Query(which): Query<Which>,
) -> Response {
    match context(&state, &user, which).await {
        Ok(context) => render(StatusCode::OK, "export-formats.html", context),
        Err(e) => error_page(Some(&user), &e),
    }
}

async fn context<'a>(
    state: &AppState,
    user: &'a PageUser,
    which: Which,
) -> Result<Context<'a>, ApiError> {
    let actor = user.user.actor();
    let teams: Vec<(i64, String)> = state
        .read
        .readable_teams(actor)
        .await?
        .into_iter()
        .map(|t| (t.id, t.name))
        .collect();
    let team_name = |id: Option<i64>| match id {
        Some(id) => teams
            .iter()
            .find(|(t, _)| *t == id)
            .map_or_else(|| format!("team {id}"), |(_, name)| name.clone()),
        None => "every team (format=exact)".into(),
    };
    let visible = visible_formats(state, actor).await?;
    let formats = visible
        .iter()
        .map(|(row, _)| Listed {
            id: row.id,
            name: row.name.clone(),
            team: team_name(row.team),
            public: row.public,
        })
        .collect();
    let editing = match which.format {
        Some(id) => {
            let (row, settings) = visible
                .iter()
                .find(|(row, _)| row.id == id)
                .cloned()
                .ok_or(exact_domain::DomainError::NotFound("export format"))?;
            Editing {
                id: Some(row.id),
                team: row.team,
                default: row.team.is_none(),
                version: Some(row.version),
                settings,
            }
        }
        // A new format starts from the default's templates, as they now are.
        None => Editing {
            id: None,
            team: None,
            default: false,
            version: None,
            settings: FormatSettings {
                name: String::new(),
                public: false,
                annotations_types: Default::default(),
                ..visible
                    .iter()
                    .find(|(row, _)| row.team.is_none())
                    .map_or_else(FormatSettings::default, |(_, s)| s.clone())
            },
        },
    };
    let products = state.read.readable_products(actor).await?;
    let mut types: Vec<TypeChoice> = state
        .read
        .readable_types(actor)
        .await?
        .into_iter()
        .filter_map(|t| {
            let product = products.iter().find(|p| p.id == t.product)?;
            Some(TypeChoice {
                id: t.id,
                label: format!("{} · {}", product.name, t.name),
                team: product.team,
            })
        })
        .collect();
    types.sort_by(|a, b| a.label.cmp(&b.label));
    let sets: Vec<(i64, String)> = state
        .read
        .readable_sets(actor)
        .await?
        .into_iter()
        .map(|s| (s.id, s.name))
        .collect();
    let preview_set = which
        .set
        .filter(|id| sets.iter().any(|(s, _)| s == id))
        .or_else(|| sets.first().map(|(id, _)| *id));
    Ok(Context {
        frame: user.frame(),
        formats,
        editing,
        teams,
        types,
        sets,
        preview_set,
        superuser: actor.superuser,
    })
}
