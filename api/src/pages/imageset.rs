//! EXACT's set page, `/images/imageset/<id>/`: the images as a grid of thumbnails with their
//! annotation counts, and uploads by drag and drop (the page's script posts each file to the
//! REST API and shows its progress, or the server's error beside it).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use exact_domain::export_format::SetExportEvent;
use exact_domain::permissions::Permission;
use serde::Serialize;

use super::{error_page, render, Frame, PageUser};
use crate::commands::Caller;
use crate::error::ApiError;
use crate::AppState;

#[derive(Serialize)]
struct Image {
    id: i64,
    name: String,
    width: i64,
    height: i64,
    annotations: i64,
    unverified: i64,
    /// The types it has live annotations of, for the filter by type.
    types: Vec<i64>,
    /// (type name, live annotations of it), for the counts per type.
    counts: Vec<(String, i64)>,
    image_type: i64,
}

#[derive(Serialize)]
struct Type {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct Set {
    id: i64,
    name: String,
    description: String,
    location: String,
    team: Option<String>,
    public: bool,
    public_collaboration: bool,
    image_lock: bool,
    clinical: bool,
    priority: i64,
    collaboration_type: i64,
    main_annotation_type: Option<i64>,
    tags: String,
    may_upload: bool,
    may_annotate: bool,
    may_edit: bool,
    may_delete: bool,
}

/// A product of the set's team, and whether it is linked to the set (its types offered).
#[derive(Serialize)]
struct Product {
    id: i64,
    name: String,
    linked: bool,
}

/// A choice in the export form: an export format or a dataset version.
#[derive(Serialize)]
struct Choice {
    id: i64,
    name: String,
}

#[derive(Serialize)]
struct SetPage {
    set: Set,
    images: Vec<Image>,
    types: Vec<Type>,
    products: Vec<Product>,
    /// The team formats (and public ones) the user may export with.
    formats: Vec<Choice>,
    /// The dataset versions that name this set, newest first.
    versions: Vec<Choice>,
    /// The last exports handed out, newest first.
    exports: Vec<ExportListed>,
}

/// An export of the set, as its record in the log tells it.
#[derive(Serialize)]
struct ExportListed {
    by: String,
    at: String,
    format: String,
    position: i64,
    chain_hash: String,
    annotations: u64,
    /// Why the export no longer shows what its format makes now, if it does not.
    outdated: Option<&'static str>,
}

/// EXACT lists a set's last five exports.
const LAST_EXPORTS: usize = 5;

#[derive(Serialize)]
struct Context<'a> {
    frame: Frame<'a>,
    #[serde(flatten)]
    page: SetPage,
}

pub async fn imageset_page(
    State(state): State<AppState>,
    user: PageUser,
    Path(id): Path<i64>,
) -> Response {
    match context(&state, &user, id).await {
        Ok(page) => render(
            StatusCode::OK,
            "imageset.html",
            Context {
                frame: user.frame(),
                page,
            },
        ),
        Err(e) => error_page(Some(&user), &e),
    }
}

