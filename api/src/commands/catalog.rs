//! Commands on the catalog: accounts, teams, products, annotation types, image sets, images,
//! export formats, dataset versions and the image access log. Each method gathers the context
//! its aggregate's rules need from the read models, then runs the command.

use std::collections::BTreeSet;

use exact_domain::annotation::AnnotationEvent;
use exact_domain::annotation::TypeInfo;
use exact_domain::annotation_type::{
    AnnotationTypeCommand, AnnotationTypeContext, AnnotationTypeEvent, TypeSettings,
};
use exact_domain::export_format::{
    create_dataset_version, dataset_version_stream, set_exports_stream, DatasetVersionContext,
    ExportFormatCommand, ExportFormatContext, FormatSettings, SetExportEvent,
};
use exact_domain::image::{
    access_stream, amend_access, record_access, ImageCommand, ImageContext, ImageDescription,
    ImageFile,
};
use exact_domain::image_set::{ImageSetCommand, ImageSetContext, ImageSetEvent, SetSettings};
use exact_domain::permissions::{Permission, Permissions};
use exact_domain::product::{ProductCommand, ProductContext, ProductEvent};
use exact_domain::team::{TeamCommand, TeamContext, TeamEvent};
use exact_domain::user::{UserCommand, UserContext};
use exact_domain::vector::{validate, Fit, Vector, VectorType};
use exact_domain::{Actor, Aggregate, DomainError, DomainEvent, TeamRole};
use exact_projections::annotation_query::AnnotationQuery;
use exact_store::{Envelope, Expected, NewEvent, StreamAppend};

use super::annotations::AnnotationAggregate;
use super::{consequence, new_events, stream_of, Caller, Commands, Written};
use crate::error::ApiError;
use exact_domain::aggregate::{
    AnnotationTypeAggregate, ExportFormatAggregate, ImageAggregate, ImageSetAggregate,
    ProductAggregate, TeamAggregate, UserAggregate,
};

/// A new annotation type decided ahead of its append (see
/// [`Commands::plan_annotation_type`]); until the append gives it an id, the annotations that
/// use it name it by `placeholder` (below 0).
#[derive(Clone, Debug)]
pub struct PlannedType {
    pub placeholder: i64,
    /// The set whose product the type is made in: offered to its images.
    image_set: i64,
    product: i64,
    vector_type: i64,
    settings: TypeSettings,
    context: AnnotationTypeContext,
}

impl PlannedType {
    fn command(&self, id: i64) -> AnnotationTypeCommand {
        AnnotationTypeCommand::Create {
            id,
            product: self.product,
            vector_type: self.vector_type,
            settings: self.settings.clone(),
        }
    }

    /// What the rules of an annotation in `image_set` know of the type.
    pub(super) fn info(&self, image_set: i64) -> Result<TypeInfo, ApiError> {
        let vector_type = VectorType::try_from(self.vector_type)
            .map_err(|m| DomainError::invalid("annotation_type", m))?;
        Ok(TypeInfo {
            id: self.placeholder,
            vector_type,
            node_count: self.settings.node_count,
            active: self.settings.active,
            offered: image_set == self.image_set,
        })
    }

    /// The type's creation with its id `id`, in its own stream.
    pub(super) fn append(&self, id: i64) -> StreamAppend {
        let events = AnnotationTypeAggregate::decide(None, &self.command(id), &self.context)
            .expect("decided when planned, with the same input");
        StreamAppend::new(
            stream_of::<AnnotationTypeAggregate>(id),
            Expected::NoStream,
            new_events(&events),
        )
    }
}

/// A new account's details; the password is hashed already.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub username: String,
    pub email: String,
    pub password_hash: String,
    pub is_superuser: bool,
    pub is_staff: bool,
}

impl Commands {
    pub async fn create_user(&self, caller: &Caller, new: NewUser) -> Result<Written, ApiError> {
        let username_taken = self
            .read
            .user_by_username(new.username.trim())
            .await?
            .is_some();
        let context = UserContext {
            actor: caller.actor,
            username_taken,
            set_readable: false,
        };
        self.create::<UserAggregate>(
            caller,
            move |id| UserCommand::Create {
                id,
                username: new.username.clone(),
                email: new.email.clone(),
                password_hash: new.password_hash.clone(),
                is_superuser: new.is_superuser,
                is_staff: new.is_staff,
            },
            context,
        )
        .await
    }

