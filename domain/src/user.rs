//! The user aggregate: one stream per account, `user-{id}`.
//!
//! The password arrives already hashed (argon2, by the caller): the domain never sees a
//! password and the log never stores one. The hash itself is in the log so that a rebuilt read
//! model can still log people in; exports of the log are for auditors, not the public.

use serde::{Deserialize, Serialize};

use crate::error::{allow, DomainError};
use crate::event::{Actor, DomainEvent};

pub fn stream(id: i64) -> String {
    format!("user-{id}")
}

/// Django's limit and alphabet for usernames: letters, digits and `@ . + - _`.
pub const MAX_USERNAME: usize = 150;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum UserEvent {
    UserCreated {
        id: i64,
        username: String,
        email: String,
        password_hash: String,
        is_superuser: bool,
        is_staff: bool,
        is_active: bool,
    },
    UserPasswordChanged {
        id: i64,
        password_hash: String,
    },
    UserActivated {
        id: i64,
    },
    UserDeactivated {
        id: i64,
    },
    UserRolesChanged {
        id: i64,
        is_superuser: bool,
        is_staff: bool,
    },
    /// A personal access token for the API. Only its SHA-256 is stored: the token itself is
    /// shown to its owner once.
    AccessTokenCreated {
        id: i64,
        token: uuid::Uuid,
        name: String,
        token_hash: String,
    },
    AccessTokenRevoked {
        id: i64,
        token: uuid::Uuid,
    },
    /// The user pinned a set to the top of their home page (EXACT's `ImageSet.pinned_by`).
    /// A pin is the user's, not the set's: it lives in the user's stream so that pinning
    /// never conflicts with someone editing the set.
    ImageSetPinned {
        id: i64,
        image_set: i64,
    },
    ImageSetUnpinned {
        id: i64,
        image_set: i64,
    },
}

impl DomainEvent for UserEvent {
    const NAMES: &'static [&'static str] = &[
        "UserCreated",
        "UserPasswordChanged",
        "UserActivated",
        "UserDeactivated",
        "UserRolesChanged",
        "AccessTokenCreated",
        "AccessTokenRevoked",
        "ImageSetPinned",
        "ImageSetUnpinned",
    ];
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub is_superuser: bool,
    pub is_staff: bool,
    pub is_active: bool,
    /// Access tokens not revoked.
    pub tokens: std::collections::BTreeSet<uuid::Uuid>,
    /// Image sets pinned to the top of the home page.
    pub pinned_sets: std::collections::BTreeSet<i64>,
}

/// The longest name of an access token.
pub const MAX_TOKEN_NAME: usize = 100;

