//! Export formats (`export_format-{id}`) and dataset versions (`dataset_version-{id}`).
//!
//! An export format is a team's template set in EXACT's language; the store's default format
//! (`format=exact`, made on its first start) belongs to no team, so every user may export with
//! it and only superusers may change it. A dataset version names a
//! list of image sets as they stood at one position of the log: what EXACT's `SetVersion`
//! snapshotted by copying rows, the log gives for free, and exactly.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{allow, name_in, DomainError};
use crate::event::{Actor, DomainEvent, TeamRole};

pub fn stream(id: i64) -> String {
    format!("export_format-{id}")
}

pub fn dataset_version_stream(id: i64) -> String {
    format!("dataset_version-{id}")
}

/// The exports made of an image set, oldest first (EXACT lists a set's last exports).
pub fn set_exports_stream(image_set: i64) -> String {
    format!("image_set_exports-{image_set}")
}

/// EXACT's `ExportFormat` fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FormatSettings {
    pub name: String,
    pub public: bool,
    pub annotations_types: BTreeSet<i64>,
    pub base_format: String,
    pub image_format: String,
    pub annotation_format: String,
    pub vector_format: String,
    pub not_in_image_format: String,
    pub name_format: String,
    pub min_verifications: i64,
    pub image_aggregation: bool,
    pub include_blurred: bool,
    pub include_concealed: bool,
}

impl Default for FormatSettings {
    /// EXACT's defaults: one line per annotation that the label upload reads back.
    fn default() -> Self {
        Self {
            name: String::new(),
            public: false,
            annotations_types: BTreeSet::new(),
            base_format: "%%content".into(),
            image_format: String::new(),
            annotation_format: "%%imagename|%%type|{%%vector}|".into(),
            vector_format: "\"x%%count1\": %%x,\"y%%count1\": %%y,".into(),
            not_in_image_format: "%%imagename|%%type|not in image".into(),
            name_format: "export_%%exportid.txt".into(),
            min_verifications: 0,
            image_aggregation: false,
            include_blurred: true,
            include_concealed: true,
        }
    }
}

/// EXACT's limit on a format's name.
pub const NAME_LENGTH: (usize, usize) = (1, 20);

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum ExportFormatEvent {
    ExportFormatCreated {
        id: i64,
        /// None: the store's default format, of no team (absent from the payload).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        team: Option<i64>,
        creator: i64,
        #[serde(flatten)]
        settings: FormatSettings,
    },
    ExportFormatChanged {
        id: i64,
        #[serde(flatten)]
        settings: FormatSettings,
    },
    ExportFormatDeleted {
        id: i64,
    },
}

impl DomainEvent for ExportFormatEvent {
    const NAMES: &'static [&'static str] = &[
        "ExportFormatCreated",
        "ExportFormatChanged",
        "ExportFormatDeleted",
    ];
}

