//! The image aggregate (`image-{id}`) and the access log of who opened and closed which image
//! (`image_access-{image}`, EXACT's `LogImageAction`).
//!
//! An image is registered once its file is stored and read: the caller measured width, height,
//! resolution and frames, and computed the checksum. Beyond EXACT, a set's `image_lock` stops
//! adding and deleting through every door (see [`crate::permissions`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{allow, name_in, DomainError};
use crate::event::DomainEvent;
use crate::permissions::{Permission, Permissions};

pub fn stream(id: i64) -> String {
    format!("image-{id}")
}

pub fn access_stream(image: i64) -> String {
    format!("image_access-{image}")
}

/// EXACT's `image_type`: 0 an uploaded file, 1 made by the server, 2 a link to a file.
pub const IMAGE_TYPES: [i64; 3] = [0, 1, 2];

/// What was measured of a stored image file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageFile {
    /// The original file name.
    pub name: String,
    /// The stored file, relative to the set's folder.
    pub filename: String,
    /// SHA-256 of the file, lowercase hex.
    pub checksum: String,
    pub width: i64,
    pub height: i64,
    /// Microns per pixel (mean of x and y), if the file says.
    pub mpp: Option<f64>,
    pub objective_power: Option<f64>,
    /// Z levels.
    pub depth: i64,
    /// Time points.
    pub frames: i64,
    pub channels: i64,
    pub image_type: i64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum ImageEvent {
    ImageAdded {
        id: i64,
        image_set: i64,
        #[serde(flatten)]
        file: ImageFile,
    },
    ImageDeleted {
        id: i64,
    },
    /// What the file claims, corrected by a user (EXACT lets them edit these fields); the
    /// description as it is after the change. The file is untouched.
    ImageDescribed {
        id: i64,
        #[serde(flatten)]
        description: ImageDescription,
    },
}

impl DomainEvent for ImageEvent {
    const NAMES: &'static [&'static str] = &["ImageAdded", "ImageDeleted", "ImageDescribed"];
}

/// The fields of an image a user may correct.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageDescription {
    pub name: String,
    pub mpp: Option<f64>,
    pub objective_power: Option<f64>,
    /// When the image was taken or added, microseconds since 1970; `None` keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<i64>,
    /// What each frame shows (a time point, a stain), by frame number from 1: all of them as
    /// they are after the change (EXACT's later `FrameDescription`).
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        with = "frame_list"
    )]
    pub frame_descriptions: BTreeMap<i64, String>,
}

/// Frame descriptions in an event as a list of `{frame, description}` (EXACT's
/// `FrameDescription` rows): serde cannot read number keys back inside a flattened struct.
mod frame_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct FrameDescription {
        frame: i64,
        description: String,
    }

    pub fn serialize<S: Serializer>(map: &BTreeMap<i64, String>, s: S) -> Result<S::Ok, S::Error> {
        let list: Vec<FrameDescription> = map
            .iter()
            .map(|(frame, description)| FrameDescription {
                frame: *frame,
                description: description.clone(),
            })
            .collect();
        list.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<i64, String>, D::Error> {
        let list = Vec::<FrameDescription>::deserialize(d)?;
        Ok(list.into_iter().map(|f| (f.frame, f.description)).collect())
    }
}

/// The longest description of one frame.
pub const MAX_FRAME_DESCRIPTION: usize = 1000;