#[derive(Clone, Debug, PartialEq)]
pub enum UserCommand {
    Create {
        id: i64,
        username: String,
        email: String,
        password_hash: String,
        is_superuser: bool,
        is_staff: bool,
    },
    ChangePassword {
        password_hash: String,
    },
    SetActive(bool),
    SetRoles {
        is_superuser: bool,
        is_staff: bool,
    },
    CreateToken {
        token: uuid::Uuid,
        name: String,
        /// SHA-256 of the token, lowercase hex.
        token_hash: String,
    },
    RevokeToken {
        token: uuid::Uuid,
    },
    /// Pins (`true`) or unpins a set for this user.
    Pin {
        image_set: i64,
        pinned: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct UserContext {
    pub actor: Actor,
    /// Another account has this username (compared without case, as logins are).
    pub username_taken: bool,
    /// For `Pin`: the user may read the set (one may unpin what one no longer reads).
    pub set_readable: bool,
}

pub fn decide(
    state: Option<&User>,
    command: &UserCommand,
    context: &UserContext,
) -> Result<Vec<UserEvent>, DomainError> {
    let actor = context.actor;
    match command {
        UserCommand::Create {
            id,
            username,
            email,
            password_hash,
            is_superuser,
            is_staff,
        } => {
            allow(actor.superuser, "create accounts")?;
            if state.is_some() {
                return Err(DomainError::AlreadyExists("user"));
            }
            check_username(username)?;
            if context.username_taken {
                return Err(DomainError::Taken {
                    field: "username",
                    value: username.clone(),
                });
            }
            check_hash(password_hash)?;
            if !email.is_empty() && !email.contains('@') {
                return Err(DomainError::invalid("email", "is not an e-mail address"));
            }
            Ok(vec![UserEvent::UserCreated {
                id: *id,
                username: username.clone(),
                email: email.clone(),
                password_hash: password_hash.clone(),
                is_superuser: *is_superuser,
                is_staff: *is_staff,
                is_active: true,
            }])
        }
        UserCommand::ChangePassword { password_hash } => {
            let user = state.ok_or(DomainError::NotFound("user"))?;
            allow(
                actor.superuser || actor.id == user.id,
                "change another user's password",
            )?;
            check_hash(password_hash)?;
            Ok(vec![UserEvent::UserPasswordChanged {
                id: user.id,
                password_hash: password_hash.clone(),
            }])
        }
        UserCommand::SetActive(active) => {
            let user = state.ok_or(DomainError::NotFound("user"))?;
            allow(actor.superuser, "activate or deactivate accounts")?;
            allow(
                *active || actor.id != user.id,
                "deactivate your own account",
            )?;
            Ok(match (user.is_active, active) {
                (false, true) => vec![UserEvent::UserActivated { id: user.id }],
                (true, false) => vec![UserEvent::UserDeactivated { id: user.id }],
                _ => vec![],
            })
        }
        UserCommand::SetRoles {
            is_superuser,
            is_staff,
        } => {
            let user = state.ok_or(DomainError::NotFound("user"))?;
            allow(actor.superuser, "change roles")?;
            allow(
                *is_superuser || actor.id != user.id,
                "take away your own superuser role",
            )?;
            if (user.is_superuser, user.is_staff) == (*is_superuser, *is_staff) {
                return Ok(vec![]);
            }
            Ok(vec![UserEvent::UserRolesChanged {
                id: user.id,
                is_superuser: *is_superuser,
                is_staff: *is_staff,
            }])
        }
        UserCommand::CreateToken {
            token,
            name,
            token_hash,
        } => {
            let user = state.ok_or(DomainError::NotFound("user"))?;
            allow(actor.id == user.id, "create tokens for another account")?;
            allow(user.is_active, "create tokens for a deactivated account")?;
            let name = name.trim();
            if name.is_empty() || name.chars().count() > MAX_TOKEN_NAME {
                return Err(DomainError::invalid(
                    "name",
                    format!("must be 1 to {MAX_TOKEN_NAME} characters long"),
                ));
            }
            if token_hash.len() != 64 || !token_hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(DomainError::invalid(
                    "token_hash",
                    "must be a SHA-256 in hex",
                ));
            }
            if user.tokens.contains(token) {
                return Err(DomainError::AlreadyExists("access token"));
            }
            Ok(vec![UserEvent::AccessTokenCreated {
                id: user.id,
                token: *token,
                name: name.to_owned(),
                token_hash: token_hash.to_ascii_lowercase(),
            }])
        }
        UserCommand::RevokeToken { token } => {
            let user = state.ok_or(DomainError::NotFound("user"))?;
            allow(
                actor.superuser || actor.id == user.id,
                "revoke another account's tokens",
            )?;
            if !user.tokens.contains(token) {
                return Err(DomainError::NotFound("access token"));
            }
            Ok(vec![UserEvent::AccessTokenRevoked {
                id: user.id,
                token: *token,
            }])
        }
        UserCommand::Pin { image_set, pinned } => {
            let user = state.ok_or(DomainError::NotFound("user"))?;
            allow(actor.id == user.id, "pin sets for another account")?;
            // A set one cannot read is not there, unless it is on one's page already:
            // unpinning it then only tidies the page.
            let on_page = user.pinned_sets.contains(image_set);
            if !context.set_readable && (*pinned || !on_page) {
                return Err(DomainError::NotFound("image set"));
            }
            let (id, image_set) = (user.id, *image_set);
            Ok(match (user.pinned_sets.contains(&image_set), pinned) {
                (false, true) => vec![UserEvent::ImageSetPinned { id, image_set }],
                (true, false) => vec![UserEvent::ImageSetUnpinned { id, image_set }],
                _ => vec![],
            })
        }
    }
}

pub fn evolve(state: Option<User>, event: &UserEvent) -> Option<User> {
    match (state, event) {
        (
            _,
            UserEvent::UserCreated {
                id,
                username,
                email,
                password_hash,
                is_superuser,
                is_staff,
                is_active,
            },
        ) => Some(User {
            id: *id,
            username: username.clone(),
            email: email.clone(),
            password_hash: password_hash.clone(),
            is_superuser: *is_superuser,
            is_staff: *is_staff,
            is_active: *is_active,
            tokens: std::collections::BTreeSet::new(),
            pinned_sets: std::collections::BTreeSet::new(),
        }),
        (Some(mut u), UserEvent::UserPasswordChanged { password_hash, .. }) => {
            u.password_hash.clone_from(password_hash);
            Some(u)
        }
        (Some(mut u), UserEvent::UserActivated { .. }) => {
            u.is_active = true;
            Some(u)
        }
        (Some(mut u), UserEvent::UserDeactivated { .. }) => {
            u.is_active = false;
            Some(u)
        }
        (
            Some(mut u),
            UserEvent::UserRolesChanged {
                is_superuser,
                is_staff,
                ..
            },
        ) => {
            u.is_superuser = *is_superuser;
            u.is_staff = *is_staff;
            Some(u)
        }
        (Some(mut u), UserEvent::AccessTokenCreated { token, .. }) => {
            u.tokens.insert(*token);
            Some(u)
        }
        (Some(mut u), UserEvent::AccessTokenRevoked { token, .. }) => {
            u.tokens.remove(token);
            Some(u)
        }
        (Some(mut u), UserEvent::ImageSetPinned { image_set, .. }) => {
            u.pinned_sets.insert(*image_set);
            Some(u)
        }
        (Some(mut u), UserEvent::ImageSetUnpinned { image_set, .. }) => {
            u.pinned_sets.remove(image_set);
            Some(u)
        }
        (None, _) => None,
    }
}

fn check_username(username: &str) -> Result<(), DomainError> {
    let length = username.chars().count();
    if length == 0 || length > MAX_USERNAME {
        return Err(DomainError::invalid(
            "username",
            format!("must be 1 to {MAX_USERNAME} characters long"),
        ));
    }
    if let Some(bad) = username
        .chars()
        .find(|c| !(c.is_alphanumeric() || "@.+-_".contains(*c)))
    {
        return Err(DomainError::invalid(
            "username",
            format!("may hold letters, digits and @ . + - _ only, not {bad:?}"),
        ));
    }
    Ok(())
}

/// Only a PHC-format argon2 hash is accepted: a plain password here is a caller's bug.
fn check_hash(hash: &str) -> Result<(), DomainError> {
    if hash.starts_with("$argon2") {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "password",
            "must arrive as an argon2 hash in PHC format",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

    fn create(username: &str) -> UserCommand {
        UserCommand::Create {
            id: 2,
            username: username.into(),
            email: "a@b.c".into(),
            password_hash: HASH.into(),
            is_superuser: false,
            is_staff: false,
        }
    }

    fn by(actor: Actor) -> UserContext {
        UserContext {
            actor,
            username_taken: false,
            set_readable: true,
        }
    }

    fn alice() -> User {
        let created = decide(None, &create("alice"), &by(Actor::SYSTEM)).unwrap();
        evolve(None, &created[0]).unwrap()
    }

    #[test]
    fn owners_create_and_revoke_their_tokens_and_only_theirs() {
        let user = alice();
        let token = uuid::Uuid::from_u128(7);
        let create = UserCommand::CreateToken {
            token,
            name: " laptop ".into(),
            token_hash: "ab".repeat(32),
        };
        // Nobody makes tokens for someone else, not even a superuser.
        assert!(matches!(
            decide(Some(&user), &create, &by(Actor::SYSTEM)),
            Err(DomainError::Forbidden(_))
        ));
        let events = decide(Some(&user), &create, &by(Actor::user(2))).unwrap();
        assert!(
            matches!(&events[0], UserEvent::AccessTokenCreated { name, .. } if name == "laptop")
        );
        let user = evolve(Some(user), &events[0]).unwrap();
        assert!(user.tokens.contains(&token));
        assert!(matches!(
            decide(Some(&user), &create, &by(Actor::user(2))),
            Err(DomainError::AlreadyExists(_))
        ));
        for bad in [
            UserCommand::CreateToken {
                token: uuid::Uuid::from_u128(8),
                name: " ".into(),
                token_hash: "ab".repeat(32),
            },
            UserCommand::CreateToken {
                token: uuid::Uuid::from_u128(8),
                name: "ok".into(),
                token_hash: "the token itself".into(),
            },
        ] {
            assert!(matches!(
                decide(Some(&user), &bad, &by(Actor::user(2))),
                Err(DomainError::Invalid { .. })
            ));
        }
        let revoke = UserCommand::RevokeToken { token };
        assert!(matches!(
            decide(Some(&user), &revoke, &by(Actor::user(3))),
            Err(DomainError::Forbidden(_))
        ));
        let events = decide(Some(&user), &revoke, &by(Actor::user(2))).unwrap();
        let user = evolve(Some(user), &events[0]).unwrap();
        assert!(user.tokens.is_empty());
        assert!(matches!(
            decide(Some(&user), &revoke, &by(Actor::SYSTEM)),
            Err(DomainError::NotFound(_))
        ));
    }

    #[test]
    fn users_pin_sets_they_read_for_themselves_only_and_twice_is_once() {
        let user = alice();
        let pin = UserCommand::Pin {
            image_set: 5,
            pinned: true,
        };
        assert!(matches!(
            decide(Some(&user), &pin, &by(Actor::SYSTEM)),
            Err(DomainError::Forbidden(_))
        ));
        let unreadable = UserContext {
            set_readable: false,
            ..by(Actor::user(2))
        };
        assert_eq!(
            decide(Some(&user), &pin, &unreadable),
            Err(DomainError::NotFound("image set"))
        );
        let events = decide(Some(&user), &pin, &by(Actor::user(2))).unwrap();
        let user = evolve(Some(user), &events[0]).unwrap();
        assert!(user.pinned_sets.contains(&5));
        assert!(decide(Some(&user), &pin, &by(Actor::user(2)))
            .unwrap()
            .is_empty());
        // Unpinning a set one no longer reads is allowed: it only tidies one's own page.
        let unpin = UserCommand::Pin {
            image_set: 5,
            pinned: false,
        };
        // One that was never on the page is not there at all.
        let never_pinned = UserCommand::Pin {
            image_set: 6,
            pinned: false,
        };
        assert_eq!(
            decide(Some(&user), &never_pinned, &unreadable),
            Err(DomainError::NotFound("image set"))
        );
        let events = decide(Some(&user), &unpin, &unreadable).unwrap();
        assert!(matches!(
            events[0],
            UserEvent::ImageSetUnpinned { image_set: 5, .. }
        ));
        let user = evolve(Some(user), &events[0]).unwrap();
        assert!(user.pinned_sets.is_empty());
    }

    #[test]
    fn a_superuser_creates_an_active_account() {
        let user = alice();
        assert!(user.is_active);
        assert_eq!(user.username, "alice");
        assert_eq!(user.password_hash, HASH);
    }

    #[test]
    fn creation_refuses_bad_names_taken_names_plain_passwords_and_non_superusers() {
        let admin = by(Actor::SYSTEM);
        for name in ["", "has space", "semi;colon", &"x".repeat(151)] {
            assert!(
                matches!(
                    decide(None, &create(name), &admin),
                    Err(DomainError::Invalid {
                        field: "username",
                        ..
                    })
                ),
                "{name:?}"
            );
        }
        let taken = UserContext {
            username_taken: true,
            ..admin
        };
        assert!(matches!(
            decide(None, &create("alice"), &taken),
            Err(DomainError::Taken { .. })
        ));
        let mut plain = create("alice");
        if let UserCommand::Create { password_hash, .. } = &mut plain {
            *password_hash = "hunter2".into();
        }
        assert!(matches!(
            decide(None, &plain, &admin),
            Err(DomainError::Invalid {
                field: "password",
                ..
            })
        ));
        assert_eq!(
            decide(None, &create("alice"), &by(Actor::user(5))),
            Err(DomainError::Forbidden("create accounts"))
        );
        assert_eq!(
            decide(Some(&alice()), &create("alice"), &admin),
            Err(DomainError::AlreadyExists("user"))
        );
    }

    #[test]
    fn users_change_their_own_password_and_superusers_anyones() {
        let user = alice();
        let change = UserCommand::ChangePassword {
            password_hash: format!("{HASH}2"),
        };
        assert_eq!(
            decide(Some(&user), &change, &by(Actor::user(2)))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            decide(Some(&user), &change, &by(Actor::SYSTEM))
                .unwrap()
                .len(),
            1
        );
        assert!(matches!(
            decide(Some(&user), &change, &by(Actor::user(3))),
            Err(DomainError::Forbidden(_))
        ));
    }

    #[test]
    fn deactivation_is_for_superusers_never_of_oneself_and_idempotent() {
        let user = alice();
        let root = Actor {
            id: 1,
            superuser: true,
            staff: true,
        };
        let off = decide(Some(&user), &UserCommand::SetActive(false), &by(root)).unwrap();
        assert_eq!(off, vec![UserEvent::UserDeactivated { id: 2 }]);
        let inactive = evolve(Some(user.clone()), &off[0]).unwrap();
        assert!(!inactive.is_active);
        assert!(
            decide(Some(&inactive), &UserCommand::SetActive(false), &by(root))
                .unwrap()
                .is_empty()
        );
        assert!(decide(
            Some(&user),
            &UserCommand::SetActive(false),
            &by(Actor::user(2))
        )
        .is_err());
        let self_root = Actor { id: 2, ..root };
        assert!(decide(Some(&user), &UserCommand::SetActive(false), &by(self_root)).is_err());
    }

    #[test]
    fn events_round_trip_through_the_logs_form() {
        let event = UserEvent::UserRolesChanged {
            id: 2,
            is_superuser: true,
            is_staff: false,
        };
        let (name, payload) = event.to_parts();
        assert_eq!(name, "UserRolesChanged");
        assert_eq!(
            UserEvent::from_parts(&name, payload).unwrap().unwrap(),
            event
        );
    }
}
