//! The team aggregate: one stream per team, `team-{id}`.
//!
//! As EXACT: the creator becomes the first admin; admins add and remove members and grant or
//! revoke admin; any member may grant admin while the team has none. When the last member
//! leaves, the team is dissolved; the command handler then frees its image sets (public and
//! locked) in the same append, with [`crate::image_set`]'s `ImageSetFreed`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{allow, name_in, DomainError};
use crate::event::{Actor, DomainEvent};

pub fn stream(id: i64) -> String {
    format!("team-{id}")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum TeamEvent {
    /// The creator is its first member and admin.
    TeamCreated {
        id: i64,
        name: String,
        website: String,
        creator: i64,
    },
    TeamMemberAdded {
        id: i64,
        user: i64,
    },
    /// Removed by an admin.
    TeamMemberRemoved {
        id: i64,
        user: i64,
    },
    /// Left of their own accord.
    TeamMemberLeft {
        id: i64,
        user: i64,
    },
    TeamAdminGranted {
        id: i64,
        user: i64,
    },
    TeamAdminRevoked {
        id: i64,
        user: i64,
    },
    /// Its name or website corrected by an admin; both as they are after the change.
    TeamChanged {
        id: i64,
        name: String,
        website: String,
    },
    /// The last member left, or an admin deleted the team: it has no members any more.
    TeamDissolved {
        id: i64,
    },
}

impl DomainEvent for TeamEvent {
    const NAMES: &'static [&'static str] = &[
        "TeamCreated",
        "TeamMemberAdded",
        "TeamChanged",
        "TeamMemberRemoved",
        "TeamMemberLeft",
        "TeamAdminGranted",
        "TeamAdminRevoked",
        "TeamDissolved",
    ];
}

#[derive(Clone, Debug, PartialEq)]
pub struct Team {
    pub id: i64,
    pub name: String,
    pub website: String,
    /// Member id → is admin.
    pub members: BTreeMap<i64, bool>,
    pub dissolved: bool,
}

impl Team {
    pub fn is_admin(&self, user: i64) -> bool {
        self.members.get(&user) == Some(&true)
    }