    /// Changes password, activity or roles of user `id`.
    pub async fn user_command(
        &self,
        caller: &Caller,
        id: i64,
        command: &UserCommand,
    ) -> Result<Written, ApiError> {
        let set_readable = match command {
            UserCommand::Pin { image_set, .. } => self
                .read
                .readable_set(caller.actor, *image_set)
                .await?
                .is_some(),
            _ => false,
        };
        let context = UserContext {
            actor: caller.actor,
            username_taken: false,
            set_readable,
        };
        self.execute::<UserAggregate>(caller, id, None, command, &context)
            .await
    }

    pub async fn create_team(
        &self,
        caller: &Caller,
        name: String,
        website: String,
    ) -> Result<Written, ApiError> {
        let context = TeamContext {
            actor: caller.actor,
            name_taken: self.read.team_by_name(&name).await?.is_some(),
            target_active: true,
        };
        self.create::<TeamAggregate>(
            caller,
            move |id| TeamCommand::Create {
                id,
                name: name.clone(),
                website: website.clone(),
            },
            context,
        )
        .await
    }

    /// Membership commands. When the last member leaves, the team's sets are freed in the same
    /// append: public and locked, as EXACT does.
    pub async fn team_command(
        &self,
        caller: &Caller,
        team: i64,
        expected: Option<i64>,
        command: &TeamCommand,
    ) -> Result<Written, ApiError> {
        let target = match command {
            TeamCommand::AddMember { user } => Some(*user),
            _ => None,
        };
        let target_active = match target {
            Some(user) => self.read.user(user).await?.is_some_and(|u| u.is_active),
            None => true,
        };
        let name_taken = match command {
            TeamCommand::Change {
                name: Some(name), ..
            } => self
                .read
                .team_by_name(name.trim())
                .await?
                .is_some_and(|other| other.id != team),
            _ => false,
        };
        let context = TeamContext {
            actor: caller.actor,
            name_taken,
            target_active,
        };
        let sets = self.read.image_sets_of_team(team).await?;
        self.execute_with::<TeamAggregate>(
            caller,
            team,
            expected,
            command,
            &context,
            |event, more| {
                if let TeamEvent::TeamDissolved { .. } = event {
                    for set in &sets {
                        let freed = ImageSetEvent::ImageSetFreed {
                            id: set.id,
                            public_collaboration: set.public_collaboration,
                        };
                        more.push(consequence::<ImageSetAggregate>(set.id, &freed));
                    }
                }
            },
        )
        .await
    }

    pub async fn create_product(
        &self,
        caller: &Caller,
        team: i64,
        name: String,
        description: String,
    ) -> Result<Written, ApiError> {
        self.live_team(team).await?;
        let context = ProductContext {
            actor: caller.actor,
            team_role: self.read.team_role(team, caller.actor.id).await?,
            name_taken: self.read.product_by_name(team, &name).await?.is_some(),
            set_permissions: Permissions::NONE,
        };
        self.create::<ProductAggregate>(
            caller,
            move |id| ProductCommand::Create {
                id,
                team,
                name: name.clone(),
                description: description.clone(),
            },
            context,
        )
        .await
    }

