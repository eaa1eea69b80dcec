//! The image set aggregate: one stream per set, `image_set-{id}`.
//!
//! A set belongs to a team until it is set free (by an admin, or because its team dissolved):
//! then it belongs to no team, is public and its images are locked. Its name is unique within
//! its team.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{allow, name_in, DomainError};
use crate::event::{Actor, DomainEvent, TeamRole};
use crate::permissions::{Permission, Permissions};

pub fn stream(id: i64) -> String {
    format!("image_set-{id}")
}

/// EXACT's `collaboration_type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub enum CollaborationType {
    /// Everyone sees everyone's annotations.
    #[default]
    Collaborative = 0,
    /// Each user sees only their own.
    Competitive = 1,
    /// Kept for EXACT's API; it has no behaviour there either.
    SecondOpinion = 2,
}

impl TryFrom<i64> for CollaborationType {
    type Error = String;
    fn try_from(code: i64) -> Result<Self, String> {
        match code {
            0 => Ok(Self::Collaborative),
            1 => Ok(Self::Competitive),
            2 => Ok(Self::SecondOpinion),
            _ => Err(format!("must be 0, 1 or 2, not {code}")),
        }
    }
}

impl From<CollaborationType> for i64 {
    fn from(c: CollaborationType) -> i64 {
        c as i64
    }
}

/// What describes a set, as EXACT's `ImageSet` fields.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SetSettings {
    pub name: String,
    pub location: String,
    pub description: String,
    pub public: bool,
    pub public_collaboration: bool,
    pub image_lock: bool,
    /// 1 high, 0 normal, -1 low.
    pub priority: i64,
    pub collaboration_type: CollaborationType,
    pub main_annotation_type: Option<i64>,
    pub tags: BTreeSet<String>,
    /// Clinical mode: a verdict is an electronic signature (password re-entered, name, time
    /// and meaning recorded), and changing or deleting an annotation with a verdict needs a
    /// reason. Not EXACT's; absent from the events of sets that never had it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub clinical: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum ImageSetEvent {
    ImageSetCreated {
        id: i64,
        team: i64,
        creator: i64,
        #[serde(flatten)]
        settings: SetSettings,
    },
    /// The settings after the change, in full.
    ImageSetChanged {
        id: i64,
        #[serde(flatten)]
        settings: SetSettings,
    },
    /// The set belongs to no team any more; it is public and its images are locked.
    ImageSetFreed {
        id: i64,
        public_collaboration: bool,
    },
    ImageSetDeleted {
        id: i64,
    },
}

impl DomainEvent for ImageSetEvent {
    const NAMES: &'static [&'static str] = &[
        "ImageSetCreated",
        "ImageSetChanged",
        "ImageSetFreed",
        "ImageSetDeleted",
    ];
}