#[derive(Clone, Debug, PartialEq)]
pub struct Image {
    pub id: i64,
    pub image_set: i64,
    pub file: ImageFile,
    pub deleted: bool,
    pub frame_descriptions: BTreeMap<i64, String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ImageCommand {
    Add {
        id: i64,
        image_set: i64,
        file: ImageFile,
    },
    Delete,
    Describe(ImageDescription),
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageContext {
    /// The actor's permissions on the image's set.
    pub permissions: Permissions,
    /// The set holds an image of this name or checksum already (for `Describe`: another image
    /// has the new name).
    pub duplicate: bool,
}

pub fn decide(
    state: Option<&Image>,
    command: &ImageCommand,
    context: &ImageContext,
) -> Result<Vec<ImageEvent>, DomainError> {
    let require = |permission: Permission| {
        if context.permissions.contains(permission) {
            Ok(())
        } else {
            Err(DomainError::ForbiddenInSet(permission))
        }
    };
    match (state, command) {
        (
            None,
            ImageCommand::Add {
                id,
                image_set,
                file,
            },
        ) => {
            require(Permission::AddImages)?;
            let name = name_in("name", &file.name, 1, 255)?;
            if context.duplicate {
                return Err(DomainError::Taken {
                    field: "name",
                    value: name,
                });
            }
            if file.width <= 0 || file.height <= 0 {
                return Err(DomainError::invalid(
                    "width",
                    "width and height must be positive",
                ));
            }
            if file.depth < 1 || file.frames < 1 || file.channels < 1 {
                return Err(DomainError::invalid(
                    "frames",
                    "depth, frames and channels must be at least 1",
                ));
            }
            if file.checksum.len() != 64 || !file.checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(DomainError::invalid("checksum", "must be a SHA-256 in hex"));
            }
            if !IMAGE_TYPES.contains(&file.image_type) {
                return Err(DomainError::invalid("image_type", "must be 0, 1 or 2"));
            }
            if file.mpp.is_some_and(|m| !(m.is_finite() && m > 0.0)) {
                return Err(DomainError::invalid("mpp", "must be a positive number"));
            }
            Ok(vec![ImageEvent::ImageAdded {
                id: *id,
                image_set: *image_set,
                file: ImageFile {
                    name,
                    checksum: file.checksum.to_ascii_lowercase(),
                    ..file.clone()
                },
            }])
        }
        (Some(_), ImageCommand::Add { .. }) => Err(DomainError::AlreadyExists("image")),
        (None, ImageCommand::Delete | ImageCommand::Describe(_)) => {
            Err(DomainError::NotFound("image"))
        }
        (Some(image), ImageCommand::Describe(description)) => {
            require(Permission::EditSet)?;
            if image.deleted {
                return Err(DomainError::Deleted("image"));
            }
            let name = name_in("name", &description.name, 1, 255)?;
            if name != image.file.name && context.duplicate {
                return Err(DomainError::Taken {
                    field: "name",
                    value: name,
                });
            }
            for (field, value) in [
                ("mpp", description.mpp),
                ("objectivePower", description.objective_power),
            ] {
                if value.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
                    return Err(DomainError::invalid(field, "must be a positive number"));
                }
            }
            let frames = image.file.frames.max(1);
            for (frame, text) in &description.frame_descriptions {
                if !(1..=frames).contains(frame) {
                    return Err(DomainError::invalid(
                        "frame_descriptions",
                        format!("frame {frame} is not a frame of this image (1 to {frames})"),
                    ));
                }
                if text.trim().is_empty() || text.chars().count() > MAX_FRAME_DESCRIPTION {
                    return Err(DomainError::invalid(
                        "frame_descriptions",
                        format!("frame {frame}: 1 to {MAX_FRAME_DESCRIPTION} characters"),
                    ));
                }
            }
            let unchanged = name == image.file.name
                && description.mpp == image.file.mpp
                && description.objective_power == image.file.objective_power
                && description.time.is_none()
                && description.frame_descriptions == image.frame_descriptions;
            Ok(if unchanged {
                vec![]
            } else {
                vec![ImageEvent::ImageDescribed {
                    id: image.id,
                    description: ImageDescription {
                        name,
                        ..description.clone()
                    },
                }]
            })
        }
        (Some(image), ImageCommand::Delete) => {
            require(Permission::DeleteImages)?;
            Ok(if image.deleted {
                vec![]
            } else {
                vec![ImageEvent::ImageDeleted { id: image.id }]
            })
        }
    }
}