    pub async fn product_command(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
        command: &ProductCommand,
    ) -> Result<Written, ApiError> {
        let product = self
            .read
            .product(id)
            .await?
            .ok_or(DomainError::NotFound("product"))?;
        let name_taken = match command {
            ProductCommand::Change {
                name: Some(name), ..
            } => self
                .read
                .product_by_name(product.team, name)
                .await?
                .is_some_and(|other| other.id != id),
            _ => false,
        };
        let set_permissions = match command {
            ProductCommand::Link { image_set } | ProductCommand::Unlink { image_set } => {
                self.set_access(caller, *image_set).await?.1
            }
            _ => Permissions::NONE,
        };
        let context = ProductContext {
            actor: caller.actor,
            team_role: self.read.team_role(product.team, caller.actor.id).await?,
            name_taken,
            set_permissions,
        };
        // A deleted product takes its types and their live annotations with it, in the same
        // append, as a deleted type takes its annotations (EXACT's cascade).
        let (types, live) = match command {
            ProductCommand::Delete => self.live_types_and_annotations(id).await?,
            _ => (Vec::new(), Vec::new()),
        };
        self.execute_with::<ProductAggregate>(
            caller,
            id,
            expected,
            command,
            &context,
            |event, more| {
                if let ProductEvent::ProductDeleted { .. } = event {
                    for id in &types {
                        let deleted = AnnotationTypeEvent::AnnotationTypeDeleted { id: *id };
                        more.push(consequence::<AnnotationTypeAggregate>(*id, &deleted));
                    }
                    more.extend(live.iter().map(annotation_deleted));
                }
            },
        )
        .await
    }

    /// The live types of product `id`, and their live annotations.
    async fn live_types_and_annotations(
        &self,
        id: i64,
    ) -> Result<(Vec<i64>, Vec<exact_projections::annotations::AnnotationRow>), ApiError> {
        let types: Vec<i64> = self
            .read
            .readable_types(exact_domain::Actor::SYSTEM)
            .await?
            .into_iter()
            .filter(|t| t.product == id)
            .map(|t| t.id)
            .collect();
        if types.is_empty() {
            return Ok((types, Vec::new()));
        }
        let live = self
            .read
            .annotations(&AnnotationQuery {
                annotation_types: types.clone(),
                deleted: Some(false),
                ..AnnotationQuery::default()
            })
            .await?;
        Ok((types, live))
    }

    pub async fn create_annotation_type(
        &self,
        caller: &Caller,
        product: i64,
        vector_type: i64,
        settings: TypeSettings,
    ) -> Result<Written, ApiError> {
        let context = self
            .new_type_context(caller, product, &settings.name)
            .await?;
        self.create::<AnnotationTypeAggregate>(
            caller,
            move |id| AnnotationTypeCommand::Create {
                id,
                product,
                vector_type,
                settings: settings.clone(),
            },
            context,
        )
        .await
    }

    /// A type to make in the append of the annotations that use it (an import's
    /// `create_types`) in a product linked to `image_set`: decided now against the read
    /// models, given its id in the append.
    pub async fn plan_annotation_type(
        &self,
        caller: &Caller,
        (placeholder, image_set): (i64, i64),
        product: i64,
        vector_type: i64,
        settings: TypeSettings,
    ) -> Result<PlannedType, ApiError> {
        let context = self
            .new_type_context(caller, product, &settings.name)
            .await?;
        let planned = PlannedType {
            placeholder,
            image_set,
            product,
            vector_type,
            settings,
            context,
        };
        AnnotationTypeAggregate::decide(None, &planned.command(0), &planned.context)?;
        Ok(planned)
    }

    /// What the rules of a new type named `name` in `product` need to know.
    async fn new_type_context(
        &self,
        caller: &Caller,
        product: i64,
        name: &str,
    ) -> Result<AnnotationTypeContext, ApiError> {
        let team = self
            .read
            .product(product)
            .await?
            .ok_or(DomainError::NotFound("product"))?
            .team;
        Ok(AnnotationTypeContext {
            actor: caller.actor,
            team_role: self.read.team_role(team, caller.actor.id).await?,
            name_taken: self
                .read
                .annotation_type_by_name(product, name)
                .await?
                .is_some(),
            misfits: 0,
        })
    }

    pub async fn change_annotation_type(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
        settings: TypeSettings,
    ) -> Result<Written, ApiError> {
        let command = AnnotationTypeCommand::Change(settings);
        self.annotation_type_command(caller, id, expected, &command)
            .await
    }