    pub fn has_admin(&self) -> bool {
        self.members.values().any(|admin| *admin)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum TeamCommand {
    Create {
        id: i64,
        name: String,
        website: String,
    },
    AddMember {
        user: i64,
    },
    RemoveMember {
        user: i64,
    },
    Leave,
    GrantAdmin {
        user: i64,
    },
    RevokeAdmin {
        user: i64,
    },
    /// EXACT's team update: the name and website (`None` keeps one as it is).
    Change {
        name: Option<String>,
        website: Option<String>,
    },
    /// EXACT's team delete: the team ends with its members in it, as when the last one
    /// leaves.
    Dissolve,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TeamContext {
    pub actor: Actor,
    /// Another team has this name.
    pub name_taken: bool,
    /// The user a membership command names exists and is active.
    pub target_active: bool,
}

pub const NAME_LENGTH: (usize, usize) = (3, 30);

pub fn decide(
    state: Option<&Team>,
    command: &TeamCommand,
    context: &TeamContext,
) -> Result<Vec<TeamEvent>, DomainError> {
    let actor = context.actor;
    if let TeamCommand::Create { id, name, website } = command {
        if state.is_some() {
            return Err(DomainError::AlreadyExists("team"));
        }
        let name = name_in("name", name, NAME_LENGTH.0, NAME_LENGTH.1)?;
        if context.name_taken {
            return Err(DomainError::Taken {
                field: "name",
                value: name,
            });
        }
        check_website(website)?;
        return Ok(vec![TeamEvent::TeamCreated {
            id: *id,
            name,
            website: website.trim().to_owned(),
            creator: actor.id,
        }]);
    }
    let team = state.ok_or(DomainError::NotFound("team"))?;
    if team.dissolved {
        return Err(DomainError::Deleted("team"));
    }
    let id = team.id;
    let manages = actor.superuser || team.is_admin(actor.id);
    let member = |user: i64| -> Result<(), DomainError> {
        if team.members.contains_key(&user) {
            Ok(())
        } else {
            Err(DomainError::NotFound("team member"))
        }
    };
    match command {
        TeamCommand::Create { .. } => unreachable!("handled above"),
        TeamCommand::AddMember { user } => {
            allow(manages, "add members to this team")?;
            if !context.target_active {
                return Err(DomainError::NotFound("active user"));
            }
            Ok(if team.members.contains_key(user) {
                vec![]
            } else {
                vec![TeamEvent::TeamMemberAdded { id, user: *user }]
            })
        }
        TeamCommand::RemoveMember { user } => {
            allow(manages, "remove members from this team")?;
            member(*user)?;
            allow(*user != actor.id, "remove yourself: leave the team instead")?;
            Ok(vec![TeamEvent::TeamMemberRemoved { id, user: *user }])
        }
        TeamCommand::Leave => {
            member(actor.id)?;
            let mut events = vec![TeamEvent::TeamMemberLeft { id, user: actor.id }];
            if team.members.len() == 1 {
                events.push(TeamEvent::TeamDissolved { id });
            }
            Ok(events)
        }
        TeamCommand::Change { name, website } => {
            allow(manages, "change this team")?;
            let name = match name {
                Some(n) => name_in("name", n, NAME_LENGTH.0, NAME_LENGTH.1)?,
                None => team.name.clone(),
            };
            if name != team.name && context.name_taken {
                return Err(DomainError::Taken {
                    field: "name",
                    value: name,
                });
            }
            let website = match website {
                Some(w) => check_website(w)?,
                None => team.website.clone(),
            };
            Ok(if (&name, &website) == (&team.name, &team.website) {
                vec![]
            } else {
                vec![TeamEvent::TeamChanged { id, name, website }]
            })
        }
        TeamCommand::Dissolve => {
            allow(manages, "delete this team")?;
            Ok(vec![TeamEvent::TeamDissolved { id }])
        }
        TeamCommand::GrantAdmin { user } => {
            // A team without admins would be stuck: then any member may grant it.
            let orphaned = !team.has_admin() && team.members.contains_key(&actor.id);
            allow(manages || orphaned, "grant admin in this team")?;
            member(*user)?;
            Ok(if team.is_admin(*user) {
                vec![]
            } else {
                vec![TeamEvent::TeamAdminGranted { id, user: *user }]
            })
        }
        TeamCommand::RevokeAdmin { user } => {
            allow(manages, "revoke admin in this team")?;
            member(*user)?;
            Ok(if team.is_admin(*user) {
                vec![TeamEvent::TeamAdminRevoked { id, user: *user }]
            } else {
                vec![]
            })
        }
    }
}

fn check_website(website: &str) -> Result<String, DomainError> {
    if website.chars().count() > 100 {
        return Err(DomainError::invalid(
            "website",
            "is longer than 100 characters",
        ));
    }
    Ok(website.trim().to_owned())
}

pub fn evolve(state: Option<Team>, event: &TeamEvent) -> Option<Team> {
    match (state, event) {
        (
            _,
            TeamEvent::TeamCreated {
                id,
                name,
                website,
                creator,
            },
        ) => Some(Team {
            id: *id,
            name: name.clone(),
            website: website.clone(),
            members: BTreeMap::from([(*creator, true)]),
            dissolved: false,
        }),
        (Some(mut t), TeamEvent::TeamChanged { name, website, .. }) => {
            t.name.clone_from(name);
            t.website.clone_from(website);
            Some(t)
        }
        (Some(mut t), TeamEvent::TeamMemberAdded { user, .. }) => {
            t.members.insert(*user, false);
            Some(t)
        }
        (
            Some(mut t),
            TeamEvent::TeamMemberRemoved { user, .. } | TeamEvent::TeamMemberLeft { user, .. },
        ) => {
            t.members.remove(user);
            Some(t)
        }
        (Some(mut t), TeamEvent::TeamAdminGranted { user, .. }) => {
            t.members.insert(*user, true);
            Some(t)
        }
        (Some(mut t), TeamEvent::TeamAdminRevoked { user, .. }) => {
            t.members.insert(*user, false);
            Some(t)
        }
        (Some(mut t), TeamEvent::TeamDissolved { .. }) => {
            t.dissolved = true;
            t.members.clear();
            Some(t)
        }
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CREATOR: i64 = 1;
    const BOB: i64 = 2;
    const CAROL: i64 = 3;

    fn by(id: i64) -> TeamContext {
        TeamContext {
            actor: Actor::user(id),
            name_taken: false,
            target_active: true,
        }
    }

    fn create(name: &str) -> TeamCommand {
        TeamCommand::Create {
            id: 9,
            name: name.into(),
            website: String::new(),
        }
    }

    fn run(state: Option<Team>, command: &TeamCommand, actor: i64) -> Option<Team> {
        let events = decide(state.as_ref(), command, &by(actor)).unwrap();
        events.iter().fold(state, evolve)
    }

    /// A team of the creator (admin) and Bob (member).
    fn team() -> Team {
        let t = run(None, &create("Pathology"), CREATOR);
        run(t, &TeamCommand::AddMember { user: BOB }, CREATOR).unwrap()
    }

    #[test]
    fn the_creator_is_the_first_admin() {
        let t = run(None, &create("  Pathology "), CREATOR).unwrap();
        assert_eq!(t.name, "Pathology");
        assert_eq!(t.members, BTreeMap::from([(CREATOR, true)]));
    }

    #[test]
    fn names_are_3_to_30_characters_and_unique() {
        for bad in ["ab", "  ab  ", &"x".repeat(31)] {
            assert!(matches!(
                decide(None, &create(bad), &by(CREATOR)),
                Err(DomainError::Invalid { field: "name", .. })
            ));
        }
        let taken = TeamContext {
            name_taken: true,
            ..by(CREATOR)
        };
        assert!(matches!(
            decide(None, &create("Pathology"), &taken),
            Err(DomainError::Taken { .. })
        ));
    }

    #[test]
    fn only_admins_manage_members() {
        let t = team();
        let add_carol = TeamCommand::AddMember { user: CAROL };
        assert!(matches!(
            decide(Some(&t), &add_carol, &by(BOB)),
            Err(DomainError::Forbidden(_))
        ));
        assert!(decide(
            Some(&t),
            &TeamCommand::RemoveMember { user: CREATOR },
            &by(BOB)
        )
        .is_err());
        assert_eq!(
            decide(
                Some(&t),
                &TeamCommand::RemoveMember { user: BOB },
                &by(CREATOR)
            )
            .unwrap(),
            vec![TeamEvent::TeamMemberRemoved { id: 9, user: BOB }]
        );
        let inactive = TeamContext {
            target_active: false,
            ..by(CREATOR)
        };
        assert_eq!(
            decide(Some(&t), &add_carol, &inactive),
            Err(DomainError::NotFound("active user"))
        );
        // Adding a member twice is nothing to do.
        assert!(decide(
            Some(&t),
            &TeamCommand::AddMember { user: BOB },
            &by(CREATOR)
        )
        .unwrap()
        .is_empty());
    }

    #[test]
    fn any_member_may_grant_admin_while_the_team_has_none() {
        let t = run(
            Some(team()),
            &TeamCommand::RevokeAdmin { user: CREATOR },
            CREATOR,
        )
        .unwrap();
        assert!(!t.has_admin());
        let t = run(Some(t), &TeamCommand::GrantAdmin { user: BOB }, BOB).unwrap();
        assert!(t.is_admin(BOB));
        // Now there is one: the creator, a plain member again, may not.
        assert!(decide(
            Some(&t),
            &TeamCommand::GrantAdmin { user: CREATOR },
            &by(CREATOR)
        )
        .is_err());
    }

    #[test]
    fn the_last_member_leaving_dissolves_the_team() {
        let t = run(Some(team()), &TeamCommand::Leave, CREATOR).unwrap();
        assert!(!t.dissolved);
        let events = decide(Some(&t), &TeamCommand::Leave, &by(BOB)).unwrap();
        assert_eq!(
            events,
            vec![
                TeamEvent::TeamMemberLeft { id: 9, user: BOB },
                TeamEvent::TeamDissolved { id: 9 }
            ]
        );
        let gone = events.iter().fold(Some(t), evolve).unwrap();
        assert!(gone.dissolved && gone.members.is_empty());
        assert_eq!(
            decide(
                Some(&gone),
                &TeamCommand::AddMember { user: BOB },
                &by(CREATOR)
            ),
            Err(DomainError::Deleted("team"))
        );
        assert_eq!(
            decide(Some(&team()), &TeamCommand::Leave, &by(CAROL)),
            Err(DomainError::NotFound("team member"))
        );
    }

    fn command() -> impl Strategy<Value = (TeamCommand, i64)> {
        let user = 1..5i64;
        (
            prop_oneof![
                user.clone()
                    .prop_map(|user| TeamCommand::AddMember { user }),
                user.clone()
                    .prop_map(|user| TeamCommand::RemoveMember { user }),
                Just(TeamCommand::Leave),
                user.clone()
                    .prop_map(|user| TeamCommand::GrantAdmin { user }),
                user.prop_map(|user| TeamCommand::RevokeAdmin { user }),
            ],
            1..5i64,
        )
    }

    proptest! {
        /// Whatever members do, a team is either dissolved and empty, or has members; and a
        /// team of members always has someone who can grant admin.
        #[test]
        fn no_command_sequence_yields_an_invalid_team(commands in prop::collection::vec(command(), 1..40)) {
            let mut state = run(None, &create("Pathology"), CREATOR);
            for (command, actor) in &commands {
                if let Ok(events) = decide(state.as_ref(), command, &by(*actor)) {
                    state = events.iter().fold(state, evolve);
                }
                let t = state.as_ref().unwrap();
                prop_assert_eq!(t.dissolved, t.members.is_empty());
                if !t.dissolved {
                    let someone = *t.members.keys().next().unwrap();
                    let granter = if t.has_admin() {
                        *t.members.iter().find(|(_, admin)| **admin).unwrap().0
                    } else {
                        someone
                    };
                    let grant = TeamCommand::GrantAdmin { user: someone };
                    prop_assert!(decide(Some(t), &grant, &by(granter)).is_ok());
                }
            }
        }
    }

    #[test]
    fn admins_dissolve_a_team_with_its_members_in_it() {
        assert!(matches!(
            decide(Some(&team()), &TeamCommand::Dissolve, &by(BOB)),
            Err(DomainError::Forbidden(_))
        ));
        let gone = run(Some(team()), &TeamCommand::Dissolve, CREATOR).unwrap();
        assert!(gone.dissolved && gone.members.is_empty());
        assert_eq!(
            decide(Some(&gone), &TeamCommand::Dissolve, &by(CREATOR)),
            Err(DomainError::Deleted("team"))
        );
        let superuser = TeamContext {
            actor: Actor::SYSTEM,
            ..by(0)
        };
        assert_eq!(
            decide(Some(&team()), &TeamCommand::Dissolve, &superuser).unwrap(),
            vec![TeamEvent::TeamDissolved { id: 9 }]
        );
    }

    #[test]
    fn admins_correct_the_name_and_website_and_taken_names_are_refused() {
        let change = |name: Option<&str>, website: Option<&str>| TeamCommand::Change {
            name: name.map(Into::into),
            website: website.map(Into::into),
        };
        assert!(matches!(
            decide(Some(&team()), &change(Some("Histology"), None), &by(BOB)),
            Err(DomainError::Forbidden(_))
        ));
        let renamed = run(Some(team()), &change(Some(" Histology "), None), CREATOR).unwrap();
        assert_eq!(
            (renamed.name.as_str(), renamed.website.as_str()),
            ("Histology", "")
        );
        assert!(decide(
            Some(&renamed),
            &change(Some("Histology"), Some("")),
            &by(CREATOR)
        )
        .unwrap()
        .is_empty());
        let taken = TeamContext {
            name_taken: true,
            ..by(CREATOR)
        };
        assert!(matches!(
            decide(Some(&renamed), &change(Some("Other"), None), &taken),
            Err(DomainError::Taken { .. })
        ));
        assert!(matches!(
            decide(Some(&renamed), &change(Some("ab"), None), &by(CREATOR)),
            Err(DomainError::Invalid { field: "name", .. })
        ));
    }
}