#[derive(Clone, Debug, PartialEq)]
pub struct ExportFormat {
    pub id: i64,
    pub team: Option<i64>,
    pub settings: FormatSettings,
    pub deleted: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExportFormatCommand {
    Create {
        id: i64,
        /// None: the store's default format, made by Exact itself on first start.
        team: Option<i64>,
        settings: FormatSettings,
    },
    Change(FormatSettings),
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ExportFormatContext {
    pub actor: Actor,
    /// The actor's role in the format's team (none for the default format, of no team).
    pub team_role: TeamRole,
    /// Another format has this name (names are global, as EXACT's).
    pub name_taken: bool,
    /// Every type in `annotations_types` belongs to a product of the team (the default
    /// format, of no team, names none).
    pub types_in_team: bool,
}

pub fn decide(
    state: Option<&ExportFormat>,
    command: &ExportFormatCommand,
    context: &ExportFormatContext,
) -> Result<Vec<ExportFormatEvent>, DomainError> {
    // EXACT's team permission `manage_export_formats`: every member has it. The default
    // format is every team's, so no team's members may change it alone: superusers do.
    allow(
        context.actor.superuser || context.team_role.is_member(),
        "manage this team's export formats",
    )?;
    match (state, command) {
        (None, ExportFormatCommand::Create { id, team, settings }) => {
            Ok(vec![ExportFormatEvent::ExportFormatCreated {
                id: *id,
                team: *team,
                creator: context.actor.id,
                settings: checked(settings, context)?,
            }])
        }
        (Some(_), ExportFormatCommand::Create { .. }) => {
            Err(DomainError::AlreadyExists("export format"))
        }
        (None, _) => Err(DomainError::NotFound("export format")),
        (Some(f), _) if f.deleted => Err(DomainError::Deleted("export format")),
        (Some(f), ExportFormatCommand::Change(settings)) => {
            let renamed = settings.name.trim() != f.settings.name;
            let context = ExportFormatContext {
                name_taken: context.name_taken && renamed,
                ..*context
            };
            let settings = checked(settings, &context)?;
            Ok(if settings == f.settings {
                vec![]
            } else {
                vec![ExportFormatEvent::ExportFormatChanged { id: f.id, settings }]
            })
        }
        (Some(f), ExportFormatCommand::Delete) => {
            Ok(vec![ExportFormatEvent::ExportFormatDeleted { id: f.id }])
        }
    }
}

fn checked(
    settings: &FormatSettings,
    context: &ExportFormatContext,
) -> Result<FormatSettings, DomainError> {
    let name = name_in("name", &settings.name, NAME_LENGTH.0, NAME_LENGTH.1)?;
    if context.name_taken {
        return Err(DomainError::Taken {
            field: "name",
            value: name,
        });
    }
    if !context.types_in_team {
        return Err(DomainError::invalid(
            "annotations_types",
            "every type must belong to a product of the format's team",
        ));
    }
    if settings.min_verifications < 0 {
        return Err(DomainError::invalid(
            "min_verifications",
            "must not be negative",
        ));
    }
    if settings.name_format.trim().is_empty() {
        return Err(DomainError::invalid("name_format", "must not be empty"));
    }
    Ok(FormatSettings {
        name,
        ..settings.clone()
    })
}

pub fn evolve(state: Option<ExportFormat>, event: &ExportFormatEvent) -> Option<ExportFormat> {
    match (state, event) {
        (
            _,
            ExportFormatEvent::ExportFormatCreated {
                id, team, settings, ..
            },
        ) => Some(ExportFormat {
            id: *id,
            team: *team,
            settings: settings.clone(),
            deleted: false,
        }),
        (Some(mut f), ExportFormatEvent::ExportFormatChanged { settings, .. }) => {
            f.settings = settings.clone();
            Some(f)
        }
        (Some(mut f), ExportFormatEvent::ExportFormatDeleted { .. }) => {
            f.deleted = true;
            Some(f)
        }
        (None, _) => None,
    }
}

/// An export of a set was made and handed out: what it was read at and with which format, so
/// that the set's page lists who exported what, and which exports a later change of their
/// format makes out of date. The exporting user is the envelope's actor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum SetExportEvent {
    SetExported {
        image_set: i64,
        /// As the export route reads it: `exact`, `exact:ID`, `coco`, ...
        format: String,
        /// A team format's name and stream version at the export.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format_name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        format_version: Option<i64>,
        /// The log position read and its chain hash (hex), as in the export's manifest.
        position: i64,
        chain_hash: String,
        annotations: u64,
    },
}

impl DomainEvent for SetExportEvent {
    const NAMES: &'static [&'static str] = &["SetExported"];
}

/// A named, immutable view of image sets at one log position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum DatasetVersionEvent {
    DatasetVersionCreated {
        id: i64,
        name: String,
        /// The log position the version is read at.
        position: i64,
        image_sets: BTreeSet<i64>,
        creator: i64,
    },
}

impl DomainEvent for DatasetVersionEvent {
    const NAMES: &'static [&'static str] = &["DatasetVersionCreated"];
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DatasetVersionContext {
    pub actor: Actor,
    pub name_taken: bool,
    /// The head of the log when the command is decided.
    pub head: i64,
    /// The actor may read every set named.
    pub sets_readable: bool,
}

