//! Verdicts: a user's accept or reject of an annotation; a later one replaces the earlier.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use exact_domain::annotation::{AnnotationCommand, Meaning};
use exact_domain::DomainError;
use exact_projections::VerificationRow;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::{ApiError, Code};
use crate::rest::access::readable_image_ids;
use crate::rest::body::{lenient, Body};
use crate::rest::caller_for;
use crate::rest::expand::{expand, expand_results, Related};
use crate::rest::filters::{IdFilter, TimeFilter};
use crate::rest::input::wrong;
use crate::rest::params::Params;
use crate::rest::shapes::{self, Verification};
use crate::AppState;

use super::readable_annotation;

// ---- verifications ----

pub(super) fn verification_json(v: &VerificationRow) -> Value {
    shapes::value(&Verification::of(v))
}

pub(super) async fn visible_verifications(
    state: &AppState,
    auth: &Authenticated,
    annotation: i64,
    user: i64,
) -> Result<Vec<VerificationRow>, ApiError> {
    let readable = readable_image_ids(state, auth).await?;
    let rows = state.read.verification_rows(annotation, user).await?;
    Ok(rows
        .into_iter()
        .filter(|v| readable.as_ref().is_none_or(|r| r.contains(&v.image)))
        .collect())
}

/// The filters of the verdict list.
#[derive(Debug, Deserialize)]
struct VerdictFilters {
    #[serde(flatten)]
    id: IdFilter,
    #[serde(flatten)]
    time: TimeFilter,
    #[serde(default, deserialize_with = "lenient::int")]
    annotation: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    verified: Option<bool>,
}

/// Current verdicts
#[utoipa::path(get, path = "/annotations/verifications/", responses((status = 200, body = crate::rest::shapes::VerificationPage)))]
pub(super) async fn list_verifications(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
) -> Result<Json<Value>, ApiError> {
    let f: VerdictFilters = params.filters()?;
    let (verified, ids) = (f.verified, f.id.allowed());
    let rows = visible_verifications(
        &state,
        &auth,
        f.annotation.unwrap_or(0),
        f.user.unwrap_or(0),
    )
    .await?
    .iter()
    .filter(|v| verified.is_none_or(|b| b == v.verified))
    .filter(|v| ids.as_ref().is_none_or(|ids| ids.contains(&v.position)))
    .filter(|v| f.time.keeps(v.time))
    .map(verification_json)
    .collect();
    let mut page = params.page_of(rows)?;
    expand_results(&state, &auth, &params, &mut page, VERIFICATION_EXPANDS).await?;
    Ok(Json(page))
}

/// What `expand=` may replace in a verdict.
pub(super) const VERIFICATION_EXPANDS: &[(&str, Related)] =
    &[("annotation", Related::Annotation), ("user", Related::User)];

/// One verdict
#[utoipa::path(get, path = "/annotations/verifications/{id}/", responses((status = 200, body = crate::rest::shapes::Verification)))]
pub(super) async fn get_verification(
    State(state): State<AppState>,
    auth: Authenticated,
    params: Params,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let rows = visible_verifications(&state, &auth, 0, 0).await?;
    let row = rows
        .iter()
        .find(|v| v.position == id)
        .ok_or(DomainError::NotFound("verification"))?;
    let mut body = params.shape(verification_json(row));
    expand(
        &state,
        &auth,
        &params,
        std::slice::from_mut(&mut body),
        VERIFICATION_EXPANDS,
    )
    .await?;
    Ok(Json(body))
}

/// What a verdict's creation reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NewVerification)]
pub(in crate::rest) struct NewVerdictBody {
    #[serde(deserialize_with = "lenient::required_int")]
    annotation: i64,
    #[serde(deserialize_with = "lenient::required_bool")]
    verified: bool,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    /// The caller's password: the verdict becomes an electronic signature (required in a set
    /// in clinical mode).
    #[serde(default)]
    password: Option<String>,
    /// What the signature means: `reviewed` or `approved` (accepting), `rejected`; by default
    /// `approved` or `rejected` after `verified`.
    #[serde(default)]
    meaning: Option<String>,
}

/// The command a verdict is: with a password, an electronic signature, once the password is
/// proven the caller's (checked and throttled as a login).
async fn verdict_command(
    state: &AppState,
    auth: &Authenticated,
    verified: bool,
    password: Option<&str>,
    meaning: Option<&str>,
) -> Result<AnnotationCommand, ApiError> {
    let meaning = match meaning {
        None => None,
        Some(text) => Some(Meaning::parse(text).ok_or_else(|| {
            ApiError::new(
                Code::InvalidField,
                format!("{text:?} is not a meaning: reviewed, approved or rejected"),
            )
            .with_field("meaning")
        })?),
    };
    let Some(password) = password.filter(|p| !p.is_empty()) else {
        if meaning.is_some() {
            return Err(ApiError::new(
                Code::Required,
                "a meaning is given with a signature: send the password too",
            )
            .with_field("password"));
        }
        return Ok(AnnotationCommand::Verify { verified });
    };
    let meaning = meaning.unwrap_or(if verified {
        Meaning::Approved
    } else {
        Meaning::Rejected
    });
    if meaning.verified() != verified {
        return Err(ApiError::new(
            Code::Invalid,
            format!(
                "a signature meaning {} {} the annotation, which `verified` says it does not",
                meaning.as_str(),
                if meaning.verified() {
                    "accepts"
                } else {
                    "rejects"
                }
            ),
        )
        .with_field("meaning"));
    }
    state
        .login(
            &auth.user.username,
            password,
            auth.caller.client_addr.as_deref(),
        )
        .await
        .map_err(|e| match e.code {
            Code::TooManyAttempts => e,
            _ => ApiError::new(
                Code::SignatureRefused,
                "the password is not yours: nothing was signed",
            )
            .with_field("password"),
        })?;
    Ok(AnnotationCommand::Sign {
        meaning,
        signer: auth.user.username.clone(),
    })
}

