//! The rules a catalog command can break (users, teams, products, types, sets, images, export
//! formats, dataset versions, image access). Annotation commands have their own
//! [`AnnotationError`](crate::annotation::AnnotationError), wrapped here so that a caller
//! handles one type.

use crate::annotation::AnnotationError;
use crate::permissions::Permission;

#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum DomainError {
    /// A field's value breaks a rule; `field` names it as the API does.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// Another one of the kind has this name (or username) already.
    #[error("{field}: {value:?} is taken")]
    Taken { field: &'static str, value: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0} exists already")]
    AlreadyExists(&'static str),
    #[error("you may not {0}")]
    Forbidden(&'static str),
    #[error("you may not {0:?} in this image set")]
    ForbiddenInSet(Permission),
    /// The command names something that is gone (a deleted set, a dissolved team).
    #[error("{0} is deleted")]
    Deleted(&'static str),
    /// A change that what depends on it would not survive (a vector type its annotations do
    /// not fit).
    #[error("{field}: {message}")]
    InUse {
        field: &'static str,
        message: String,
    },
    #[error(transparent)]
    Annotation(#[from] AnnotationError),
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}

/// Checks a name's length in characters after trimming; returns the trimmed name.
pub(crate) fn name_in(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<String, DomainError> {
    let trimmed = value.trim();
    let length = trimmed.chars().count();
    if length < min || length > max {
        return Err(DomainError::invalid(
            field,
            format!("must be {min} to {max} characters long, not {length}"),
        ));
    }
    Ok(trimmed.to_owned())
}

/// Fails with `Forbidden(what)` unless `allowed`.
pub(crate) fn allow(allowed: bool, what: &'static str) -> Result<(), DomainError> {
    if allowed {
        Ok(())
    } else {
        Err(DomainError::Forbidden(what))
    }
}