pub fn evolve(state: Option<Image>, event: &ImageEvent) -> Option<Image> {
    match (state, event) {
        (
            _,
            ImageEvent::ImageAdded {
                id,
                image_set,
                file,
            },
        ) => Some(Image {
            id: *id,
            image_set: *image_set,
            file: file.clone(),
            deleted: false,
            frame_descriptions: BTreeMap::new(),
        }),
        (Some(mut i), ImageEvent::ImageDeleted { .. }) => {
            i.deleted = true;
            Some(i)
        }
        (Some(mut i), ImageEvent::ImageDescribed { description, .. }) => {
            i.file.name.clone_from(&description.name);
            i.file.mpp = description.mpp;
            i.file.objective_power = description.objective_power;
            i.frame_descriptions
                .clone_from(&description.frame_descriptions);
            Some(i)
        }
        (None, _) => None,
    }
}

/// The viewer's report that a user opened or closed an image (EXACT's `LogImageAction`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum ImageAccessEvent {
    ImageOpened {
        image: i64,
        user: i64,
    },
    ImageClosed {
        image: i64,
        user: i64,
    },
    /// EXACT lets its log be edited: entry `entry` (the log position that recorded it) now
    /// says `action` (1 opened, 2 closed). The first record stays in the log.
    ImageAccessCorrected {
        image: i64,
        entry: i64,
        action: i64,
    },
    /// Entry `entry` taken out of the access log (EXACT's delete); the log keeps it.
    ImageAccessRetracted {
        image: i64,
        entry: i64,
    },
}

impl DomainEvent for ImageAccessEvent {
    const NAMES: &'static [&'static str] = &[
        "ImageOpened",
        "ImageClosed",
        "ImageAccessCorrected",
        "ImageAccessRetracted",
    ];
}

/// Whether `actor` may correct or retract an access log entry made by `entry_user`: it is
/// theirs, or they are a superuser.
pub fn may_amend_access(entry_user: i64, actor: crate::event::Actor) -> Result<(), DomainError> {
    allow(
        actor.id == entry_user || actor.superuser,
        "change another user's access log",
    )
}

/// Corrects (`Some(action)`) or retracts (`None`) access log entry `entry` of `image`, made by
/// `entry_user`: theirs to change, or a superuser's.
pub fn amend_access(
    image: i64,
    entry: i64,
    entry_user: i64,
    action: Option<i64>,
    actor: crate::event::Actor,
) -> Result<ImageAccessEvent, DomainError> {
    may_amend_access(entry_user, actor)?;
    match action {
        Some(action @ (1 | 2)) => Ok(ImageAccessEvent::ImageAccessCorrected {
            image,
            entry,
            action,
        }),
        Some(_) => Err(DomainError::invalid(
            "action",
            "must be 1 (opened) or 2 (closed)",
        )),
        None => Ok(ImageAccessEvent::ImageAccessRetracted { image, entry }),
    }
}