    /// Changes, re-types or deletes type `id`. A new vector type is refused with 409 naming
    /// the live annotations it would make invalid; a delete deletes the type's live
    /// annotations in the same append, as EXACT's cascade does.
    pub async fn annotation_type_command(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
        command: &AnnotationTypeCommand,
    ) -> Result<Written, ApiError> {
        let current = self
            .read
            .annotation_type(id)
            .await?
            .ok_or(DomainError::NotFound("annotation type"))?;
        let team = self
            .read
            .product(current.product)
            .await?
            .ok_or(DomainError::NotFound("product"))?
            .team;
        let name_taken = match command {
            AnnotationTypeCommand::Change(settings) => self
                .read
                .annotation_type_by_name(current.product, &settings.name)
                .await?
                .is_some_and(|other| other.id != id),
            _ => false,
        };
        let live = match command {
            AnnotationTypeCommand::ChangeVectorType(_) | AnnotationTypeCommand::Delete => {
                self.read
                    .annotations(&AnnotationQuery {
                        annotation_types: vec![id],
                        deleted: Some(false),
                        ..AnnotationQuery::default()
                    })
                    .await?
            }
            _ => Vec::new(),
        };
        let misfits = match command {
            AnnotationTypeCommand::ChangeVectorType(code) => {
                self.misfits(&current, *code, &live).await?
            }
            _ => Vec::new(),
        };
        let context = AnnotationTypeContext {
            actor: caller.actor,
            team_role: self.read.team_role(team, caller.actor.id).await?,
            name_taken,
            misfits: misfits.len(),
        };
        let written = self
            .execute_with::<AnnotationTypeAggregate>(
                caller,
                id,
                expected,
                command,
                &context,
                |event, more| {
                    if let AnnotationTypeEvent::AnnotationTypeDeleted { .. } = event {
                        more.extend(live.iter().map(annotation_deleted));
                    }
                },
            )
            .await;
        match written {
            // Only the refusal for the misfits names them (a caller refused for another reason,
            // such as not managing the team, learns nothing of the annotations).
            Err(e) if e.code == crate::error::Code::InUse => {
                // Name the annotations (the first 50) so that they can be fixed or deleted.
                let shown: Vec<String> = misfits.iter().take(50).map(i64::to_string).collect();
                let mut e = e;
                e.message = format!("{}: annotations {}", e.message, shown.join(", "));
                Err(e)
            }
            other => other,
        }
    }

    /// The live annotations of `current` whose vectors the vector type `code` would refuse.
    async fn misfits(
        &self,
        current: &exact_projections::catalog_read::AnnotationTypeRow,
        code: i64,
        live: &[exact_projections::annotations::AnnotationRow],
    ) -> Result<Vec<i64>, ApiError> {
        let Ok(vector_type) = VectorType::try_from(code) else {
            return Ok(Vec::new()); // the domain names the bad code
        };
        let mut images = std::collections::BTreeMap::new();
        let mut misfits = Vec::new();
        for annotation in live {
            if let std::collections::btree_map::Entry::Vacant(slot) = images.entry(annotation.image)
            {
                slot.insert(self.read.image(annotation.image).await?);
            }
            let Some(Some(image)) = images.get(&annotation.image) else {
                continue;
            };
            let fit = Fit {
                vector_type,
                node_count: u32::try_from(current.node_count).unwrap_or(0),
                image_width: image.width as f64,
                image_height: image.height as f64,
                image_frames: u32::try_from(image.frames).unwrap_or(1),
            };
            let value: Option<serde_json::Value> = annotation
                .vector
                .as_deref()
                .and_then(|v| serde_json::from_str(v).ok());
            let fits = match Vector::from_json(value.as_ref().unwrap_or(&serde_json::Value::Null)) {
                Ok(vector) => validate(vector.as_ref(), &fit).is_ok(),
                Err(_) => false,
            };
            if !fits {
                misfits.push(annotation.id);
            }
        }
        Ok(misfits)
    }

    pub async fn create_image_set(
        &self,
        caller: &Caller,
        team: i64,
        settings: SetSettings,
    ) -> Result<Written, ApiError> {
        self.live_team(team).await?;
        let context = ImageSetContext {
            actor: caller.actor,
            team_role: self.read.team_role(team, caller.actor.id).await?,
            permissions: Permissions::NONE,
            name_taken: self
                .read
                .image_set_by_name(team, &settings.name)
                .await?
                .is_some(),
            // A new set has no products linked yet: it offers no type.
            main_type_offered: false,
        };
        self.create::<ImageSetAggregate>(
            caller,
            move |id| ImageSetCommand::Create {
                id,
                team,
                settings: settings.clone(),
            },
            context,
        )
        .await
    }