#[derive(Clone, Debug, PartialEq)]
pub struct ImageSet {
    pub id: i64,
    /// `None` once set free.
    pub team: Option<i64>,
    pub creator: i64,
    pub settings: SetSettings,
    pub deleted: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ImageSetCommand {
    Create {
        id: i64,
        team: i64,
        settings: SetSettings,
    },
    Change(SetSettings),
    /// EXACT's "set free": no team, public, public collaboration, images locked.
    Free,
    /// What a dissolved team leaves behind: public and locked, collaboration as it was.
    Orphan,
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageSetContext {
    pub actor: Actor,
    /// The actor's role in the team a `Create` names.
    pub team_role: TeamRole,
    /// The actor's permissions on this set (for every command but `Create`).
    pub permissions: Permissions,
    /// Another set of the team has this name.
    pub name_taken: bool,
    /// The `main_annotation_type` asked for is offered by a product linked to the set.
    pub main_type_offered: bool,
}

pub const NAME_LENGTH: (usize, usize) = (1, 100);

pub fn decide(
    state: Option<&ImageSet>,
    command: &ImageSetCommand,
    context: &ImageSetContext,
) -> Result<Vec<ImageSetEvent>, DomainError> {
    if let ImageSetCommand::Create { id, team, settings } = command {
        if state.is_some() {
            return Err(DomainError::AlreadyExists("image set"));
        }
        allow(
            context.actor.superuser || context.team_role.is_member(),
            "create image sets in this team",
        )?;
        return Ok(vec![ImageSetEvent::ImageSetCreated {
            id: *id,
            team: *team,
            creator: context.actor.id,
            settings: checked(settings, context)?,
        }]);
    }
    let set = state.ok_or(DomainError::NotFound("image set"))?;
    if set.deleted {
        return Err(DomainError::Deleted("image set"));
    }
    let id = set.id;
    let require = |permission: Permission| {
        if context.permissions.contains(permission) {
            Ok(())
        } else {
            Err(DomainError::ForbiddenInSet(permission))
        }
    };
    match command {
        ImageSetCommand::Create { .. } => unreachable!("handled above"),
        ImageSetCommand::Change(settings) => {
            require(Permission::EditSet)?;
            // Clinical mode guards the audit trail of everyone's work in the set: only those
            // who may delete the set (its team's admins, its creator) switch it.
            if settings.clinical != set.settings.clinical {
                allow(
                    context.permissions.contains(Permission::DeleteSet),
                    "switch clinical mode: that is for the team's admins and the set's creator",
                )?;
            }
            let renamed = settings.name.trim() != set.settings.name;
            let context = ImageSetContext {
                name_taken: context.name_taken && renamed,
                main_type_offered: context.main_type_offered
                    || settings.main_annotation_type == set.settings.main_annotation_type,
                ..*context
            };
            let settings = checked(settings, &context)?;
            Ok(if settings == set.settings {
                vec![]
            } else {
                vec![ImageSetEvent::ImageSetChanged { id, settings }]
            })
        }
        ImageSetCommand::Free | ImageSetCommand::Orphan => {
            if *command == ImageSetCommand::Free {
                require(Permission::DeleteSet)?;
            } else {
                allow(
                    context.actor.superuser,
                    "orphan a set: its team must dissolve",
                )?;
            }
            let public_collaboration =
                *command == ImageSetCommand::Free || set.settings.public_collaboration;
            let s = &set.settings;
            if set.team.is_none()
                && s.public
                && s.image_lock
                && s.public_collaboration == public_collaboration
            {
                return Ok(vec![]);
            }
            Ok(vec![ImageSetEvent::ImageSetFreed {
                id,
                public_collaboration,
            }])
        }
        ImageSetCommand::Delete => {
            require(Permission::DeleteSet)?;
            Ok(vec![ImageSetEvent::ImageSetDeleted { id }])
        }
    }
}

fn checked(settings: &SetSettings, context: &ImageSetContext) -> Result<SetSettings, DomainError> {
    let name = name_in("name", &settings.name, NAME_LENGTH.0, NAME_LENGTH.1)?;
    if context.name_taken {
        return Err(DomainError::Taken {
            field: "name",
            value: name,
        });
    }
    if !(-1..=1).contains(&settings.priority) {
        return Err(DomainError::invalid("priority", "must be -1, 0 or 1"));
    }
    if settings.main_annotation_type.is_some() && !context.main_type_offered {
        return Err(DomainError::invalid(
            "main_annotation_type",
            "is not offered by a product linked to this set",
        ));
    }
    let mut tags = BTreeSet::new();
    for tag in &settings.tags {
        tags.insert(name_in("tags", tag, 1, 100)?);
    }
    Ok(SetSettings {
        name,
        tags,
        ..settings.clone()
    })
}

pub fn evolve(state: Option<ImageSet>, event: &ImageSetEvent) -> Option<ImageSet> {
    match (state, event) {
        (
            _,
            ImageSetEvent::ImageSetCreated {
                id,
                team,
                creator,
                settings,
            },
        ) => Some(ImageSet {
            id: *id,
            team: Some(*team),
            creator: *creator,
            settings: settings.clone(),
            deleted: false,
        }),
        (Some(mut s), ImageSetEvent::ImageSetChanged { settings, .. }) => {
            s.settings = settings.clone();
            Some(s)
        }
        (
            Some(mut s),
            ImageSetEvent::ImageSetFreed {
                public_collaboration,
                ..
            },
        ) => {
            s.team = None;
            s.settings.public = true;
            s.settings.image_lock = true;
            s.settings.public_collaboration = *public_collaboration;
            Some(s)
        }
        (Some(mut s), ImageSetEvent::ImageSetDeleted { .. }) => {
            s.deleted = true;
            Some(s)
        }
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{image_set_permissions, SetFlags, Standing};

    fn context(standing: Standing) -> ImageSetContext {
        ImageSetContext {
            actor: Actor::user(1),
            team_role: TeamRole::Member,
            permissions: image_set_permissions(standing, SetFlags::default()),
            name_taken: false,
            main_type_offered: false,
        }
    }

    fn member() -> ImageSetContext {
        context(Standing {
            member: true,
            ..Standing::default()
        })
    }

    fn admin() -> ImageSetContext {
        context(Standing {
            member: true,
            team_admin: true,
            ..Standing::default()
        })
    }

    fn set() -> ImageSet {
        let create = ImageSetCommand::Create {
            id: 6,
            team: 2,
            settings: SetSettings {
                name: " Slides 2024 ".into(),
                tags: BTreeSet::from([" mitosis ".to_owned()]),
                ..SetSettings::default()
            },
        };
        let events = decide(None, &create, &member()).unwrap();
        events.iter().fold(None, evolve).unwrap()
    }

    #[test]
    fn members_create_sets_with_trimmed_names_and_tags() {
        let s = set();
        assert_eq!(s.settings.name, "Slides 2024");
        assert_eq!(s.settings.tags, BTreeSet::from(["mitosis".to_owned()]));
        assert_eq!(s.team, Some(2));
        let outsider = ImageSetContext {
            team_role: TeamRole::None,
            ..member()
        };
        let create = ImageSetCommand::Create {
            id: 7,
            team: 2,
            settings: SetSettings {
                name: "x".into(),
                ..SetSettings::default()
            },
        };
        assert!(matches!(
            decide(None, &create, &outsider),
            Err(DomainError::Forbidden(_))
        ));
    }

    #[test]
    fn changes_check_priority_names_and_the_main_type() {
        let s = set();
        let change = |f: fn(&mut SetSettings)| {
            let mut settings = s.settings.clone();
            f(&mut settings);
            ImageSetCommand::Change(settings)
        };
        assert!(decide(Some(&s), &change(|x| x.priority = 2), &member()).is_err());
        assert!(decide(
            Some(&s),
            &change(|x| x.main_annotation_type = Some(3)),
            &member()
        )
        .is_err());
        let offered = ImageSetContext {
            main_type_offered: true,
            ..member()
        };
        assert_eq!(
            decide(
                Some(&s),
                &change(|x| x.main_annotation_type = Some(3)),
                &offered
            )
            .unwrap()
            .len(),
            1
        );
        // Keeping its own name is no clash; taking a taken one is.
        let taken = ImageSetContext {
            name_taken: true,
            ..member()
        };
        assert_eq!(
            decide(Some(&s), &change(|x| x.public = true), &taken)
                .unwrap()
                .len(),
            1
        );
        assert!(matches!(
            decide(Some(&s), &change(|x| x.name = "Other".into()), &taken),
            Err(DomainError::Taken { .. })
        ));
        assert!(decide(Some(&s), &change(|_| {}), &member())
            .unwrap()
            .is_empty());
    }

    #[test]
    fn clinical_mode_is_switched_by_admins_only_and_kept_out_of_payloads_without_it() {
        let s = set();
        let clinical = SetSettings {
            clinical: true,
            ..s.settings.clone()
        };
        assert!(matches!(
            decide(
                Some(&s),
                &ImageSetCommand::Change(clinical.clone()),
                &member()
            ),
            Err(DomainError::Forbidden(_))
        ));
        let events = decide(Some(&s), &ImageSetCommand::Change(clinical), &admin()).unwrap();
        let (_, payload) = events[0].to_parts();
        assert_eq!(payload["clinical"], true);
        let on = events.iter().fold(Some(s.clone()), evolve).unwrap();
        assert!(on.settings.clinical);
        // Members still change the rest of a clinical set's settings.
        let described = SetSettings {
            description: "Biopsies".into(),
            ..on.settings.clone()
        };
        assert_eq!(
            decide(Some(&on), &ImageSetCommand::Change(described), &member())
                .unwrap()
                .len(),
            1
        );
        // A set that never had it writes no `clinical` at all: old logs and new ones agree.
        let events = decide(
            Some(&s),
            &ImageSetCommand::Change(SetSettings {
                description: "x".into(),
                ..s.settings.clone()
            }),
            &member(),
        )
        .unwrap();
        assert!(events[0].to_parts().1.get("clinical").is_none());
    }

    #[test]
    fn only_admins_and_creators_free_or_delete_and_orphaning_is_for_the_system() {
        let s = set();
        assert_eq!(
            decide(Some(&s), &ImageSetCommand::Free, &member()),
            Err(DomainError::ForbiddenInSet(Permission::DeleteSet))
        );
        let events = decide(Some(&s), &ImageSetCommand::Free, &admin()).unwrap();
        let freed = events.iter().fold(Some(s.clone()), evolve).unwrap();
        assert_eq!(freed.team, None);
        assert!(
            freed.settings.public
                && freed.settings.image_lock
                && freed.settings.public_collaboration
        );
        assert!(decide(Some(&s), &ImageSetCommand::Orphan, &admin()).is_err());
        let system = ImageSetContext {
            actor: Actor::SYSTEM,
            ..admin()
        };
        let events = decide(Some(&s), &ImageSetCommand::Orphan, &system).unwrap();
        let orphan = events.iter().fold(Some(s.clone()), evolve).unwrap();
        assert!(orphan.settings.public && !orphan.settings.public_collaboration);
        let deleted = decide(Some(&s), &ImageSetCommand::Delete, &admin()).unwrap();
        let gone = deleted.iter().fold(Some(s), evolve).unwrap();
        assert_eq!(
            decide(Some(&gone), &ImageSetCommand::Delete, &admin()),
            Err(DomainError::Deleted("image set"))
        );
    }
}