async fn context(state: &AppState, user: &PageUser, id: i64) -> Result<SetPage, ApiError> {
    let caller = Caller::new(user.user.actor(), exact_store::Source::Ui);
    let (set, permissions) = state.commands.set_access(&caller, id).await?;
    let team = match set.team {
        Some(team) => state.read.team(team).await?.map(|t| t.name),
        None => None,
    };
    let offered = state.read.offered_types(id).await?;
    // One query for the whole set: per image and type, its live and unjudged annotations.
    let mut counts_of: std::collections::BTreeMap<i64, Vec<(i64, i64, i64)>> = Default::default();
    for (image, annotation_type, total, unverified) in state.read.set_type_counts(id).await? {
        counts_of
            .entry(image)
            .or_default()
            .push((annotation_type, total, unverified));
    }
    let mut images = Vec::new();
    for image in state.read.readable_images(caller.actor, Some(id)).await? {
        let counts = counts_of.remove(&image.id).unwrap_or_default();
        images.push(Image {
            id: image.id,
            name: image.name,
            width: image.width,
            height: image.height,
            annotations: counts.iter().map(|(_, total, _)| total).sum(),
            unverified: counts.iter().map(|(_, _, unverified)| unverified).sum(),
            types: counts.iter().map(|(t, _, _)| *t).collect(),
            counts: counts
                .iter()
                .filter_map(|(t, total, _)| {
                    let name = offered.iter().find(|o| o.id == *t)?.name.clone();
                    Some((name, *total))
                })
                .collect(),
            image_type: image.image_type,
        });
    }
    let types = offered
        .into_iter()
        .map(|t| Type {
            id: t.id,
            name: t.name,
        })
        .collect();
    let tags = state.read.set_tags(id).await?.join(", ");
    let linked: std::collections::BTreeSet<i64> = state
        .read
        .product_links()
        .await?
        .into_iter()
        .filter(|(_, image_set)| *image_set == id)
        .map(|(product, _)| product)
        .collect();
    let products = state
        .read
        .readable_products(caller.actor)
        .await?
        .into_iter()
        .filter(|p| Some(p.team) == set.team || linked.contains(&p.id))
        .map(|p| Product {
            linked: linked.contains(&p.id),
            id: p.id,
            name: p.name,
        })
        .collect();
    images.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    let formats = state
        .read
        .usable_export_formats(caller.actor.id)
        .await?
        .into_iter()
        // The default format (of no team) is the form's first choice, `exact`.
        .filter(|(_, _, team)| team.is_some())
        .map(|(id, name, _)| Choice { id, name })
        .collect();
    let default_format = state.read.default_export_format().await?;
    let versions = state
        .read
        .dataset_versions_of_set(id)
        .await?
        .into_iter()
        .map(|v| Choice {
            id: v.id,
            name: v.name,
        })
        .collect();
    let mut exports = Vec::new();
    for (envelope, event) in state.commands.set_exports(id, LAST_EXPORTS).await? {
        let SetExportEvent::SetExported {
            format,
            format_name,
            format_version,
            position,
            chain_hash,
            annotations,
            ..
        } = event;
        let by = match envelope.metadata().ok().and_then(|m| m.actor) {
            Some(user) => state.read.user(user).await?.map(|u| u.username),
            None => None,
        };
        // `exact` made with a version of the default format is compared with the default now
        // (none now: it was deleted, and `exact` exports with the built-in templates).
        let format_id = match format.strip_prefix("exact:") {
            Some(id) => id.parse().ok().map(Some),
            None if format == "exact" => Some(default_format),
            None => None,
        };
        let outdated = match (format_id, format_version) {
            (Some(Some(format_id)), Some(made_with)) => {
                match state.read.export_format_version(format_id).await? {
                    Some((_, true)) | None => Some("its format was deleted since"),
                    Some((now, false)) if now > made_with => Some("made before its format changed"),
                    Some(_) => None,
                }
            }
            (Some(None), Some(_)) => Some("its format was deleted since"),
            _ => None,
        };
        exports.push(ExportListed {
            by: by.unwrap_or_else(|| "Exact".into()),
            at: envelope
                .recorded_at
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string(),
            format: format_name.map_or(format, |name| {
                format!("{name} (v{})", format_version.unwrap_or(0))
            }),
            position,
            chain_hash,
            annotations,
            outdated,
        });
    }
    Ok(SetPage {
        set: Set {
            id: set.id,
            name: set.name,
            description: set.description,
            location: set.location,
            team,
            public: set.public,
            public_collaboration: set.public_collaboration,
            image_lock: set.image_lock,
            clinical: set.clinical,
            priority: set.priority,
            collaboration_type: set.collaboration_type,
            main_annotation_type: set.main_annotation_type,
            tags,
            may_upload: permissions.contains(Permission::AddImages),
            may_annotate: permissions.contains(Permission::Annotate),
            may_edit: permissions.contains(Permission::EditSet),
            may_delete: permissions.contains(Permission::DeleteSet),
        },
        images,
        types,
        products,
        formats,
        versions,
        exports,
    })
}
