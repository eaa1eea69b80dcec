//! Every error code the API answers, each with one HTTP status and one meaning (as
//! meilisearch's `Code`). A handler names a code; the status comes from this table, so the same
//! code never means two statuses. The README lists the table (a test holds them equal).

use axum::http::StatusCode;

macro_rules! codes {
    ($($variant:ident = $name:literal, $status:ident, $meaning:literal;)*) => {
        /// An error code, as `{"code": ...}` says it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Code {
            $($variant),*
        }

        impl Code {
            /// Every code, in the order of the table.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The snake_case name clients match on.
            pub fn name(self) -> &'static str {
                match self {
                    $(Code::$variant => $name),*
                }
            }

            pub fn status(self) -> StatusCode {
                match self {
                    $(Code::$variant => StatusCode::$status),*
                }
            }

            /// What it means, for the README and the API document.
            pub fn meaning(self) -> &'static str {
                match self {
                    $(Code::$variant => $meaning),*
                }
            }
        }
    };
}

codes! {
    MalformedJson = "malformed_json", BAD_REQUEST,
        "the body is not valid JSON";
    MalformedBody = "malformed_body", BAD_REQUEST,
        "the body is not a valid form or multipart body";
    InvalidRequest = "invalid_request", BAD_REQUEST,
        "the request cannot be read (a header, a path or a body the router refused)";
    InvalidField = "invalid_field", BAD_REQUEST,
        "a field is not of the form the API reads (a word where a number belongs, a bad UUID); `field` names it";
    Required = "required", BAD_REQUEST,
        "a required field is missing; `field` names it";
    InvalidQuery = "invalid_query", BAD_REQUEST,
        "a query parameter (filter, page, `in_bbox`, `as_of`, ...) cannot be read; `field` names it";
    InvalidHeader = "invalid_header", BAD_REQUEST,
        "a header (`If-Match`, `X-Exact-Reason`, ...) cannot be read";
    InvalidPath = "invalid_path", BAD_REQUEST,
        "a part of the path (an id, a tile address) cannot be read";
    OutOfRange = "out_of_range", BAD_REQUEST,
        "a level, tile or region beyond what the slide has";
    UniqueIdentifierTaken = "unique_identifier_taken", BAD_REQUEST,
        "another annotation has this `unique_identifier` (only a retry of the same creation gets it back)";
    Unauthorized = "unauthorized", UNAUTHORIZED,
        "no valid credentials: log in, or send Basic, Bearer or session credentials";
    Forbidden = "forbidden", FORBIDDEN,
        "the caller may not do this";
    CsrfFailed = "csrf_failed", FORBIDDEN,
        "a write with the session cookie lacks the session's CSRF token";
    CrossOrigin = "cross_origin", FORBIDDEN,
        "a login or logout from another origin";
    NotFound = "not_found", NOT_FOUND,
        "no such thing, or not one the caller may read";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED,
        "the route does not take this method";
    Taken = "taken", CONFLICT,
        "the name (or username) is taken; `field` names it";
    AlreadyExists = "already_exists", CONFLICT,
        "it exists already (a second global annotation of a type, ...)";
    DuplicateImage = "duplicate_image", CONFLICT,
        "the set has an image of this name or content already";
    InUse = "in_use", CONFLICT,
        "what depends on it would not survive the change (annotations a new vector type does not fit)";
    VersionConflict = "version_conflict", CONFLICT,
        "others kept changing the same thing meanwhile; try again";
    DuplicateEvent = "duplicate_event", CONFLICT,
        "the event was stored already";
    Deleted = "deleted", GONE,
        "it was deleted (a set, a team, an annotation): the log keeps it, changes are refused";
    StaleVersion = "stale_version", PRECONDITION_FAILED,
        "`If-Match` names a version that is no longer current: reload and try again";
    BodyTooLarge = "body_too_large", PAYLOAD_TOO_LARGE,
        "the body is larger than allowed";
    UploadTooLarge = "upload_too_large", PAYLOAD_TOO_LARGE,
        "the upload (all its files together) is larger than the server takes";
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE,
        "send JSON, a form or multipart data";
    ReasonRequired = "reason_required", UNPROCESSABLE_ENTITY,
        "the image set is in clinical mode: this change of an annotation with a verdict needs a `reason` (body field or `X-Exact-Reason`)";
    SignatureRequired = "signature_required", UNPROCESSABLE_ENTITY,
        "the image set is in clinical mode: a verdict is an electronic signature and needs the caller's `password`";
    SignatureRefused = "signature_refused", FORBIDDEN,
        "the `password` given to sign is not the caller's";
    Invalid = "invalid", UNPROCESSABLE_ENTITY,
        "a well-formed value breaks a rule (a vector outside the image, a name too long); `field` names it";
    InvalidImport = "invalid_import", UNPROCESSABLE_ENTITY,
        "a file to import cannot be read as its format (not UTF-8, not COCO's structure); the message names where";
    ImportRefused = "import_refused", UNPROCESSABLE_ENTITY,
        "some annotations of an import were refused and nothing was applied; `report` lists each with its line or JSON path";
    UnsupportedFile = "unsupported_file", UNPROCESSABLE_ENTITY,
        "an uploaded file is neither a slide OpenSlide reads nor an image the decoders know";
    UnreadableFile = "unreadable_file", UNPROCESSABLE_ENTITY,
        "an uploaded file was recognised but cannot be read (truncated, damaged)";
    UnsafeArchive = "unsafe_archive", UNPROCESSABLE_ENTITY,
        "a zip archive climbs out of its folder, links, or expands beyond the limits";
    TooLarge = "too_large", UNPROCESSABLE_ENTITY,
        "more pixels (or frames) than are decoded at once";
    InvalidEvent = "invalid_event", UNPROCESSABLE_ENTITY,
        "the store refused the events as written (a bug: please report it)";
    TooManyAttempts = "too_many_attempts", TOO_MANY_REQUESTS,
        "too many failed logins: wait and try again";
    InternalError = "internal_error", INTERNAL_SERVER_ERROR,
        "the server failed; the details are in its log";
    StoreUnavailable = "store_unavailable", INTERNAL_SERVER_ERROR,
        "the event store failed; the details are in the server's log";
    InsufficientStorage = "insufficient_storage", INSUFFICIENT_STORAGE,
        "the server's disk is full: the upload was not kept and nothing was changed";
    DatabaseUnavailable = "database_unavailable", SERVICE_UNAVAILABLE,
        "the database cannot be reached now and nothing was changed: try again after `Retry-After` seconds";
    TileUnreadable = "tile_unreadable", INTERNAL_SERVER_ERROR,
        "one tile of a slide cannot be decoded; the slide is reopened";
    NotImplemented = "not_implemented", NOT_IMPLEMENTED,
        "an EXACT route this server does not provide";
}

impl Code {
    /// The code named `name`, if there is one.
    pub fn named(name: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// The README's table of the codes, one row per code.
    pub fn markdown_table() -> String {
        let mut table = String::from("| code | status | meaning |\n|---|---:|---|\n");
        for code in Code::ALL {
            table.push_str(&format!(
                "| `{}` | {} | {} |\n",
                code.name(),
                code.status().as_u16(),
                code.meaning()
            ));
        }
        table
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_code_has_one_name_and_errors_only() {
        let mut names: Vec<&str> = Code::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before, "a name is used twice");
        for code in Code::ALL {
            assert!(
                code.status().is_client_error() || code.status().is_server_error(),
                "{code:?}"
            );
            assert_eq!(Code::named(code.name()), Some(*code));
        }
    }

    #[test]
    fn the_readme_lists_the_table() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&Code::markdown_table()),
            "README.md's table of error codes differs from api/src/error/code.rs; it should be:\n{}",
            Code::markdown_table()
        );
    }
}