/// Whoever may read an image may say they opened or closed it.
pub fn record_access(
    image: &Image,
    user: i64,
    opened: bool,
    permissions: Permissions,
) -> Result<ImageAccessEvent, DomainError> {
    if !permissions.contains(Permission::Read) {
        return Err(DomainError::ForbiddenInSet(Permission::Read));
    }
    if image.deleted {
        return Err(DomainError::Deleted("image"));
    }
    let image = image.id;
    Ok(if opened {
        ImageAccessEvent::ImageOpened { image, user }
    } else {
        ImageAccessEvent::ImageClosed { image, user }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::permissions::{image_set_permissions, SetFlags, Standing};

    fn file() -> ImageFile {
        ImageFile {
            name: "slide.svs".into(),
            filename: "slide.svs".into(),
            checksum: "AB".repeat(32),
            width: 50_000,
            height: 40_000,
            mpp: Some(0.25),
            objective_power: Some(40.0),
            depth: 1,
            frames: 1,
            channels: 3,
            image_type: 0,
        }
    }

    fn permissions(image_lock: bool) -> Permissions {
        image_set_permissions(
            Standing {
                member: true,
                team_admin: true,
                ..Standing::default()
            },
            SetFlags {
                image_lock,
                ..SetFlags::default()
            },
        )
    }

    fn add(file: ImageFile) -> ImageCommand {
        ImageCommand::Add {
            id: 5,
            image_set: 6,
            file,
        }
    }

    fn open() -> ImageContext {
        ImageContext {
            permissions: permissions(false),
            duplicate: false,
        }
    }

    #[test]
    fn an_image_is_added_with_a_lowercase_checksum() {
        let events = decide(None, &add(file()), &open()).unwrap();
        let image = events.iter().fold(None, evolve).unwrap();
        assert_eq!(image.file.checksum, "ab".repeat(32));
        assert_eq!(image.image_set, 6);
    }

    #[test]
    fn adding_refuses_locked_sets_duplicates_and_impossible_measurements() {
        let locked = ImageContext {
            permissions: permissions(true),
            duplicate: false,
        };
        assert_eq!(
            decide(None, &add(file()), &locked),
            Err(DomainError::ForbiddenInSet(Permission::AddImages))
        );
        let duplicate = ImageContext {
            duplicate: true,
            ..open()
        };
        assert!(matches!(
            decide(None, &add(file()), &duplicate),
            Err(DomainError::Taken { .. })
        ));
        type Spoil = fn(&mut ImageFile);
        let bad: [(Spoil, &str); 5] = [
            (|f| f.width = 0, "width"),
            (|f| f.frames = 0, "frames"),
            (|f| f.checksum = "xyz".into(), "checksum"),
            (|f| f.image_type = 3, "image_type"),
            (|f| f.mpp = Some(f64::NAN), "mpp"),
        ];
        for (spoil, field) in bad {
            let mut f = file();
            spoil(&mut f);
            match decide(None, &add(f), &open()) {
                Err(DomainError::Invalid { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{field}: {other:?}"),
            }
        }
    }

    #[test]
    fn users_correct_what_the_file_claims_and_the_file_stays_as_it_is() {
        let image = decide(None, &add(file()), &open())
            .unwrap()
            .iter()
            .fold(None, evolve)
            .unwrap();
        let describe = |f: fn(&mut ImageDescription)| {
            let mut d = ImageDescription {
                name: "slide.svs".into(),
                mpp: Some(0.25),
                objective_power: Some(40.0),
                time: None,
                frame_descriptions: BTreeMap::new(),
            };
            f(&mut d);
            ImageCommand::Describe(d)
        };
        assert!(decide(Some(&image), &describe(|_| {}), &open())
            .unwrap()
            .is_empty());
        let events = decide(
            Some(&image),
            &describe(|d| d.objective_power = Some(20.0)),
            &open(),
        )
        .unwrap();
        let corrected = events.iter().fold(Some(image.clone()), evolve).unwrap();
        assert_eq!(corrected.file.objective_power, Some(20.0));
        assert_eq!(corrected.file.checksum, image.file.checksum);
        assert!(matches!(
            decide(Some(&image), &describe(|d| d.mpp = Some(-1.0)), &open()),
            Err(DomainError::Invalid { field: "mpp", .. })
        ));
        // Frames are described within the image's frames, and the description is kept.
        let frames = image.file.frames.max(1);
        for (frame, text) in [(0, "t = 0"), (frames + 1, "t = 9"), (1, " ")] {
            let d = ImageDescription {
                name: "slide.svs".into(),
                mpp: Some(0.25),
                objective_power: Some(40.0),
                time: None,
                frame_descriptions: BTreeMap::from([(frame, text.to_owned())]),
            };
            let events = decide(Some(&image), &ImageCommand::Describe(d), &open());
            assert!(
                matches!(
                    events,
                    Err(DomainError::Invalid {
                        field: "frame_descriptions",
                        ..
                    })
                ),
                "frame {frame}: {events:?}"
            );
        }
        let events = decide(
            Some(&image),
            &describe(|d| {
                d.frame_descriptions.insert(1, "H&E".into());
            }),
            &open(),
        )
        .unwrap();
        let described = events.iter().fold(Some(image.clone()), evolve).unwrap();
        assert_eq!(described.frame_descriptions[&1], "H&E");
        // The event reads back as it was written (number keys inside a flattened struct
        // would not).
        let stored = serde_json::to_string(&events[0]).unwrap();
        assert!(
            stored.contains(r#"{"frame":1,"description":"H&E"}"#),
            "{stored}"
        );
        assert_eq!(
            serde_json::from_str::<ImageEvent>(&stored).unwrap(),
            events[0]
        );
        let taken = ImageContext {
            duplicate: true,
            ..open()
        };
        assert!(matches!(
            decide(
                Some(&image),
                &describe(|d| d.name = "other.svs".into()),
                &taken
            ),
            Err(DomainError::Taken { .. })
        ));
        let reader = ImageContext {
            permissions: Permissions::of(&[Permission::Read]),
            duplicate: false,
        };
        assert_eq!(
            decide(
                Some(&image),
                &describe(|d| d.name = "x.svs".into()),
                &reader
            ),
            Err(DomainError::ForbiddenInSet(Permission::EditSet))
        );
    }

    #[test]
    fn deleting_needs_delete_images_and_is_idempotent() {
        let image = decide(None, &add(file()), &open())
            .unwrap()
            .iter()
            .fold(None, evolve)
            .unwrap();
        let member = ImageContext {
            permissions: image_set_permissions(
                Standing {
                    member: true,
                    ..Standing::default()
                },
                SetFlags::default(),
            ),
            duplicate: false,
        };
        assert_eq!(
            decide(Some(&image), &ImageCommand::Delete, &member),
            Err(DomainError::ForbiddenInSet(Permission::DeleteImages))
        );
        let events = decide(Some(&image), &ImageCommand::Delete, &open()).unwrap();
        let gone = events.iter().fold(Some(image), evolve).unwrap();
        assert!(decide(Some(&gone), &ImageCommand::Delete, &open())
            .unwrap()
            .is_empty());
        assert_eq!(
            record_access(&gone, 1, true, open().permissions),
            Err(DomainError::Deleted("image"))
        );
    }

    #[test]
    fn access_is_recorded_for_readers_only() {
        let image = decide(None, &add(file()), &open())
            .unwrap()
            .iter()
            .fold(None, evolve)
            .unwrap();
        assert_eq!(
            record_access(&image, 1, false, open().permissions),
            Ok(ImageAccessEvent::ImageClosed { image: 5, user: 1 })
        );
        assert_eq!(
            record_access(&image, 1, true, Permissions::NONE),
            Err(DomainError::ForbiddenInSet(Permission::Read))
        );
    }

    #[test]
    fn an_access_entry_is_corrected_or_retracted_by_its_user_or_a_superuser() {
        use crate::event::Actor;
        assert_eq!(
            amend_access(5, 40, 1, Some(2), Actor::user(1)),
            Ok(ImageAccessEvent::ImageAccessCorrected {
                image: 5,
                entry: 40,
                action: 2
            })
        );
        assert!(matches!(
            amend_access(5, 40, 1, Some(3), Actor::user(1)),
            Err(DomainError::Invalid {
                field: "action",
                ..
            })
        ));
        assert!(matches!(
            amend_access(5, 40, 1, None, Actor::user(2)),
            Err(DomainError::Forbidden(_))
        ));
        assert_eq!(
            amend_access(5, 40, 1, None, Actor::SYSTEM),
            Ok(ImageAccessEvent::ImageAccessRetracted {
                image: 5,
                entry: 40
            })
        );
    }
}