    pub async fn image_set_command(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
        command: &ImageSetCommand,
    ) -> Result<Written, ApiError> {
        let (set, permissions) = self.set_access(caller, id).await?;
        let (name_taken, main_type_offered) = match command {
            ImageSetCommand::Change(settings) => {
                let taken = match set.team {
                    Some(team) => self
                        .read
                        .image_set_by_name(team, &settings.name)
                        .await?
                        .is_some_and(|other| other.id != id),
                    None => false,
                };
                let offered = match settings.main_annotation_type {
                    Some(t) => self.read.type_offered(id, t).await?,
                    None => true,
                };
                (taken, offered)
            }
            _ => (false, false),
        };
        let context = ImageSetContext {
            actor: caller.actor,
            team_role: TeamRole::None,
            permissions,
            name_taken,
            main_type_offered,
        };
        self.execute::<ImageSetAggregate>(caller, id, expected, command, &context)
            .await
    }

    /// Registers a stored, measured file as an image of `image_set`.
    pub async fn add_image(
        &self,
        caller: &Caller,
        image_set: i64,
        file: ImageFile,
    ) -> Result<Written, ApiError> {
        let (_, permissions) = self.set_access(caller, image_set).await?;
        let duplicate = self
            .read
            .duplicate_image(image_set, &file.name, &file.checksum)
            .await?
            .is_some();
        let context = ImageContext {
            permissions,
            duplicate,
        };
        self.create::<ImageAggregate>(
            caller,
            move |id| ImageCommand::Add {
                id,
                image_set,
                file: file.clone(),
            },
            context,
        )
        .await
    }

    pub async fn delete_image(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
    ) -> Result<Written, ApiError> {
        let image = self
            .read
            .image(id)
            .await?
            .ok_or(DomainError::NotFound("image"))?;
        let (_, permissions) = self.set_access(caller, image.image_set).await?;
        let context = ImageContext {
            permissions,
            duplicate: false,
        };
        self.execute::<ImageAggregate>(caller, id, expected, &ImageCommand::Delete, &context)
            .await
    }

    /// Corrects what image `id`'s file claims (name, resolution, objective power, time).
    pub async fn describe_image(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
        description: ImageDescription,
    ) -> Result<Written, ApiError> {
        let image = self
            .read
            .image(id)
            .await?
            .ok_or(DomainError::NotFound("image"))?;
        let (_, permissions) = self.set_access(caller, image.image_set).await?;
        let duplicate = description.name.trim() != image.name
            && self
                .read
                .duplicate_image(image.image_set, description.name.trim(), "")
                .await?
                .is_some();
        let context = ImageContext {
            permissions,
            duplicate,
        };
        let command = ImageCommand::Describe(description);
        self.execute::<ImageAggregate>(caller, id, expected, &command, &context)
            .await
    }

    /// The viewer's report that the caller opened (or closed) an image.
    pub async fn record_image_access(
        &self,
        caller: &Caller,
        image: i64,
        opened: bool,
    ) -> Result<i64, ApiError> {
        let loaded = self.load::<ImageAggregate>(image).await?;
        let state = loaded.state.ok_or(DomainError::NotFound("image"))?;
        let (_, permissions) = self.set_access(caller, state.image_set).await?;
        let event = record_access(&state, caller.actor.id, opened, permissions)?;
        let (name, payload) = event.to_parts();
        let written = self
            .store
            .append(
                &access_stream(image),
                Expected::Any,
                vec![NewEvent::new(name, payload)],
                caller.append_context(),
            )
            .await?;
        Ok(written[0].position)
    }

    /// Corrects (`Some(action)`) or retracts access log entry `entry`.
    pub async fn amend_image_access(
        &self,
        caller: &Caller,
        entry: &exact_projections::catalog_read::AccessRow,
        action: Option<i64>,
    ) -> Result<(), ApiError> {
        let event = amend_access(
            entry.image,
            entry.position,
            entry.user_id,
            action,
            caller.actor,
        )?;
        let (name, payload) = event.to_parts();
        self.store
            .append(
                &access_stream(entry.image),
                Expected::Any,
                vec![NewEvent::new(name, payload)],
                caller.append_context(),
            )
            .await?;
        Ok(())
    }

