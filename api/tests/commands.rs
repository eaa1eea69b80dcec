//! Command handling end to end on both backends: the rules see the read models, the events
//! land in the log with who and why, and the read models answer at once.

use std::collections::BTreeSet;
use std::sync::Arc;

use exact_api::commands::{AnnotationInput, Caller, Commands, NewAnnotations, NewUser};
use exact_domain::annotation::{AnnotationChanges, AnnotationCommand, Consensus};
use exact_domain::annotation_type::TypeSettings;
use exact_domain::export_format::FormatSettings;
use exact_domain::image::{ImageDescription, ImageFile};
use exact_domain::image_set::{ImageSetCommand, SetSettings};
use exact_domain::product::ProductCommand;
use exact_domain::team::TeamCommand;
use exact_domain::user::UserCommand;
use exact_domain::Actor;
use exact_projections::annotation_query::{AnnotationQuery, TimeRange};
use exact_projections::catalog_read::Statistics;
use exact_projections::{ReadDb, Rect};
use exact_store::testing::TestDb;
use exact_store::{Metadata, Source};
use serde_json::json;

exact_store::on_both_backends!(
    a_team_builds_a_set_and_annotates_it,
    names_are_unique_and_outsiders_see_nothing,
    stale_versions_are_refused_and_concurrent_verdicts_both_land,
    the_last_member_leaving_frees_the_teams_sets,
    filters_answer_from_the_read_models_now_and_as_of,
    rebuilt_catalog_and_annotations_equal_the_incremental_ones,
);

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

struct World {
    commands: Commands,
    alice: Caller,
    bob: Caller,
    carol: Caller,
}

async fn world(db: &TestDb) -> World {
    let store = db.open_with_projections(exact_projections::all()).await;
    let read = ReadDb::connect(&db.url).await.unwrap();
    let commands = Commands::new(store, read);
    let mut callers = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let user = commands
            .create_user(
                &Caller::system(),
                NewUser {
                    username: name.into(),
                    email: format!("{name}@example.org"),
                    password_hash: HASH.into(),
                    is_superuser: false,
                    is_staff: false,
                },
            )
            .await
            .unwrap();
        callers.push(Caller::new(Actor::user(user.id), Source::Api));
    }
    let [alice, bob, carol] = callers.try_into().unwrap();
    World {
        commands,
        alice,
        bob,
        carol,
    }
}

fn settings(name: &str) -> SetSettings {
    SetSettings {
        name: name.into(),
        ..SetSettings::default()
    }
}

fn file(name: &str) -> ImageFile {
    ImageFile {
        name: name.into(),
        filename: name.into(),
        checksum: format!(
            "{:064x}",
            name.len() * 7919 + name.bytes().map(usize::from).sum::<usize>()
        ),
        width: 10_000,
        height: 8_000,
        mpp: Some(0.25),
        objective_power: Some(40.0),
        depth: 1,
        frames: 1,
        channels: 3,
        image_type: 0,
    }
}

/// Alice's team "Pathology" with Bob, a set with one image, a product linked to it with a box
/// type and a global type. Returns (team, set, image, box type, global type).
async fn lab(w: &World) -> (i64, i64, i64, i64, i64) {
    let c = &w.commands;
    let team = c
        .create_team(&w.alice, "Pathology".into(), String::new())
        .await
        .unwrap()
        .id;
    c.team_command(
        &w.alice,
        team,
        None,
        &TeamCommand::AddMember {
            user: w.bob.actor.id,
        },
    )
    .await
    .unwrap();
    let set = c
        .create_image_set(&w.alice, team, settings("Slides"))
        .await
        .unwrap()
        .id;
    let product = c
        .create_product(&w.alice, team, "Mitosis".into(), String::new())
        .await
        .unwrap()
        .id;
    let boxes = c
        .create_annotation_type(
            &w.alice,
            product,
            1,
            TypeSettings {
                name: "Figure".into(),
                ..TypeSettings::default()
            },
        )
        .await
        .unwrap()
        .id;
    let global = c
        .create_annotation_type(
            &w.alice,
            product,
            7,
            TypeSettings {
                name: "Tumour".into(),
                ..TypeSettings::default()
            },
        )
        .await
        .unwrap()
        .id;
    c.product_command(
        &w.alice,
        product,
        None,
        &ProductCommand::Link { image_set: set },
    )
    .await
    .unwrap();
    let image = c
        .add_image(&w.bob, set, file("slide-1.svs"))
        .await
        .unwrap()
        .id;
    (team, set, image, boxes, global)
}

