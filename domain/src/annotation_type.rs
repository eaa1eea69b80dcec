//! The annotation type aggregate: one stream per type, `annotation_type-{id}`.
//!
//! A type belongs to a product; its name is unique within the product. Types are never deleted
//! (annotations refer to them): they are deactivated. The vector type is fixed at creation,
//! because every annotation of the type was validated against it.

use serde::{Deserialize, Serialize};

use crate::error::{allow, name_in, DomainError};
use crate::event::{Actor, DomainEvent, TeamRole};
use crate::product::manages;
use crate::vector::VectorType;

pub fn stream(id: i64) -> String {
    format!("annotation_type-{id}")
}

/// What describes a type, as EXACT's `AnnotationType` fields.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeSettings {
    pub name: String,
    pub node_count: u32,
    pub color_code: String,
    pub default_width: i64,
    pub default_height: i64,
    pub sort_order: i64,
    pub closed: bool,
    pub area_hit_test: bool,
    pub enable_concealed: bool,
    pub enable_blurred: bool,
    pub active: bool,
}

impl Default for TypeSettings {
    /// EXACT's defaults.
    fn default() -> Self {
        Self {
            name: String::new(),
            node_count: 0,
            color_code: "#CC4444".into(),
            default_width: 50,
            default_height: 50,
            sort_order: 0,
            closed: true,
            area_hit_test: true,
            enable_concealed: true,
            enable_blurred: true,
            active: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum AnnotationTypeEvent {
    AnnotationTypeCreated {
        id: i64,
        product: i64,
        vector_type: VectorType,
        #[serde(flatten)]
        settings: TypeSettings,
    },
    /// The settings as they are after the change, in full.
    AnnotationTypeChanged {
        id: i64,
        #[serde(flatten)]
        settings: TypeSettings,
    },
    /// EXACT lets its users change a type's vector type; here only while every live
    /// annotation of the type is a valid vector of the new one.
    AnnotationTypeVectorTypeChanged { id: i64, vector_type: VectorType },
    /// Gone from lists and retrieves; its live annotations are deleted in the same append (as
    /// EXACT's cascade does). All of it stays in the log and in reads as of earlier moments.
    AnnotationTypeDeleted { id: i64 },
}

impl DomainEvent for AnnotationTypeEvent {
    const NAMES: &'static [&'static str] = &[
        "AnnotationTypeCreated",
        "AnnotationTypeChanged",
        "AnnotationTypeVectorTypeChanged",
        "AnnotationTypeDeleted",
    ];
}

#[derive(Clone, Debug, PartialEq)]
pub struct AnnotationType {
    pub id: i64,
    pub product: i64,
    pub vector_type: VectorType,
    pub settings: TypeSettings,
    pub deleted: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AnnotationTypeCommand {
    Create {
        id: i64,
        product: i64,
        /// EXACT's code, 1 to 7.
        vector_type: i64,
        settings: TypeSettings,
    },
    /// Replaces the settings.
    Change(TypeSettings),
    /// EXACT's code, 1 to 7.
    ChangeVectorType(i64),
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AnnotationTypeContext {
    pub actor: Actor,
    /// The actor's role in the team of the type's product.
    pub team_role: TeamRole,
    /// Another type of the product has this name.
    pub name_taken: bool,
    /// For `ChangeVectorType`: how many live annotations of the type are not valid vectors
    /// of the new vector type (the caller names them).
    pub misfits: usize,
}

pub const NAME_LENGTH: (usize, usize) = (1, 100);

pub fn decide(
    state: Option<&AnnotationType>,
    command: &AnnotationTypeCommand,
    context: &AnnotationTypeContext,
) -> Result<Vec<AnnotationTypeEvent>, DomainError> {
    allow(
        manages(context.actor, context.team_role),
        "manage this team's annotation types",
    )?;
    match (state, command) {
        (
            None,
            AnnotationTypeCommand::Create {
                id,
                product,
                vector_type,
                settings,
            },
        ) => {
            let vector_type = VectorType::try_from(*vector_type)
                .map_err(|message| DomainError::invalid("vector_type", message))?;
            let settings = checked(settings, context)?;
            Ok(vec![AnnotationTypeEvent::AnnotationTypeCreated {
                id: *id,
                product: *product,
                vector_type,
                settings,
            }])
        }
        (Some(_), AnnotationTypeCommand::Create { .. }) => {
            Err(DomainError::AlreadyExists("annotation type"))
        }
        (None, _) => Err(DomainError::NotFound("annotation type")),
        (Some(current), _) if current.deleted => Err(DomainError::Deleted("annotation type")),
        (Some(current), AnnotationTypeCommand::ChangeVectorType(code)) => {
            let vector_type = VectorType::try_from(*code)
                .map_err(|message| DomainError::invalid("vector_type", message))?;
            if vector_type == current.vector_type {
                return Ok(vec![]);
            }
            if context.misfits > 0 {
                return Err(DomainError::InUse {
                    field: "vector_type",
                    message: format!(
                        "{} live annotation(s) of this type are not valid {vector_type:?} vectors",
                        context.misfits
                    ),
                });
            }
            Ok(vec![AnnotationTypeEvent::AnnotationTypeVectorTypeChanged {
                id: current.id,
                vector_type,
            }])
        }
        (Some(current), AnnotationTypeCommand::Delete) => {
            Ok(vec![AnnotationTypeEvent::AnnotationTypeDeleted {
                id: current.id,
            }])
        }
        (Some(current), AnnotationTypeCommand::Change(settings)) => {
            let settings = if settings.name.trim() == current.settings.name {
                // The name is not changing: whether it is "taken" (by this type) is moot.
                checked(
                    settings,
                    &AnnotationTypeContext {
                        name_taken: false,
                        ..*context
                    },
                )?
            } else {
                checked(settings, context)?
            };
            Ok(if settings == current.settings {
                vec![]
            } else {
                vec![AnnotationTypeEvent::AnnotationTypeChanged {
                    id: current.id,
                    settings,
                }]
            })
        }
    }
}

fn checked(
    settings: &TypeSettings,
    context: &AnnotationTypeContext,
) -> Result<TypeSettings, DomainError> {
    let name = name_in("name", &settings.name, NAME_LENGTH.0, NAME_LENGTH.1)?;
    if context.name_taken {
        return Err(DomainError::Taken {
            field: "name",
            value: name,
        });
    }
    let colour = settings.color_code.as_bytes();
    if colour.len() != 7 || colour[0] != b'#' || !colour[1..].iter().all(u8::is_ascii_hexdigit) {
        return Err(DomainError::invalid(
            "color_code",
            format!("must be #RRGGBB, not {:?}", settings.color_code),
        ));
    }
    if settings.default_width <= 0 || settings.default_height <= 0 {
        return Err(DomainError::invalid(
            "default_width",
            "default_width and default_height must be positive",
        ));
    }
    Ok(TypeSettings {
        name,
        color_code: settings.color_code.to_ascii_uppercase(),
        ..settings.clone()
    })
}

pub fn evolve(
    state: Option<AnnotationType>,
    event: &AnnotationTypeEvent,
) -> Option<AnnotationType> {
    match (state, event) {
        (
            _,
            AnnotationTypeEvent::AnnotationTypeCreated {
                id,
                product,
                vector_type,
                settings,
            },
        ) => Some(AnnotationType {
            id: *id,
            product: *product,
            vector_type: *vector_type,
            settings: settings.clone(),
            deleted: false,
        }),
        (Some(mut t), AnnotationTypeEvent::AnnotationTypeChanged { settings, .. }) => {
            t.settings = settings.clone();
            Some(t)
        }
        (Some(mut t), AnnotationTypeEvent::AnnotationTypeVectorTypeChanged { vector_type, .. }) => {
            t.vector_type = *vector_type;
            Some(t)
        }
        (Some(mut t), AnnotationTypeEvent::AnnotationTypeDeleted { .. }) => {
            t.deleted = true;
            Some(t)
        }
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admin() -> AnnotationTypeContext {
        AnnotationTypeContext {
            actor: Actor::user(1),
            team_role: TeamRole::Admin,
            name_taken: false,
            misfits: 0,
        }
    }

    fn create(vector_type: i64, settings: TypeSettings) -> AnnotationTypeCommand {
        AnnotationTypeCommand::Create {
            id: 3,
            product: 4,
            vector_type,
            settings,
        }
    }

    fn mitosis() -> TypeSettings {
        TypeSettings {
            name: "Mitosis".into(),
            ..TypeSettings::default()
        }
    }

    #[test]
    fn a_type_is_created_with_exacts_defaults_and_a_normal_colour() {
        let settings = TypeSettings {
            color_code: "#cc44aa".into(),
            ..mitosis()
        };
        let events = decide(None, &create(5, settings), &admin()).unwrap();
        let t = events.iter().fold(None, evolve).unwrap();
        assert_eq!(t.vector_type, VectorType::Polygon);
        assert_eq!(t.settings.color_code, "#CC44AA");
        assert_eq!(t.settings.default_width, 50);
    }

    #[test]
    fn creation_refuses_unknown_vector_types_bad_colours_sizes_names_and_members() {
        let cases = [
            (create(0, mitosis()), "vector_type"),
            (create(8, mitosis()), "vector_type"),
            (
                create(
                    1,
                    TypeSettings {
                        color_code: "red".into(),
                        ..mitosis()
                    },
                ),
                "color_code",
            ),
            (
                create(
                    1,
                    TypeSettings {
                        default_width: 0,
                        ..mitosis()
                    },
                ),
                "default_width",
            ),
            (
                create(
                    1,
                    TypeSettings {
                        name: " ".into(),
                        ..mitosis()
                    },
                ),
                "name",
            ),
        ];
        for (command, field) in cases {
            match decide(None, &command, &admin()) {
                Err(DomainError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: {other:?}"),
            }
        }
        let member = AnnotationTypeContext {
            team_role: TeamRole::Member,
            ..admin()
        };
        assert!(matches!(
            decide(None, &create(1, mitosis()), &member),
            Err(DomainError::Forbidden(_))
        ));
        let taken = AnnotationTypeContext {
            name_taken: true,
            ..admin()
        };
        assert!(matches!(
            decide(None, &create(1, mitosis()), &taken),
            Err(DomainError::Taken { .. })
        ));
    }

    #[test]
    fn a_change_replaces_the_settings_and_no_change_is_no_event() {
        let events = decide(None, &create(1, mitosis()), &admin()).unwrap();
        let t = events.iter().fold(None, evolve).unwrap();
        let taken = AnnotationTypeContext {
            name_taken: true,
            ..admin()
        };
        // Its own name counts as taken by the read model; that is no reason to refuse.
        assert!(
            decide(Some(&t), &AnnotationTypeCommand::Change(mitosis()), &taken)
                .unwrap()
                .is_empty()
        );
        let off = TypeSettings {
            active: false,
            ..mitosis()
        };
        let events = decide(Some(&t), &AnnotationTypeCommand::Change(off), &admin()).unwrap();
        let t = events.iter().fold(Some(t), evolve).unwrap();
        assert!(!t.settings.active);
    }

    #[test]
    fn the_vector_type_changes_only_when_every_live_annotation_fits_and_a_deleted_type_takes_nothing(
    ) {
        let settings = TypeSettings {
            name: "mitosis".into(),
            ..TypeSettings::default()
        };
        let events = decide(None, &create(1, settings.clone()), &admin()).unwrap();
        let boxes = events.iter().fold(None, evolve).unwrap();
        let to_polygon = AnnotationTypeCommand::ChangeVectorType(5);
        let misfits = AnnotationTypeContext {
            misfits: 2,
            ..admin()
        };
        assert!(matches!(
            decide(Some(&boxes), &to_polygon, &misfits),
            Err(DomainError::InUse {
                field: "vector_type",
                ..
            })
        ));
        assert!(matches!(
            decide(
                Some(&boxes),
                &AnnotationTypeCommand::ChangeVectorType(9),
                &admin()
            ),
            Err(DomainError::Invalid {
                field: "vector_type",
                ..
            })
        ));
        assert!(decide(
            Some(&boxes),
            &AnnotationTypeCommand::ChangeVectorType(1),
            &admin()
        )
        .unwrap()
        .is_empty());
        let events = decide(Some(&boxes), &to_polygon, &admin()).unwrap();
        let polygons = events.iter().fold(Some(boxes), evolve).unwrap();
        assert_eq!(polygons.vector_type, VectorType::Polygon);

        let member = AnnotationTypeContext {
            team_role: TeamRole::Member,
            ..admin()
        };
        assert!(matches!(
            decide(Some(&polygons), &AnnotationTypeCommand::Delete, &member),
            Err(DomainError::Forbidden(_))
        ));
        let events = decide(Some(&polygons), &AnnotationTypeCommand::Delete, &admin()).unwrap();
        let gone = events.iter().fold(Some(polygons), evolve).unwrap();
        for command in [
            AnnotationTypeCommand::Delete,
            to_polygon,
            AnnotationTypeCommand::Change(TypeSettings::default()),
        ] {
            assert_eq!(
                decide(Some(&gone), &command, &admin()),
                Err(DomainError::Deleted("annotation type"))
            );
        }
    }
}
