//! The catalog read model: users, teams and memberships, products and their sets, annotation
//! types, image sets and tags, images, export formats, dataset versions, screening modes and
//! the image access log, as EXACT's tables. An inline projection: updated in the append's transaction, so a
//! command that creates a set can be followed at once by one that adds an image to it.

use async_trait::async_trait;
use exact_domain::annotation_type::{AnnotationTypeEvent, TypeSettings};
use exact_domain::export_format::{DatasetVersionEvent, ExportFormatEvent, FormatSettings};
use exact_domain::image::{ImageAccessEvent, ImageEvent};
use exact_domain::image_set::{ImageSetEvent, SetSettings};
use exact_domain::media_file::MediaFileEvent;
use exact_domain::product::ProductEvent;
use exact_domain::screening::ScreeningEvent;
use exact_domain::team::TeamEvent;
use exact_domain::user::UserEvent;
use exact_domain::DomainEvent;
use exact_store::{Envelope, InlineProjection, StoreError, Tx};

pub const NAME: &str = "catalog";

/// Keeps the tables of migration 0006 (all but `annotation_statistics`).
#[derive(Debug, Default)]
pub struct CatalogProjection;

/// The tables it owns, emptied by a rebuild.
const TABLES: [&str; 18] = [
    "users",
    "access_tokens",
    "image_set_pins",
    "teams",
    "team_memberships",
    "products",
    "product_image_sets",
    "annotation_types",
    "image_sets",
    "set_tags",
    "images",
    "export_formats",
    "export_format_types",
    "dataset_versions",
    "dataset_version_sets",
    "image_access_log",
    "screening_modes",
    "annotation_media_files",
];

/// Where an event sits in the log: what each row records of it.
struct At {
    micros: i64,
    version: i64,
    position: i64,
}