/// Names `image_sets` as they stood at `position`; versions are never changed.
pub fn create_dataset_version(
    exists: bool,
    id: i64,
    name: &str,
    position: i64,
    image_sets: &BTreeSet<i64>,
    context: &DatasetVersionContext,
) -> Result<DatasetVersionEvent, DomainError> {
    if exists {
        return Err(DomainError::AlreadyExists("dataset version"));
    }
    let name = name_in("name", name, 1, 100)?;
    if context.name_taken {
        return Err(DomainError::Taken {
            field: "name",
            value: name,
        });
    }
    if !(1..=context.head).contains(&position) {
        return Err(DomainError::invalid(
            "position",
            format!("must be between 1 and the log's head, {}", context.head),
        ));
    }
    if image_sets.is_empty() {
        return Err(DomainError::invalid(
            "image_sets",
            "name at least one image set",
        ));
    }
    allow(context.sets_readable, "version image sets you cannot read")?;
    Ok(DatasetVersionEvent::DatasetVersionCreated {
        id,
        name,
        position,
        image_sets: image_sets.clone(),
        creator: context.actor.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> ExportFormatContext {
        ExportFormatContext {
            actor: Actor::user(1),
            team_role: TeamRole::Member,
            name_taken: false,
            types_in_team: true,
        }
    }

    fn settings(name: &str) -> FormatSettings {
        FormatSettings {
            name: name.into(),
            ..FormatSettings::default()
        }
    }

    #[test]
    fn members_create_formats_with_names_of_at_most_20_characters() {
        let create = |name: &str| ExportFormatCommand::Create {
            id: 1,
            team: Some(2),
            settings: settings(name),
        };
        let events = decide(None, &create("COCO-ish"), &member()).unwrap();
        let f = events.iter().fold(None, evolve).unwrap();
        assert_eq!(
            f.settings.annotation_format,
            "%%imagename|%%type|{%%vector}|"
        );
        assert!(decide(None, &create(&"x".repeat(21)), &member()).is_err());
        let outsider = ExportFormatContext {
            team_role: TeamRole::None,
            ..member()
        };
        assert!(matches!(
            decide(None, &create("a"), &outsider),
            Err(DomainError::Forbidden(_))
        ));
        let foreign_types = ExportFormatContext {
            types_in_team: false,
            ..member()
        };
        assert!(decide(None, &create("a"), &foreign_types).is_err());
    }

    #[test]
    fn the_default_format_is_no_teams_and_only_superusers_change_it() {
        let create = ExportFormatCommand::Create {
            id: 1,
            team: None,
            settings: settings("EXACT default"),
        };
        let system = ExportFormatContext {
            actor: Actor::SYSTEM,
            team_role: TeamRole::None,
            ..member()
        };
        let events = decide(None, &create, &system).unwrap();
        // Its payload names no team; a team format's payload, as stored before, still reads.
        let payload = serde_json::to_value(&events[0]).unwrap();
        assert!(payload["payload"].get("team").is_none(), "{payload}");
        let state = events.iter().fold(None, evolve);
        assert_eq!(state.as_ref().unwrap().team, None);
        let old: ExportFormatEvent = serde_json::from_value(serde_json::json!({
            "type": "ExportFormatCreated",
            "payload": {"id": 2, "team": 7, "creator": 1, "name": "old", "public": false,
                "annotations_types": [], "base_format": "%%content", "image_format": "",
                "annotation_format": "", "vector_format": "", "not_in_image_format": "",
                "name_format": "x", "min_verifications": 0, "image_aggregation": false,
                "include_blurred": true, "include_concealed": true}
        }))
        .unwrap();
        assert_eq!(
            evolve(None, &old).unwrap().team,
            Some(7),
            "a stored team format keeps its team"
        );

        let change = ExportFormatCommand::Change(FormatSettings {
            base_format: "%%content\n".into(),
            ..settings("EXACT default")
        });
        // A member of some team is no member of the default format's (it has none).
        let someone = ExportFormatContext {
            team_role: TeamRole::None,
            ..member()
        };
        assert!(matches!(
            decide(state.as_ref(), &change, &someone),
            Err(DomainError::Forbidden(_))
        ));
        let superuser = ExportFormatContext {
            actor: Actor {
                superuser: true,
                ..Actor::user(5)
            },
            ..someone
        };
        assert_eq!(
            decide(state.as_ref(), &change, &superuser).unwrap().len(),
            1
        );
    }

    #[test]
    fn a_deleted_format_takes_no_more_commands() {
        let create = ExportFormatCommand::Create {
            id: 1,
            team: Some(2),
            settings: settings("a"),
        };
        let mut state = decide(None, &create, &member())
            .unwrap()
            .iter()
            .fold(None, evolve);
        let deleted = decide(state.as_ref(), &ExportFormatCommand::Delete, &member()).unwrap();
        state = deleted.iter().fold(state, evolve);
        assert_eq!(
            decide(
                state.as_ref(),
                &ExportFormatCommand::Change(settings("b")),
                &member()
            ),
            Err(DomainError::Deleted("export format"))
        );
    }

    #[test]
    fn a_dataset_version_names_readable_sets_at_a_past_position() {
        let context = DatasetVersionContext {
            actor: Actor::user(1),
            name_taken: false,
            head: 100,
            sets_readable: true,
        };
        let sets = BTreeSet::from([3]);
        assert!(create_dataset_version(false, 1, "v1", 100, &sets, &context).is_ok());
        assert!(create_dataset_version(false, 1, "v1", 101, &sets, &context).is_err());
        assert!(create_dataset_version(false, 1, "v1", 50, &BTreeSet::new(), &context).is_err());
        let hidden = DatasetVersionContext {
            sets_readable: false,
            ..context
        };
        assert!(create_dataset_version(false, 1, "v1", 50, &sets, &hidden).is_err());
        assert!(create_dataset_version(true, 1, "v1", 50, &sets, &context).is_err());
    }
}