fn boxed(t: i64, x: f64, y: f64) -> AnnotationInput {
    AnnotationInput::new(t, json!({"x1": x, "y1": y, "x2": x + 40.0, "y2": y + 30.0}))
}

async fn a_team_builds_a_set_and_annotates_it(db: TestDb) {
    let w = world(&db).await;
    let (_, set, image, boxes, global) = lab(&w).await;
    let c = &w.commands;
    let retry = uuid::Uuid::from_u128(42);
    let mut again = boxed(boxes, 500.0, 500.0);
    again.unique_identifier = Some(retry);
    let written = c
        .create_annotations(
            &w.bob,
            NewAnnotations {
                image,
                annotations: vec![
                    boxed(boxes, 100.0, 100.0),
                    again.clone(),
                    again.clone(),
                    AnnotationInput::new(global, json!(null)),
                ],
            },
        )
        .await
        .unwrap();
    assert_eq!(written.len(), 4);
    assert!(written.iter().take(2).all(|w| w.position.is_some()));
    assert_eq!(
        written[2].id, written[1].id,
        "the same UUID twice in one list is one annotation"
    );
    assert_eq!(written[2].position, None);
    // The whole list was one append: consecutive positions.
    assert_eq!(
        written[1].position.unwrap(),
        written[0].position.unwrap() + 1
    );
    // A caller that says it checked the UUIDs (an import) but raced another writer: the read
    // model's unique index refuses the whole append, and the UUID is named as a lookup names it.
    // A type planned to be made with them (an import's create_types) is not made either.
    let head = c.store.last_position().await.unwrap();
    let product = c
        .read
        .product_links()
        .await
        .unwrap()
        .into_iter()
        .find(|(_, linked)| *linked == set)
        .unwrap()
        .0;
    let plan = || async {
        let settings = exact_domain::annotation_type::TypeSettings {
            name: "Mitosis".into(),
            ..Default::default()
        };
        c.plan_annotation_type(&w.alice, (-1, set), product, 1, settings)
            .await
            .unwrap()
    };
    let mut raced = boxed(boxes, 700.0, 700.0);
    raced.unique_identifier = Some(retry);
    let err = c
        .create_annotations_with(
            &w.alice,
            NewAnnotations {
                image,
                annotations: vec![boxed(-1, 600.0, 600.0), raced],
            },
            exact_api::commands::CreateOptions {
                verify: false,
                uuids_checked: true,
                new_types: vec![plan().await],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code.name(), "unique_identifier_taken", "{err}");
    assert_eq!(
        c.store.last_position().await.unwrap(),
        head,
        "nothing written"
    );
    let mitosis = || c.read.annotation_type_by_name(product, "Mitosis");
    assert!(
        mitosis().await.unwrap().is_none(),
        "the planned type was not made"
    );
    // Retried later: nothing new.
    let retried = c
        .create_annotations(
            &w.bob,
            NewAnnotations {
                image,
                annotations: vec![again],
            },
        )
        .await
        .unwrap();
    assert_eq!((retried[0].id, retried[0].position), (written[1].id, None));
    // A second global label of the same type is refused, and the refusal writes nothing.
    let head = c.store.last_position().await.unwrap();
    let err = c
        .create_annotations(
            &w.alice,
            NewAnnotations {
                image,
                annotations: vec![
                    boxed(boxes, 1.0, 1.0),
                    AnnotationInput::new(global, json!(null)),
                ],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code.name(), "already_exists");
    assert_eq!(c.store.last_position().await.unwrap(), head);
    // A vector outside the image is refused with the field named.
    let err = c
        .create_annotations(
            &w.alice,
            NewAnnotations {
                image,
                annotations: vec![boxed(boxes, 20_000.0, 1.0)],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status().as_u16(), err.field.as_deref()),
        (422, Some("vector"))
    );

    // Verdicts: Alice accepts the first, Bob rejects it, Alice accepts the second.
    let first = written[0].id;
    let verify = |v| AnnotationCommand::Verify { verified: v };
    c.annotation_command(&w.alice, first, None, &verify(true))
        .await
        .unwrap();
    c.annotation_command(
        &w.bob.clone().with_reason(Some("not a mitosis".into())),
        first,
        None,
        &verify(false),
    )
    .await
    .unwrap();
    c.annotation_command(&w.alice, written[1].id, None, &verify(true))
        .await
        .unwrap();
    let stats = c.read.image_statistics(image, Some(boxes)).await.unwrap();
    assert_eq!(
        stats,
        Statistics {
            total: 2,
            accepted: 1,
            rejected: 1,
            unverified: 0
        }
    );
    let all = c.read.set_statistics(set, None).await.unwrap();
    assert_eq!(
        all,
        Statistics {
            total: 3,
            accepted: 1,
            rejected: 1,
            unverified: 1
        }
    );
    // Deleting takes it out of the counts; restoring puts it back.
    c.annotation_command(&w.alice, first, None, &AnnotationCommand::Delete)
        .await
        .unwrap();
    assert_eq!(c.read.type_statistics(boxes).await.unwrap().total, 1);
    c.annotation_command(&w.alice, first, None, &AnnotationCommand::Restore)
        .await
        .unwrap();
    assert_eq!(c.read.type_statistics(boxes).await.unwrap(), stats);

    // The reason and the actor travel in the metadata.
    let stream = c
        .store
        .read_stream(&format!("annotation-{first}"), 1)
        .await
        .unwrap();
    let rejected: Metadata = stream[2].metadata().unwrap();
    assert_eq!(rejected.actor, Some(w.bob.actor.id));
    assert_eq!(rejected.reason.as_deref(), Some("not a mitosis"));
    let history = c.read.history(first).await.unwrap();
    assert_eq!(history.len(), 5);

    // The access log.
    c.commands_access(&w, image).await;
}

trait AccessCheck {
    async fn commands_access(&self, w: &World, image: i64);
}

impl AccessCheck for Commands {
    async fn commands_access(&self, w: &World, image: i64) {
        self.record_image_access(&w.bob, image, true).await.unwrap();
        self.record_image_access(&w.bob, image, false)
            .await
            .unwrap();
        let err = self
            .record_image_access(&w.carol, image, true)
            .await
            .unwrap_err();
        assert_eq!(
            err.status().as_u16(),
            404,
            "an outsider cannot even see the set"
        );
        let log = self.read.image_access(image).await.unwrap();
        let actions: Vec<(i64, i64)> = log.iter().map(|r| (r.user_id, r.action)).collect();
        assert_eq!(actions, vec![(w.bob.actor.id, 1), (w.bob.actor.id, 2)]);
    }
}

async fn names_are_unique_and_outsiders_see_nothing(db: TestDb) {
    let w = world(&db).await;
    let c = &w.commands;
    let (team, set, image, boxes, _) = lab(&w).await;
    let taken = |e: exact_api::error::ApiError| (e.status().as_u16(), e.code.name(), e.field);
    let dup_user = c
        .create_user(
            &Caller::system(),
            NewUser {
                username: "ALICE".into(),
                email: String::new(),
                password_hash: HASH.into(),
                is_superuser: false,
                is_staff: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(taken(dup_user), (409, "taken", Some("username".into())));
    let dup_team = c
        .create_team(&w.carol, "Pathology".into(), String::new())
        .await
        .unwrap_err();
    assert_eq!(taken(dup_team), (409, "taken", Some("name".into())));
    let dup_set = c
        .create_image_set(&w.bob, team, settings("Slides"))
        .await
        .unwrap_err();
    assert_eq!(dup_set.code.name(), "taken");
    let dup_image = c
        .add_image(&w.alice, set, file("slide-1.svs"))
        .await
        .unwrap_err();
    assert_eq!(dup_image.code.name(), "taken");
    // Only a superuser creates accounts.
    let err = c
        .create_user(
            &w.alice,
            NewUser {
                username: "dave".into(),
                email: String::new(),
                password_hash: HASH.into(),
                is_superuser: false,
                is_staff: false,
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status().as_u16(), 403);
    // Carol, in no team, sees no set, no image and no type; her commands find nothing.
    assert!(c
        .read
        .readable_sets(w.carol.actor)
        .await
        .unwrap()
        .is_empty());
    assert!(c
        .read
        .readable_images(w.carol.actor, None)
        .await
        .unwrap()
        .is_empty());
    assert!(c
        .read
        .readable_types(w.carol.actor)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        c.read
            .readable_images(w.bob.actor, Some(set))
            .await
            .unwrap()
            .len(),
        1
    );
    let err = c
        .create_annotations(
            &w.carol,
            NewAnnotations {
                image,
                annotations: vec![boxed(boxes, 1.0, 1.0)],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status().as_u16(), 404);
    // Made public, the set is readable but not annotatable for her.
    let public = SetSettings {
        public: true,
        ..settings("Slides")
    };
    c.image_set_command(&w.alice, set, None, &ImageSetCommand::Change(public))
        .await
        .unwrap();
    assert_eq!(c.read.readable_sets(w.carol.actor).await.unwrap().len(), 1);
    assert_eq!(c.read.readable_types(w.carol.actor).await.unwrap().len(), 2);
    let err = c
        .create_annotations(
            &w.carol,
            NewAnnotations {
                image,
                annotations: vec![boxed(boxes, 1.0, 1.0)],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.status().as_u16(), 403);
    // Export formats: names are global; members manage them.
    let format = FormatSettings {
        name: "Lines".into(),
        annotations_types: BTreeSet::from([boxes]),
        ..FormatSettings::default()
    };
    c.create_export_format(&w.bob, team, format.clone())
        .await
        .unwrap();
    assert_eq!(
        c.create_export_format(&w.alice, team, format)
            .await
            .unwrap_err()
            .code
            .name(),
        "taken"
    );
    // A dataset version of a set names the log's position.
    let version = c
        .create_dataset_version(&w.alice, "v1".into(), None, BTreeSet::from([set]))
        .await
        .unwrap();
    let (position, sets) = c.read.dataset_version(version.id).await.unwrap().unwrap();
    assert_eq!((position + 1, sets), (version.position.unwrap(), vec![set]));
}

async fn stale_versions_are_refused_and_concurrent_verdicts_both_land(db: TestDb) {
    let w = world(&db).await;
    let c = &w.commands;
    let (_, _, image, boxes, _) = lab(&w).await;
    let a = c
        .create_annotations(
            &w.alice,
            NewAnnotations {
                image,
                annotations: vec![boxed(boxes, 10.0, 10.0)],
            },
        )
        .await
        .unwrap()[0];
    let moved = AnnotationCommand::Change(AnnotationChanges {
        vector: Some(json!({"x1": 20, "y1": 20, "x2": 60, "y2": 50})),
        ..AnnotationChanges::default()
    });
    let v2 = c
        .annotation_command(&w.alice, a.id, Some(a.version), &moved)
        .await
        .unwrap();
    assert_eq!(v2.version, 2);
    let err = c
        .annotation_command(&w.bob, a.id, Some(a.version), &AnnotationCommand::Delete)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status().as_u16(), err.code.name()),
        (412, "stale_version")
    );
    assert!(err.message.contains("version 2"), "{}", err.message);
    // Two verdicts at once on one stream, no If-Match: one conflicts and is re-decided.
    let (x, y) = tokio::join!(
        c.annotation_command(
            &w.alice,
            a.id,
            None,
            &AnnotationCommand::Verify { verified: true }
        ),
        c.annotation_command(
            &w.bob,
            a.id,
            None,
            &AnnotationCommand::Verify { verified: true }
        ),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_ne!(x.version, y.version);
    assert_eq!(c.read.verifications(a.id).await.unwrap().len(), 2);
    assert_eq!(
        c.read.image_statistics(image, None).await.unwrap().accepted,
        1
    );
}

async fn the_last_member_leaving_frees_the_teams_sets(db: TestDb) {
    let w = world(&db).await;
    let c = &w.commands;
    let (team, set, _, _, _) = lab(&w).await;
    c.team_command(&w.alice, team, None, &TeamCommand::Leave)
        .await
        .unwrap();
    assert!(!c.read.team(team).await.unwrap().unwrap().dissolved);
    c.team_command(&w.bob, team, None, &TeamCommand::Leave)
        .await
        .unwrap();
    let gone = c.read.team(team).await.unwrap().unwrap();
    assert!(gone.dissolved);
    assert!(c.read.memberships(team).await.unwrap().is_empty());
    let freed = c.read.image_set(set).await.unwrap().unwrap();
    assert_eq!(
        (freed.team, freed.public, freed.image_lock),
        (None, true, true)
    );
    // Public now: Carol reads it; locked: nobody but a superuser adds images.
    assert_eq!(c.read.readable_sets(w.carol.actor).await.unwrap().len(), 1);
    let err = c
        .add_image(&w.alice, set, file("late.svs"))
        .await
        .unwrap_err();
    assert_eq!(err.status().as_u16(), 403);
    // The name is free again.
    c.create_team(&w.carol, "Pathology".into(), String::new())
        .await
        .unwrap();
}

async fn filters_answer_from_the_read_models_now_and_as_of(db: TestDb) {
    let w = world(&db).await;
    let c = &w.commands;
    let (_, _, image, boxes, global) = lab(&w).await;
    let inputs: Vec<AnnotationInput> = (0..20)
        .map(|i| boxed(boxes, 100.0 * f64::from(i), 50.0))
        .collect();
    let made = c
        .create_annotations(
            &w.alice,
            NewAnnotations {
                image,
                annotations: inputs,
            },
        )
        .await
        .unwrap();
    let middle = c.store.last_position().await.unwrap();
    db.clock.advance(chrono::TimeDelta::seconds(60));
    let by_bob = c
        .create_annotations(
            &w.bob,
            NewAnnotations {
                image,
                annotations: vec![
                    boxed(boxes, 5000.0, 5000.0),
                    AnnotationInput::new(global, json!(null)),
                ],
            },
        )
        .await
        .unwrap();
    for a in &made[..5] {
        c.annotation_command(&w.bob, a.id, None, &AnnotationCommand::Delete)
            .await
            .unwrap();
    }
    c.annotation_command(
        &w.bob,
        made[5].id,
        None,
        &AnnotationCommand::Verify { verified: true },
    )
    .await
    .unwrap();
    c.annotation_command(
        &w.bob,
        made[6].id,
        None,
        &AnnotationCommand::Verify { verified: false },
    )
    .await
    .unwrap();
    let q = |f: fn(&mut AnnotationQuery)| {
        let mut query = AnnotationQuery {
            image: Some(image),
            ..AnnotationQuery::default()
        };
        f(&mut query);
        query
    };
    let count =
        |query: AnnotationQuery| async move { c.read.count_annotations(&query).await.unwrap() };
    assert_eq!(count(q(|_| {})).await, 22);
    assert_eq!(count(q(|q| q.deleted = Some(false))).await, 17);
    assert_eq!(count(q(|q| q.annotation_types = vec![7])).await, 0);
    let bob = w.bob.actor.id;
    let mut by_user = q(|q| q.deleted = Some(false));
    by_user.user = Some(bob);
    assert_eq!(count(by_user).await, 2);
    assert_eq!(
        count(q(|q| q.consensus = Some(Consensus::Accepted))).await,
        1
    );
    assert_eq!(
        count(q(|q| q.consensus = Some(Consensus::Rejected))).await,
        1
    );
    assert_eq!(
        count(q(|q| {
            q.consensus = Some(Consensus::Unverified);
            q.deleted = Some(false);
        }))
        .await,
        15
    );
    // The viewport: x from 0 to 450 holds boxes 0..=4 (deleted) and nothing of Bob's.
    let view = q(|q| {
        q.rect = Some(Rect {
            min_x: 0.0,
            min_y: 0.0,
            max_x: 450.0,
            max_y: 100.0,
        });
        q.deleted = Some(false);
    });
    assert_eq!(count(view).await, 0);
    let mut then = q(|q| {
        q.rect = Some(Rect {
            min_x: 0.0,
            min_y: 0.0,
            max_x: 450.0,
            max_y: 100.0,
        });
    });
    then.as_of = Some(middle);
    then.deleted = Some(false);
    let rows = c.read.annotations(&then).await.unwrap();
    assert_eq!(
        rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        made[..5].iter().map(|w| w.id).collect::<Vec<_>>()
    );
    let mut before_bob = q(|_| {});
    before_bob.as_of = Some(middle);
    assert_eq!(count(before_bob).await, 20);
    // Time ranges and paging.
    let edited_late = rows_after(c, image, middle).await;
    assert!(
        edited_late.contains(&by_bob[0].id)
            && edited_late.contains(&made[0].id)
            && !edited_late.contains(&made[10].id)
    );
    let page = c
        .read
        .annotations(&q(|q| {
            q.limit = Some(5);
            q.offset = 5;
        }))
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|r| r.id).collect::<Vec<_>>(),
        made[5..10].iter().map(|w| w.id).collect::<Vec<_>>()
    );
    let mut bad = q(|q| q.consensus = Some(Consensus::Accepted));
    bad.as_of = Some(middle);
    assert_eq!(
        c.read.annotations(&bad).await.unwrap_err().to_string(),
        "a verdict filter reads the current verdicts: it cannot be combined with as_of"
    );
}

/// Ids of annotations of `image` last edited after the event at `position` was recorded.
async fn rows_after(c: &Commands, image: i64, position: i64) -> Vec<i64> {
    let at = c.store.read_page(position, 1).await.unwrap()[0]
        .recorded_at
        .timestamp_micros();
    let query = AnnotationQuery {
        image: Some(image),
        edited: TimeRange {
            from: Some(at + 1),
            to: None,
        },
        ..AnnotationQuery::default()
    };
    c.read
        .annotations(&query)
        .await
        .unwrap()
        .iter()
        .map(|r| r.id)
        .collect()
}

/// Every row of every read model, as text, in a stable order.
async fn dump(db: &TestDb) -> Vec<(String, i64)> {
    let tables = [
        ("users", "id || '|' || username || '|' || is_active || '|' || is_superuser || '|' || version", "id"),
        ("teams", "id || '|' || name || '|' || dissolved || '|' || version", "id"),
        ("team_memberships", "team || '|' || user_id || '|' || is_admin", "team, user_id"),
        ("products", "id || '|' || team || '|' || name || '|' || version", "id"),
        ("product_image_sets", "product || '|' || image_set", "product, image_set"),
        ("annotation_types", "id || '|' || product || '|' || name || '|' || vector_type || '|' || active || '|' || version", "id"),
        ("image_sets", "id || '|' || COALESCE(team, -1) || '|' || name || '|' || public || '|' || image_lock || '|' || deleted || '|' || version", "id"),
        ("set_tags", "image_set || '|' || name", "image_set, name"),
        ("images", "id || '|' || image_set || '|' || name || '|' || checksum || '|' || deleted || '|' || frame_descriptions || '|' || version", "id"),
        ("export_formats", "id || '|' || name || '|' || annotation_format || '|' || version", "id"),
        ("export_format_types", "export_format || '|' || annotation_type", "export_format, annotation_type"),
        ("dataset_versions", "id || '|' || name || '|' || position", "id"),
        ("dataset_version_sets", "dataset_version || '|' || image_set", "dataset_version, image_set"),
        ("image_access_log", "position || '|' || image || '|' || user_id || '|' || action", "position"),
        ("annotation_statistics", "image || '|' || annotation_type || '|' || total || '|' || accepted || '|' || rejected || '|' || unverified", "image, annotation_type"),
        ("annotations", "id || '|' || COALESCE(vector, '-') || '|' || deleted || '|' || version || '|' || position", "id"),
        ("verifications", "annotation || '|' || user_id || '|' || verified || '|' || position", "annotation, user_id"),
        ("image_set_pins", "user_id || '|' || image_set || '|' || pinned", "user_id, image_set"),
        ("access_tokens", "token || '|' || user_id || '|' || name || '|' || token_hash || '|' || COALESCE(revoked, -1)", "token"),
        ("annotation_history", "id || '|' || version || '|' || valid_from || '|' || COALESCE(valid_to, -1)", "id, version"),
    ];
    let mut rows = Vec::new();
    for (table, text, order) in tables {
        let mut found = db
            .pairs(&format!(
                "SELECT '{table}|' || {text}, CAST(0 AS BIGINT) FROM {table} ORDER BY {order}"
            ))
            .await;
        rows.append(&mut found);
    }
    rows
}

async fn rebuilt_catalog_and_annotations_equal_the_incremental_ones(db: TestDb) {
    let w = world(&db).await;
    let c = &w.commands;
    let (team, set, image, boxes, global) = lab(&w).await;
    c.commands_access(&w, image).await;
    for (n, name) in ["laptop", "cluster"].iter().enumerate() {
        let token = uuid::Uuid::from_u128(n as u128 + 1);
        let create = UserCommand::CreateToken {
            token,
            name: (*name).into(),
            token_hash: format!("{n:064x}"),
        };
        c.user_command(&w.alice, w.alice.actor.id, &create)
            .await
            .unwrap();
    }
    let revoke = UserCommand::RevokeToken {
        token: uuid::Uuid::from_u128(1),
    };
    c.user_command(&w.alice, w.alice.actor.id, &revoke)
        .await
        .unwrap();
    let pin = UserCommand::Pin {
        image_set: set,
        pinned: true,
    };
    c.user_command(&w.bob, w.bob.actor.id, &pin).await.unwrap();
    let made = c
        .create_annotations(
            &w.bob,
            NewAnnotations {
                image,
                annotations: vec![
                    boxed(boxes, 1.0, 1.0),
                    boxed(boxes, 9.0, 9.0),
                    AnnotationInput::new(global, json!(null)),
                ],
            },
        )
        .await
        .unwrap();
    c.annotation_command(
        &w.alice,
        made[0].id,
        None,
        &AnnotationCommand::Verify { verified: false },
    )
    .await
    .unwrap();
    c.annotation_command(&w.alice, made[1].id, None, &AnnotationCommand::Delete)
        .await
        .unwrap();
    let tagged = SetSettings {
        tags: BTreeSet::from(["HE".to_owned(), "2024".to_owned()]),
        ..settings("Slides")
    };
    c.image_set_command(&w.alice, set, None, &ImageSetCommand::Change(tagged))
        .await
        .unwrap();
    c.create_export_format(
        &w.bob,
        team,
        FormatSettings {
            name: "f".into(),
            annotations_types: BTreeSet::from([boxes, global]),
            ..FormatSettings::default()
        },
    )
    .await
    .unwrap();
    c.create_dataset_version(&w.bob, "v1".into(), None, BTreeSet::from([set]))
        .await
        .unwrap();
    c.describe_image(
        &w.alice,
        image,
        None,
        ImageDescription {
            name: "described.png".into(),
            mpp: Some(0.5),
            objective_power: None,
            time: None,
            frame_descriptions: std::collections::BTreeMap::from([(1, "H&E".to_owned())]),
        },
    )
    .await
    .unwrap();
    c.user_command(
        &Caller::system(),
        w.carol.actor.id,
        &UserCommand::SetActive(false),
    )
    .await
    .unwrap();
    c.team_command(&w.alice, team, None, &TeamCommand::Leave)
        .await
        .unwrap();
    c.team_command(&w.bob, team, None, &TeamCommand::Leave)
        .await
        .unwrap();
    let incremental = dump(&db).await;
    assert!(incremental.len() > 25, "{} rows", incremental.len());
    for name in ["catalog", "annotations"] {
        c.store.rebuild(name, Arc::new(|_, _| {})).await.unwrap();
    }
    assert_eq!(dump(&db).await, incremental);
}