/// Accept or reject an annotation
///
/// The caller's verdict (JSON or form fields): `annotation`, `verified`. A later verdict of
/// the same user replaces the earlier one; both stay in the log. With `password` (and
/// optionally `meaning`) the verdict is an electronic signature, which a set in clinical mode
/// requires.
#[utoipa::path(post, path = "/annotations/verifications/", request_body = NewVerdictBody, responses((status = 201, body = crate::rest::shapes::Verification)))]
pub(super) async fn create_verification(
    State(state): State<AppState>,
    auth: Authenticated,
    Body { fields, raw: body }: Body<NewVerdictBody>,
) -> Result<Response, ApiError> {
    let NewVerdictBody {
        annotation,
        verified,
        user,
        password,
        meaning,
    } = fields;
    if user.is_some_and(|u| u != auth.caller.actor.id) {
        return Err(wrong("user", "the caller: a verdict is the caller's own"));
    }
    readable_annotation(&state, &auth, annotation).await?;
    let command = verdict_command(
        &state,
        &auth,
        verified,
        password.as_deref(),
        meaning.as_deref(),
    )
    .await?;
    state
        .commands
        .annotation_command(&caller_for(&auth, &body), annotation, None, &command)
        .await?;
    let rows = state
        .read
        .verification_rows(annotation, auth.caller.actor.id)
        .await?;
    let row = rows.first().ok_or(DomainError::NotFound("verification"))?;
    Ok((StatusCode::CREATED, Json(verification_json(row))).into_response())
}

/// Verdict `id` if the caller may see it and it is the caller's own: a verdict is changed or
/// taken back only by whoever gave it.
pub(super) async fn own_verification(
    state: &AppState,
    auth: &Authenticated,
    id: i64,
) -> Result<VerificationRow, ApiError> {
    let rows = visible_verifications(state, auth, 0, 0).await?;
    let row = rows
        .into_iter()
        .find(|v| v.position == id)
        .ok_or(DomainError::NotFound("verification"))?;
    if row.user_id != auth.caller.actor.id {
        return Err(ApiError::new(
            Code::Forbidden,
            "a verdict is changed or taken back only by the user who gave it",
        ));
    }
    Ok(row)
}

/// Change one's own verdict (it gets a new id)
///
/// EXACT's verification update: the caller changes their verdict (`verified`). The new verdict
/// is a new event, so it answers with its own id (the log position that gave it).
#[utoipa::path(patch, path = "/annotations/verifications/{id}/", request_body = VerdictChange, responses((status = 200, body = crate::rest::shapes::Verification)))]
pub(super) async fn update_verification(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
    Body { fields, raw: body }: Body<VerdictChange>,
) -> Result<Response, ApiError> {
    let row = own_verification(&state, &auth, id).await?;
    if fields.annotation.is_some_and(|a| a != row.annotation) {
        return Err(wrong(
            "annotation",
            "the verdict's own: give a new verdict instead",
        ));
    }
    if fields.user.is_some_and(|u| u != row.user_id) {
        return Err(wrong("user", "the caller: a verdict is the caller's own"));
    }
    if let Some(verified) = fields.verified {
        let command = verdict_command(
            &state,
            &auth,
            verified,
            fields.password.as_deref(),
            fields.meaning.as_deref(),
        )
        .await?;
        state
            .commands
            .annotation_command(&caller_for(&auth, &body), row.annotation, None, &command)
            .await?;
    }
    let rows = state
        .read
        .verification_rows(row.annotation, auth.caller.actor.id)
        .await?;
    let row = rows.first().ok_or(DomainError::NotFound("verification"))?;
    Ok(Json(verification_json(row)).into_response())
}

/// What a verdict's update reads.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = VerificationChange)]
pub(in crate::rest) struct VerdictChange {
    #[serde(default, deserialize_with = "lenient::int")]
    annotation: Option<i64>,
    #[serde(default, deserialize_with = "lenient::int")]
    user: Option<i64>,
    #[serde(default, deserialize_with = "lenient::bool")]
    verified: Option<bool>,
    /// As at creation: the verdict becomes an electronic signature.
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    meaning: Option<String>,
}

/// Take one's own verdict back (the log keeps it)
///
/// EXACT's verification delete: the caller takes their verdict back; the log keeps it.
#[utoipa::path(delete, path = "/annotations/verifications/{id}/", responses((status = 204)))]
pub(super) async fn delete_verification(
    State(state): State<AppState>,
    auth: Authenticated,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    let row = own_verification(&state, &auth, id).await?;
    state
        .commands
        .annotation_command(
            &auth.caller,
            row.annotation,
            None,
            &AnnotationCommand::WithdrawVerdict,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