    pub async fn create_export_format(
        &self,
        caller: &Caller,
        team: i64,
        settings: FormatSettings,
    ) -> Result<Written, ApiError> {
        self.live_team(team).await?;
        let types: Vec<i64> = settings.annotations_types.iter().copied().collect();
        let context = ExportFormatContext {
            actor: caller.actor,
            team_role: self.read.team_role(team, caller.actor.id).await?,
            name_taken: self
                .read
                .export_format_named(&settings.name)
                .await?
                .is_some(),
            types_in_team: self.read.types_in_team(team, &types).await?,
        };
        self.create::<ExportFormatAggregate>(
            caller,
            move |id| ExportFormatCommand::Create {
                id,
                team: Some(team),
                settings: settings.clone(),
            },
            context,
        )
        .await
    }

    /// The store's default format (`format=exact`): EXACT's default templates as a format of
    /// no team, public, made by Exact itself the first time a store starts (an older store on
    /// its first start with this version). Made once: one deleted since stays deleted, and
    /// `format=exact` then exports with EXACT's templates as built in. A team format already
    /// named like it leaves the store without one (said in the server's log).
    pub async fn ensure_default_format(&self) -> Result<(), ApiError> {
        if self.read.default_export_format_made().await? {
            return Ok(());
        }
        let settings = FormatSettings {
            name: DEFAULT_FORMAT_NAME.into(),
            public: true,
            ..FormatSettings::default()
        };
        let context = ExportFormatContext {
            actor: Actor::SYSTEM,
            team_role: TeamRole::None,
            name_taken: self
                .read
                .export_format_named(&settings.name)
                .await?
                .is_some(),
            types_in_team: true,
        };
        let made = self
            .create::<ExportFormatAggregate>(
                &Caller::system(),
                move |id| ExportFormatCommand::Create {
                    id,
                    team: None,
                    settings: settings.clone(),
                },
                context,
            )
            .await;
        let Err(e) = made else { return Ok(()) };
        if self.read.default_export_format_made().await? {
            // Another server on the same database made it first.
            return Ok(());
        }
        if e.code == crate::error::Code::Taken {
            tracing::warn!(
                "no default export format: a team's format is named {DEFAULT_FORMAT_NAME:?}; \
                 format=exact exports with EXACT's templates as built in"
            );
            return Ok(());
        }
        Err(e)
    }

    pub async fn export_format_command(
        &self,
        caller: &Caller,
        id: i64,
        expected: Option<i64>,
        command: &ExportFormatCommand,
    ) -> Result<Written, ApiError> {
        let team = self
            .read
            .export_format_team(id)
            .await?
            .ok_or(DomainError::NotFound("export format"))?;
        let (name_taken, types_in_team) = match command {
            ExportFormatCommand::Change(settings) => {
                let types: Vec<i64> = settings.annotations_types.iter().copied().collect();
                let types_in_team = match team {
                    Some(team) => self.read.types_in_team(team, &types).await?,
                    // The default format is every team's: it names no team's types.
                    None => types.is_empty(),
                };
                (
                    self.read
                        .export_format_named(&settings.name)
                        .await?
                        .is_some_and(|other| other != id),
                    types_in_team,
                )
            }
            _ => (false, true),
        };
        let team_role = match team {
            Some(team) => self.read.team_role(team, caller.actor.id).await?,
            None => TeamRole::None,
        };
        let context = ExportFormatContext {
            actor: caller.actor,
            team_role,
            name_taken,
            types_in_team,
        };
        self.execute::<ExportFormatAggregate>(caller, id, expected, command, &context)
            .await
    }

