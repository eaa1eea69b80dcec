//! Password hashing with argon2id (the crate's defaults: 19 MiB, 2 passes), off the async
//! threads: one hash takes tens of milliseconds of one core.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};

use crate::error::{ApiError, Code};

/// The PHC string (`$argon2id$v=19$...`) for `password`.
pub async fn hash(password: String) -> Result<String, ApiError> {
    check_strength(&password)?;
    blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| e.to_string())
    })
    .await
}

/// Whether `password` matches the stored PHC string. A malformed stored hash never matches.
pub async fn verify(password: String, stored: String) -> Result<bool, ApiError> {
    blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return Ok(false);
        };
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await
}

/// EXACT's default `exact` is four characters: the floor is kept at that so the documented
/// default still works, and only empty or absurd passwords are refused.
fn check_strength(password: &str) -> Result<(), ApiError> {
    let length = password.chars().count();
    if !(4..=1024).contains(&length) {
        return Err(
            ApiError::new(Code::Invalid, "a password needs 4 to 1024 characters")
                .with_field("password"),
        );
    }
    Ok(())
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(ApiError::internal("hashing a password failed", &e)),
        Err(e) => Err(ApiError::internal("hashing a password failed", &e)),
    }
}

/// 24 random bytes as hex: a secret for tokens, CSRF and passwords nobody is meant to know.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 24];
    getrandom::getrandom(&mut bytes).expect("the system has a source of randomness");
    hex::encode(bytes)
}