#[async_trait]
impl InlineProjection for CatalogProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn apply(&self, tx: &mut Tx<'_>, events: &[Envelope]) -> exact_store::Result<()> {
        for envelope in events {
            let at = At {
                micros: envelope.recorded_at.timestamp_micros(),
                version: envelope.version,
                position: envelope.position,
            };
            let kind = envelope.event_type.as_str();
            // Annotation events are most of the log: skip them before decoding anything.
            if kind.starts_with("Annotation") && !kind.starts_with("AnnotationType") {
                continue;
            }
            let payload = envelope.payload.as_str();
            if let Some(e) = UserEvent::from_json(kind, payload) {
                user(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = TeamEvent::from_json(kind, payload) {
                team(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = ProductEvent::from_json(kind, payload) {
                product(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = AnnotationTypeEvent::from_json(kind, payload) {
                annotation_type(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = ImageSetEvent::from_json(kind, payload) {
                image_set(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = ImageEvent::from_json(kind, payload) {
                image(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = ExportFormatEvent::from_json(kind, payload) {
                export_format(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = DatasetVersionEvent::from_json(kind, payload) {
                dataset_version(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = MediaFileEvent::from_json(kind, payload) {
                media_file(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = ScreeningEvent::from_json(kind, payload) {
                screening(tx, &e.map_err(|e| failure(envelope, &e))?, &at).await?;
            } else if let Some(e) = ImageAccessEvent::from_json(kind, payload) {
                let metadata = envelope.metadata().map_err(|e| failure(envelope, &e))?;
                let e = e.map_err(|e| failure(envelope, &e))?;
                let (image, user, action) = match e {
                    ImageAccessEvent::ImageOpened { image, user } => (image, user, 1),
                    ImageAccessEvent::ImageClosed { image, user } => (image, user, 2),
                    ImageAccessEvent::ImageAccessCorrected { entry, action, .. } => {
                        execute!(
                            tx,
                            "UPDATE image_access_log SET action = $1 WHERE position = $2",
                            action,
                            entry
                        );
                        return Ok(());
                    }
                    ImageAccessEvent::ImageAccessRetracted { entry, .. } => {
                        execute!(
                            tx,
                            "DELETE FROM image_access_log WHERE position = $1",
                            entry
                        );
                        return Ok(());
                    }
                };
                execute!(
                    tx,
                    "INSERT INTO image_access_log (position, image, user_id, action, time, ip) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                    at.position,
                    image,
                    user,
                    action,
                    at.micros,
                    metadata.client_addr
                );
            }
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx<'_>) -> exact_store::Result<()> {
        for table in TABLES {
            execute!(tx, &format!("DELETE FROM {table}"));
        }
        Ok(())
    }
}

fn failure(envelope: &Envelope, error: &dyn std::fmt::Display) -> StoreError {
    crate::undecodable(NAME, envelope, error)
}

async fn user(tx: &mut Tx<'_>, event: &UserEvent, at: &At) -> exact_store::Result<()> {
    match event {
        UserEvent::UserCreated {
            id,
            username,
            email,
            password_hash,
            is_superuser,
            is_staff,
            is_active,
        } => execute!(
            tx,
            "INSERT INTO users (id, username, email, password_hash, is_superuser, is_staff, is_active, \
             date_joined, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            id,
            username,
            email,
            password_hash,
            is_superuser,
            is_staff,
            is_active,
            at.micros,
            at.version
        ),
        UserEvent::UserPasswordChanged { id, password_hash } => execute!(
            tx,
            "UPDATE users SET password_hash = $1, version = $2 WHERE id = $3",
            password_hash,
            at.version,
            id
        ),
        UserEvent::UserActivated { id } | UserEvent::UserDeactivated { id } => execute!(
            tx,
            "UPDATE users SET is_active = $1, version = $2 WHERE id = $3",
            matches!(event, UserEvent::UserActivated { .. }),
            at.version,
            id
        ),
        UserEvent::UserRolesChanged {
            id,
            is_superuser,
            is_staff,
        } => execute!(
            tx,
            "UPDATE users SET is_superuser = $1, is_staff = $2, version = $3 WHERE id = $4",
            is_superuser,
            is_staff,
            at.version,
            id
        ),
        UserEvent::AccessTokenCreated {
            id,
            token,
            name,
            token_hash,
        } => {
            execute!(
                tx,
                "INSERT INTO access_tokens (token, user_id, name, token_hash, created, revoked) \
                 VALUES ($1, $2, $3, $4, $5, NULL)",
                token.to_string(),
                id,
                name,
                token_hash,
                at.micros
            );
            execute!(tx, "UPDATE users SET version = $1 WHERE id = $2", at.version, id)
        }
        UserEvent::AccessTokenRevoked { id, token } => {
            execute!(
                tx,
                "UPDATE access_tokens SET revoked = $1 WHERE token = $2",
                at.micros,
                token.to_string()
            );
            execute!(tx, "UPDATE users SET version = $1 WHERE id = $2", at.version, id)
        }
        UserEvent::ImageSetPinned { id, image_set } => {
            execute!(
                tx,
                "INSERT INTO image_set_pins (user_id, image_set, pinned) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, image_set) DO NOTHING",
                id,
                image_set,
                at.micros
            );
            execute!(tx, "UPDATE users SET version = $1 WHERE id = $2", at.version, id)
        }
        UserEvent::ImageSetUnpinned { id, image_set } => {
            execute!(
                tx,
                "DELETE FROM image_set_pins WHERE user_id = $1 AND image_set = $2",
                id,
                image_set
            );
            execute!(tx, "UPDATE users SET version = $1 WHERE id = $2", at.version, id)
        }
    };
    Ok(())
}

async fn team(tx: &mut Tx<'_>, event: &TeamEvent, at: &At) -> exact_store::Result<()> {
    let id = match event {
        TeamEvent::TeamCreated {
            id,
            name,
            website,
            creator,
        } => {
            execute!(
                tx,
                "INSERT INTO teams (id, name, website, creator, dissolved, time, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                id,
                name,
                website,
                creator,
                false,
                at.micros,
                at.version
            );
            execute!(
                tx,
                "INSERT INTO team_memberships (team, user_id, is_admin) VALUES ($1, $2, $3)",
                id,
                creator,
                true
            );
            return Ok(());
        }
        TeamEvent::TeamMemberAdded { id, user } => {
            execute!(
                tx,
                "INSERT INTO team_memberships (team, user_id, is_admin) VALUES ($1, $2, $3)",
                id,
                user,
                false
            );
            id
        }
        TeamEvent::TeamMemberRemoved { id, user } | TeamEvent::TeamMemberLeft { id, user } => {
            execute!(
                tx,
                "DELETE FROM team_memberships WHERE team = $1 AND user_id = $2",
                id,
                user
            );
            id
        }
        TeamEvent::TeamAdminGranted { id, user } | TeamEvent::TeamAdminRevoked { id, user } => {
            execute!(
                tx,
                "UPDATE team_memberships SET is_admin = $1 WHERE team = $2 AND user_id = $3",
                matches!(event, TeamEvent::TeamAdminGranted { .. }),
                id,
                user
            );
            id
        }
        TeamEvent::TeamChanged { id, name, website } => {
            execute!(
                tx,
                "UPDATE teams SET name = $1, website = $2 WHERE id = $3",
                name,
                website,
                id
            );
            id
        }
        TeamEvent::TeamDissolved { id } => {
            execute!(
                tx,
                "UPDATE teams SET dissolved = $1 WHERE id = $2",
                true,
                id
            );
            // Empty already when the last member left; not when an admin deleted the team.
            execute!(tx, "DELETE FROM team_memberships WHERE team = $1", id);
            id
        }
    };
    execute!(
        tx,
        "UPDATE teams SET version = $1 WHERE id = $2",
        at.version,
        id
    );
    Ok(())
}

async fn product(tx: &mut Tx<'_>, event: &ProductEvent, at: &At) -> exact_store::Result<()> {
    let id = match event {
        ProductEvent::ProductCreated {
            id,
            team,
            name,
            description,
            creator,
        } => {
            execute!(
                tx,
                "INSERT INTO products (id, team, name, description, creator, time, version) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                id,
                team,
                name,
                description,
                creator,
                at.micros,
                at.version
            );
            return Ok(());
        }
        ProductEvent::ProductChanged {
            id,
            name,
            description,
        } => {
            execute!(
                tx,
                "UPDATE products SET name = COALESCE($1, name), description = COALESCE($2, description) \
                 WHERE id = $3",
                name,
                description,
                id
            );
            id
        }
        ProductEvent::ProductLinkedToImageSet { id, image_set } => {
            execute!(
                tx,
                "INSERT INTO product_image_sets (product, image_set) VALUES ($1, $2)",
                id,
                image_set
            );
            id
        }
        ProductEvent::ProductUnlinkedFromImageSet { id, image_set } => {
            execute!(
                tx,
                "DELETE FROM product_image_sets WHERE product = $1 AND image_set = $2",
                id,
                image_set
            );
            id
        }
        ProductEvent::ProductDeleted { id } => {
            // Gone from lists, its name free again, its types offered nowhere and listed
            // nowhere. The log keeps all of it.
            execute!(tx, "DELETE FROM product_image_sets WHERE product = $1", id);
            execute!(
                tx,
                "UPDATE annotation_types SET deleted = $1, version = $2 WHERE product = $3",
                true,
                at.version,
                id
            );
            execute!(tx, "DELETE FROM products WHERE id = $1", id);
            return Ok(());
        }
    };
    execute!(
        tx,
        "UPDATE products SET version = $1 WHERE id = $2",
        at.version,
        id
    );
    Ok(())
}

async fn annotation_type(
    tx: &mut Tx<'_>,
    event: &AnnotationTypeEvent,
    at: &At,
) -> exact_store::Result<()> {
    const UPSERT: &str = "INSERT INTO annotation_types (id, product, vector_type, name, node_count, \
         color_code, default_width, default_height, sort_order, closed, area_hit_test, enable_concealed, \
         enable_blurred, active, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, node_count = excluded.node_count, \
         color_code = excluded.color_code, default_width = excluded.default_width, \
         default_height = excluded.default_height, sort_order = excluded.sort_order, closed = excluded.closed, \
         area_hit_test = excluded.area_hit_test, enable_concealed = excluded.enable_concealed, \
         enable_blurred = excluded.enable_blurred, active = excluded.active, version = excluded.version";
    // A change leaves product and vector type as they are: the upsert does not touch them.
    let (id, product, vector_type, s): (i64, i64, i64, &TypeSettings) = match event {
        AnnotationTypeEvent::AnnotationTypeCreated {
            id,
            product,
            vector_type,
            settings,
        } => (*id, *product, vector_type.code(), settings),
        AnnotationTypeEvent::AnnotationTypeChanged { id, settings } => (*id, 0, 0, settings),
        AnnotationTypeEvent::AnnotationTypeVectorTypeChanged { id, vector_type } => {
            execute!(
                tx,
                "UPDATE annotation_types SET vector_type = $1, version = $2 WHERE id = $3",
                vector_type.code(),
                at.version,
                id
            );
            return Ok(());
        }
        AnnotationTypeEvent::AnnotationTypeDeleted { id } => {
            execute!(
                tx,
                "UPDATE annotation_types SET deleted = $1, version = $2 WHERE id = $3",
                true,
                at.version,
                id
            );
            return Ok(());
        }
    };
    execute!(
        tx,
        UPSERT,
        id,
        product,
        vector_type,
        &s.name,
        i64::from(s.node_count),
        &s.color_code,
        s.default_width,
        s.default_height,
        s.sort_order,
        s.closed,
        s.area_hit_test,
        s.enable_concealed,
        s.enable_blurred,
        s.active,
        at.version
    );
    Ok(())
}

async fn image_set(tx: &mut Tx<'_>, event: &ImageSetEvent, at: &At) -> exact_store::Result<()> {
    const UPSERT: &str = "INSERT INTO image_sets (id, team, creator, name, location, description, public, \
         public_collaboration, image_lock, priority, collaboration_type, main_annotation_type, deleted, time, \
         version, clinical) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, location = excluded.location, \
         description = excluded.description, public = excluded.public, \
         public_collaboration = excluded.public_collaboration, image_lock = excluded.image_lock, \
         priority = excluded.priority, collaboration_type = excluded.collaboration_type, \
         main_annotation_type = excluded.main_annotation_type, version = excluded.version, \
         clinical = excluded.clinical";
    let (id, team, creator, s): (i64, i64, i64, &SetSettings) = match event {
        ImageSetEvent::ImageSetCreated {
            id,
            team,
            creator,
            settings,
        } => (*id, *team, *creator, settings),
        ImageSetEvent::ImageSetChanged { id, settings } => (*id, 0, 0, settings),
        ImageSetEvent::ImageSetFreed {
            id,
            public_collaboration,
        } => {
            execute!(
                tx,
                "UPDATE image_sets SET team = NULL, public = $1, image_lock = $1, public_collaboration = $2, \
                 version = $3 WHERE id = $4",
                true,
                public_collaboration,
                at.version,
                id
            );
            return Ok(());
        }
        ImageSetEvent::ImageSetDeleted { id } => {
            execute!(
                tx,
                "UPDATE image_sets SET deleted = $1, version = $2 WHERE id = $3",
                true,
                at.version,
                id
            );
            return Ok(());
        }
    };
    execute!(
        tx,
        UPSERT,
        id,
        team,
        creator,
        &s.name,
        &s.location,
        &s.description,
        s.public,
        s.public_collaboration,
        s.image_lock,
        s.priority,
        i64::from(s.collaboration_type),
        s.main_annotation_type,
        false,
        at.micros,
        at.version,
        s.clinical
    );
    execute!(tx, "DELETE FROM set_tags WHERE image_set = $1", id);
    for tag in &s.tags {
        execute!(
            tx,
            "INSERT INTO set_tags (image_set, name) VALUES ($1, $2)",
            id,
            tag
        );
    }
    Ok(())
}

async fn image(tx: &mut Tx<'_>, event: &ImageEvent, at: &At) -> exact_store::Result<()> {
    match event {
        ImageEvent::ImageAdded {
            id,
            image_set,
            file: f,
        } => execute!(
            tx,
            "INSERT INTO images (id, image_set, name, filename, checksum, width, height, mpp, objective_power, \
             depth, frames, channels, image_type, deleted, time, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            id,
            image_set,
            &f.name,
            &f.filename,
            &f.checksum,
            f.width,
            f.height,
            f.mpp,
            f.objective_power,
            f.depth,
            f.frames,
            f.channels,
            f.image_type,
            false,
            at.micros,
            at.version
        ),
        ImageEvent::ImageDeleted { id } => execute!(
            tx,
            "UPDATE images SET deleted = $1, version = $2 WHERE id = $3",
            true,
            at.version,
            id
        ),
        ImageEvent::ImageDescribed { id, description: d } => {
            let frames = serde_json::to_string(&d.frame_descriptions).expect("text by number");
            execute!(
                tx,
                "UPDATE images SET name = $1, mpp = $2, objective_power = $3, time = COALESCE($4, time), \
                 frame_descriptions = $5, version = $6 WHERE id = $7",
                &d.name,
                d.mpp,
                d.objective_power,
                d.time,
                &frames,
                at.version,
                id
            )
        }
    };
    Ok(())
}

async fn export_format(
    tx: &mut Tx<'_>,
    event: &ExportFormatEvent,
    at: &At,
) -> exact_store::Result<()> {
    const UPSERT: &str = "INSERT INTO export_formats (id, team, creator, name, public, base_format, \
         image_format, annotation_format, vector_format, not_in_image_format, name_format, min_verifications, \
         image_aggregation, include_blurred, include_concealed, deleted, last_change_time, version) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, public = excluded.public, \
         base_format = excluded.base_format, image_format = excluded.image_format, \
         annotation_format = excluded.annotation_format, vector_format = excluded.vector_format, \
         not_in_image_format = excluded.not_in_image_format, name_format = excluded.name_format, \
         min_verifications = excluded.min_verifications, image_aggregation = excluded.image_aggregation, \
         include_blurred = excluded.include_blurred, include_concealed = excluded.include_concealed, \
         last_change_time = excluded.last_change_time, version = excluded.version";
    // A change keeps team and creator: the upsert does not touch them.
    let (id, team, creator, s): (i64, Option<i64>, i64, &FormatSettings) = match event {
        ExportFormatEvent::ExportFormatCreated {
            id,
            team,
            creator,
            settings,
        } => (*id, *team, *creator, settings),
        ExportFormatEvent::ExportFormatChanged { id, settings } => (*id, None, 0, settings),
        ExportFormatEvent::ExportFormatDeleted { id } => {
            execute!(
                tx,
                "UPDATE export_formats SET deleted = $1, last_change_time = $2, version = $3 WHERE id = $4",
                true,
                at.micros,
                at.version,
                id
            );
            return Ok(());
        }
    };
    execute!(
        tx,
        UPSERT,
        id,
        team,
        creator,
        &s.name,
        s.public,
        &s.base_format,
        &s.image_format,
        &s.annotation_format,
        &s.vector_format,
        &s.not_in_image_format,
        &s.name_format,
        s.min_verifications,
        s.image_aggregation,
        s.include_blurred,
        s.include_concealed,
        false,
        at.micros,
        at.version
    );
    execute!(
        tx,
        "DELETE FROM export_format_types WHERE export_format = $1",
        id
    );
    for t in &s.annotations_types {
        execute!(
            tx,
            "INSERT INTO export_format_types (export_format, annotation_type) VALUES ($1, $2)",
            id,
            t
        );
    }
    Ok(())
}

async fn media_file(tx: &mut Tx<'_>, event: &MediaFileEvent, at: &At) -> exact_store::Result<()> {
    match event {
        MediaFileEvent::MediaFileAdded {
            id,
            annotation,
            name,
            media_file_type,
            file,
            checksum,
            size,
        } => execute!(
            tx,
            "INSERT INTO annotation_media_files (id, annotation, name, media_file_type, file, \
             checksum, size, deleted, time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            id,
            annotation,
            name,
            media_file_type,
            file,
            checksum,
            size,
            false,
            at.micros
        ),
        MediaFileEvent::MediaFileDeleted { id } => execute!(
            tx,
            "UPDATE annotation_media_files SET deleted = $1 WHERE id = $2",
            true,
            id
        ),
        MediaFileEvent::MediaFileRenamed { id, name } => execute!(
            tx,
            "UPDATE annotation_media_files SET name = $1 WHERE id = $2",
            name,
            id
        ),
    };
    Ok(())
}

async fn screening(tx: &mut Tx<'_>, event: &ScreeningEvent, at: &At) -> exact_store::Result<()> {
    let (id, image, user, state) = match event {
        ScreeningEvent::ScreeningEnded { id } => {
            execute!(tx, "DELETE FROM screening_modes WHERE id = $1", id);
            return Ok(());
        }
        ScreeningEvent::ScreeningStarted {
            id,
            image,
            user,
            state,
        } => (id, Some(image), Some(user), state),
        ScreeningEvent::ScreeningChanged { id, state } => (id, None, None, state),
    };
    let tiles = (!state.screening_tiles.is_null()).then(|| state.screening_tiles.to_string());
    if let (Some(image), Some(user)) = (image, user) {
        execute!(
            tx,
            "INSERT INTO screening_modes (id, image, user_id, screening_tiles, x_steps, y_steps, \
             x_resolution, y_resolution, current_index, version) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            id,
            image,
            user,
            &tiles,
            state.x_steps,
            state.y_steps,
            state.x_resolution,
            state.y_resolution,
            state.current_index,
            at.version
        );
    } else {
        execute!(
            tx,
            "UPDATE screening_modes SET screening_tiles = $1, x_steps = $2, y_steps = $3, \
             x_resolution = $4, y_resolution = $5, current_index = $6, version = $7 WHERE id = $8",
            &tiles,
            state.x_steps,
            state.y_steps,
            state.x_resolution,
            state.y_resolution,
            state.current_index,
            at.version,
            id
        );
    }
    Ok(())
}

async fn dataset_version(
    tx: &mut Tx<'_>,
    event: &DatasetVersionEvent,
    at: &At,
) -> exact_store::Result<()> {
    let DatasetVersionEvent::DatasetVersionCreated {
        id,
        name,
        position,
        image_sets,
        creator,
    } = event;
    execute!(
        tx,
        "INSERT INTO dataset_versions (id, name, position, creator, time) VALUES ($1, $2, $3, $4, $5)",
        id,
        name,
        position,
        creator,
        at.micros
    );
    for set in image_sets {
        execute!(
            tx,
            "INSERT INTO dataset_version_sets (dataset_version, image_set) VALUES ($1, $2)",
            id,
            set
        );
    }
    Ok(())
}