    /// Records an export handed out through the service (the route checked read permission).
    pub async fn record_export(
        &self,
        caller: &Caller,
        event: SetExportEvent,
    ) -> Result<(), ApiError> {
        let SetExportEvent::SetExported { image_set, .. } = &event;
        let stream = set_exports_stream(*image_set);
        let (name, payload) = event.to_parts();
        self.store
            .append(
                &stream,
                Expected::Any,
                vec![NewEvent::new(name, payload)],
                caller.append_context(),
            )
            .await?;
        Ok(())
    }

    /// The exports of `image_set` handed out through the service, newest first, at most `limit`.
    pub async fn set_exports(
        &self,
        image_set: i64,
        limit: usize,
    ) -> Result<Vec<(Envelope, SetExportEvent)>, ApiError> {
        let envelopes = self
            .store
            .read_stream(&set_exports_stream(image_set), 1)
            .await?;
        let mut exports = Vec::new();
        for envelope in envelopes.into_iter().rev().take(limit) {
            if let Some(Ok(event)) =
                SetExportEvent::from_json(&envelope.event_type, &envelope.payload)
            {
                exports.push((envelope, event));
            }
        }
        Ok(exports)
    }

    /// Names `image_sets` as they stood at `position` (default: now).
    pub async fn create_dataset_version(
        &self,
        caller: &Caller,
        name: String,
        position: Option<i64>,
        image_sets: BTreeSet<i64>,
    ) -> Result<Written, ApiError> {
        let mut sets_readable = true;
        for set in &image_sets {
            sets_readable &= self.read.readable_set(caller.actor, *set).await?.is_some();
        }
        let head = self.store.last_position().await?;
        let context = DatasetVersionContext {
            actor: caller.actor,
            name_taken: self.read.dataset_version_named(&name).await?.is_some(),
            head,
            sets_readable,
        };
        let position = position.unwrap_or(head);
        create_dataset_version(false, 0, &name, position, &image_sets, &context)?;
        let build = Box::new(move |ids: &mut exact_store::IdAllocator| {
            let id = ids.next("dataset_version");
            let event = create_dataset_version(false, id, &name, position, &image_sets, &context)
                .expect("decided above with the same input");
            let (name, payload) = event.to_parts();
            vec![StreamAppend::new(
                dataset_version_stream(id),
                Expected::NoStream,
                vec![NewEvent::new(name, payload)],
            )]
        });
        let written = self
            .store
            .append_built(caller.append_context(), build)
            .await?;
        Ok(Written::stored(&written[0]))
    }

    /// The live set and the caller's permissions on it; 404 when it is gone or unreadable, so
    /// that a set's existence is not revealed to those who may not read it.
    pub async fn set_access(
        &self,
        caller: &Caller,
        image_set: i64,
    ) -> Result<(exact_projections::catalog_read::ImageSetRow, Permissions), ApiError> {
        let found = self.readable_set(caller.actor, image_set).await?;
        let (set, permissions) = found.ok_or(DomainError::NotFound("image set"))?;
        debug_assert!(permissions.contains(Permission::Read));
        Ok((set, permissions))
    }

    /// Whether `caller` may link a product to `image_set` (they may edit the set), asked before
    /// a product is created with its links, so that a refused link leaves no product behind.
    pub async fn may_link(&self, caller: &Caller, image_set: i64) -> Result<(), ApiError> {
        let (_, permissions) = self.set_access(caller, image_set).await?;
        if permissions.contains(Permission::EditSet) {
            Ok(())
        } else {
            Err(DomainError::ForbiddenInSet(Permission::EditSet).into())
        }
    }

    async fn live_team(&self, team: i64) -> Result<(), ApiError> {
        match self.read.team(team).await? {
            Some(t) if !t.dissolved => Ok(()),
            Some(_) => Err(DomainError::Deleted("team").into()),
            None => Err(DomainError::NotFound("team").into()),
        }
    }
}

/// The default format's name (EXACT's limit is 20 characters).
pub const DEFAULT_FORMAT_NAME: &str = "EXACT default";

/// The deletion of `annotation` that follows from its type's (or product's).
fn annotation_deleted(annotation: &exact_projections::annotations::AnnotationRow) -> StreamAppend {
    let deleted = AnnotationEvent::AnnotationDeleted { id: annotation.id };
    consequence::<AnnotationAggregate>(annotation.id, &deleted)
}
