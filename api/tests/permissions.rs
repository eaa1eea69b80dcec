//! The permission matrix (issue 20): every route of the server, called by those who must be
//! refused, must be refused and change nothing. The REST operations come from the API document
//! (which is derived from the handlers, and which the OpenAPI tests hold equal to the router);
//! the other routes (pages, EXACT's legacy paths, the parts not built) from one table here. A
//! route in the router's source that is in neither fails `every_route_is_in_the_matrix`, so a
//! new route cannot go unchecked.
//!
//! The world: a team's owner made a project (team, product, set, type), an image, an
//! annotation, a verdict, an access log entry, a tag, a screening, a dataset version, an
//! attached file and a token, and added a member. An outsider (signed in, in no team) and an
//! anonymous caller then try every operation on those things: reads answer 404 (or 403), writes
//! 403 or 404 with nothing appended to the log, lists show none of it, and the anonymous caller
//! gets 401 everywhere but the few anonymous routes.
//!
//! The role matrix (`every_role_meets_its_rule`) then holds every operation of the document to
//! its rule for seven callers: outsider, member, team admin, staff, superuser, and an outsider
//! on a public and on a public-collaboration set; what the rule allows must not be refused.

mod support;

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use exact_api::rest::openapi::{document, operations};
use exact_store::testing::TestDb;
use serde_json::{json, Value};
use support::{add_member, box_annotation, image, multipart, png, project, Answer, TestApp};

exact_store::on_both_backends!(
    nobody_reaches_what_is_not_theirs,
    every_role_meets_its_rule,
    a_refused_link_leaves_a_product_as_it_was,
    kept_reads_never_outlive_a_change_of_rights,
);

const OWNER: (&str, &str) = ("owner", "pw-owner");
const MEMBER: (&str, &str) = ("member", "pw-member");
const OUTSIDER: (&str, &str) = ("outsider", "pw-outsider");
const TEAM_ADMIN: (&str, &str) = ("teamadmin", "pw-teamadmin");
const STAFF: (&str, &str) = ("staff", "pw-staff");

/// What the owner made, by the path of the resource it is read at.
struct World {
    ids: BTreeMap<&'static str, String>,
    /// The user a body's `user` field names: the caller, acting for themselves.
    acting_user: i64,
    /// Distinguishes the names a world's bodies give (teams and accounts must be unique).
    name: String,
    /// Whether bodies may delete or deactivate what they change (for callers who must be
    /// refused: the most harmful body); else they only change what can be changed back.
    harmful: bool,
}

impl World {
    async fn build(app: &TestApp) -> World {
        app.user("owner").await;
        let member = app.user("member").await;
        let outsider = app.user("outsider").await;
        let mut world = World::project(app, "matrix", member, None).await;
        world.acting_user = outsider;
        world.harmful = true;
        world
    }

    /// The owner's team `name` (with `member` in it, and `admin` as one of its admins), a
    /// product, set, type, image, annotation and everything hanging off them, and an account.
    async fn project(app: &TestApp, name: &str, member: i64, admin: Option<i64>) -> World {
        let p = project(app, OWNER, name, 1).await;
        add_member(app, OWNER, p.team, member).await;
        if let Some(admin) = admin {
            let answer = app
                .post(
                    "/api/v1/users/team_membership/",
                    OWNER,
                    json!({"team": p.team, "user": admin, "is_admin": true}),
                )
                .await;
            assert_eq!(answer.status, StatusCode::CREATED, "{answer:?}");
        }
        let image = image(app, OWNER, p.set, "matrix.png", 64, 48).await;
        let annotation = box_annotation(app, OWNER, image, p.annotation_type).await;
        // multiple_delete's own, so that a deletion of the other does not decide its answer.
        let bulk = box_annotation(app, OWNER, image, p.annotation_type).await;
        let created = |answer: Answer| {
            assert!(answer.status.is_success(), "{answer:?}");
            id_text(&answer.json["id"])
        };
        let membership = app
            .get(
                &format!("/api/v1/users/team_membership/?team={}", p.team),
                OWNER,
            )
            .await;
        let membership = membership.json["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["user"] == member)
            .map(|m| id_text(&m["id"]))
            .expect("the member's membership");
        let verification = created(
            app.post(
                "/api/v1/annotations/verifications/",
                OWNER,
                json!({"annotation": annotation, "verified": true}),
            )
            .await,
        );
        let access = created(
            app.post(
                "/api/v1/annotations/log_image_actions/",
                OWNER,
                json!({"image": image, "action": 1}),
            )
            .await,
        );
        let tag = created(
            app.post(
                "/api/v1/images/set_tags/",
                OWNER,
                json!({"name": format!("tag {name}"), "imagesets": [p.set]}),
            )
            .await,
        );
        let screening = created(
            app.post(
                "/api/v1/images/screening_modes/",
                OWNER,
                json!({"image": image}),
            )
            .await,
        );
        let version = created(
            app.post(
                "/api/v1/images/set_versions/",
                OWNER,
                json!({"name": format!("v1 {name}"), "imagesets": [p.set]}),
            )
            .await,
        );
        let annotation_version = app
            .get(
                &format!("/api/v1/annotations/annotation_versions/?version={version}"),
                OWNER,
            )
            .await;
        let annotation_version = id_text(&annotation_version.json["results"][0]["id"]);
        let media = app
            .multipart(
                "/api/v1/annotations/annotation_media_files/",
                OWNER,
                &[("annotation", &annotation.to_string())],
                &[("file", "note.txt", b"a note")],
            )
            .await;
        assert_eq!(media.status, StatusCode::CREATED, "{media:?}");
        let media = id_text(&media.json["results"][0]["id"]);
        let token = app
            .post("/api/v1/users/tokens/", OWNER, json!({"name": "script"}))
            .await;
        assert_eq!(token.status, StatusCode::CREATED, "{token:?}");
        let token = id_text(&token.json["id"]);
        let export_format = created(
            app.post(
                "/api/v1/administration/export_formats/",
                OWNER,
                json!({"team": p.team, "name": format!("f {name}")}),
            )
            .await,
        );
        // An account of its own: the calls on accounts change and delete it, not a caller.
        let account = created(
            app.post(
                "/api/v1/users/users/",
                support::ADMIN,
                json!({"username": format!("account-{name}"), "password": "pw-account-123"}),
            )
            .await,
        );

        let ids = BTreeMap::from([
            ("/users/users/", account),
            ("/users/teams/", p.team.to_string()),
            ("/users/team_membership/", membership),
            ("/users/tokens/", token),
            ("/administration/products/", p.product.to_string()),
            ("/administration/export_formats/", export_format),
            (
                "/annotations/annotation_types/",
                p.annotation_type.to_string(),
            ),
            ("/images/image_sets/", p.set.to_string()),
            ("/images/images/", image.to_string()),
            ("/annotations/annotations/", annotation.to_string()),
            ("/annotations/verifications/", verification),
            ("/annotations/log_image_actions/", access),
            ("/images/set_tags/", tag),
            ("/images/screening_modes/", screening),
            ("/images/set_versions/", version),
            ("/annotations/annotation_versions/", annotation_version),
            ("/annotations/annotation_media_files/", media),
            (
                "/annotations/annotations/multiple_delete/",
                bulk.to_string(),
            ),
        ]);
        World {
            ids,
            acting_user: member,
            name: name.to_owned(),
            harmful: false,
        }
    }

    /// The resource a path is under, and the id of the world's one.
    fn resource(&self, template: &str) -> Option<(&'static str, &str)> {
        self.ids
            .iter()
            .filter(|(prefix, _)| template.starts_with(**prefix))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(prefix, id)| (*prefix, id.as_str()))
    }

    /// `template` with the world's ids in it.
    fn concrete(&self, template: &str) -> String {
        let mut path = template
            .replace("{z}", "1")
            .replace("{frame}", "1")
            .replace("{level}", "0")
            .replace("{tile}", "0_0.jpeg");
        for name in ["{id}", "{token}"] {
            if path.contains(name) {
                let (_, id) = self
                    .resource(template)
                    .unwrap_or_else(|| panic!("{template}: the matrix has no id for it"));
                path = path.replace(name, id);
            }
        }
        path
    }

    /// The API path of `template` for the world's things, with what some operations need in
    /// their query.
    fn path(&self, template: &str) -> String {
        let path = format!("/api/v1{}", self.concrete(template));
        let query = match template {
            "/annotations/annotation_versions/" => Some(("version", "/images/set_versions/")),
            "/annotations/annotations/multiple_delete/" => {
                Some(("id__in", "/annotations/annotations/multiple_delete/"))
            }
            "/images/images/{id}/get_patch/" => return format!("{path}?x=0&y=0&w=8&h=8"),
            "/images/image_sets/{id}/export/" => return format!("{path}?format=coco"),
            "/images/image_sets/{id}/diff/" => return format!("{path}?from=1"),
            _ => None,
        };
        match query {
            Some((name, resource)) => format!("{path}?{name}={}", self.ids[resource]),
            None => path,
        }
    }

    /// A value for a body field named `name` that points at the world's things (or, for a
    /// user, at the outsider, who tries to act for themselves in the owner's team).
    fn value(&self, name: &str) -> Option<Value> {
        let id = |prefix: &str| self.ids[prefix].parse::<i64>().map(Value::from).ok();
        Some(match name {
            "image" => id("/images/images/")?,
            "image_set" => id("/images/image_sets/")?,
            "imagesets" | "image_sets" => json!([id("/images/image_sets/")?]),
            "annotation" => id("/annotations/annotations/")?,
            "annotation_type" => id("/annotations/annotation_types/")?,
            "team" => id("/users/teams/")?,
            "product" => id("/administration/products/")?,
            "products" => json!([id("/administration/products/")?]),
            "user" => json!(self.acting_user),
            "name" => json!(format!("probe {}", self.name)),
            "username" => json!(format!("probe-{}", self.name)),
            "password" => json!("probe-password-123"),
            "description" => json!("probe"),
            "vector" => json!({"x1": 2, "y1": 2, "x2": 8, "y2": 8}),
            "vector_type" => json!(1),
            "verified" => json!(false),
            "action" => json!(2),
            "is_admin" | "is_superuser" | "is_staff" => json!(true),
            "is_active" => json!(!self.harmful),
            "deleted" => json!(self.harmful),
            "mem_size_mb" => json!(1),
            "frame" => json!(1),
            _ => return None,
        })
    }

    /// The JSON body an operation's schema asks for, filled with the world's things: every
    /// property the matrix has a value for (a write is refused for its target, not for a
    /// missing field); a required one it has none for fails the test, naming it.
    /// Files (a multipart body's binary fields) are left to the caller: see [`files_of`].
    fn body(&self, method: &str, template: &str, schema: &Value) -> Value {
        let (properties, required) = fields_of(schema);
        let mut body = serde_json::Map::new();
        for (name, _) in &properties {
            // A verdict's password makes it a signature, with the caller's own password
            // (rest.rs signs); the matrix gives plain verdicts.
            if name == "password" && template.starts_with("/annotations/verifications/") {
                continue;
            }
            if let Some(mut value) = self.value(name) {
                // Format names are unique among live formats (EXACT's rule): a change names
                // the world's format other than the creation names its new one.
                if name == "name"
                    && method != "post"
                    && template.starts_with("/administration/export_formats/")
                {
                    value = json!(format!("changed {}", self.name));
                }
                body.insert(name.clone(), value);
            }
        }
        let files = files_of(schema);
        for name in required {
            assert!(
                body.contains_key(&name) || files.contains(&name),
                "{method} {template}: the matrix has no value for the required field {name}"
            );
        }
        Value::Object(body)
    }
}

/// A body schema's properties and required fields: its references followed, its `allOf`
/// parts together, the first of a `oneOf`.
fn fields_of(schema: &Value) -> (Vec<(String, Value)>, Vec<String>) {
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    let schemas = &DOCUMENT.get_or_init(document)["components"]["schemas"];
    if let Some(reference) = schema["$ref"].as_str() {
        return fields_of(&schemas[reference.trim_start_matches("#/components/schemas/")]);
    }
    if let Some(first) = schema["oneOf"].as_array().and_then(|c| c.first()) {
        return fields_of(first);
    }
    let (mut properties, mut required) = (Vec::new(), Vec::new());
    for part in schema["allOf"].as_array().into_iter().flatten() {
        let (p, r) = fields_of(part);
        properties.extend(p);
        required.extend(r);
    }
    for (name, property) in schema["properties"].as_object().into_iter().flatten() {
        properties.push((name.clone(), property.clone()));
    }
    for name in schema["required"].as_array().into_iter().flatten() {
        required.push(name.as_str().unwrap().to_owned());
    }
    (properties, required)
}

/// The fields of a body schema that are files (binary strings, or lists of them).
fn files_of(schema: &Value) -> Vec<String> {
    let binary = |s: &Value| s["format"] == "binary" || s["items"]["format"] == "binary";
    fields_of(schema)
        .0
        .into_iter()
        .filter(|(_, property)| binary(property))
        .map(|(name, _)| name)
        .collect()
}

/// An id as it appears in a path: a number, or a string without its quotes.
fn id_text(id: &Value) -> String {
    assert!(id.is_number() || id.is_string(), "not an id: {id}");
    id.as_str().map_or_else(|| id.to_string(), str::to_owned)
}

/// What a route answers a caller who must be refused.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// 401: credentials are needed.
    Unauthenticated,
    /// 403 or 404, nothing written; a list answers none of the world's things.
    Refused,
    /// Allowed to this caller, for the reason given in the table.
    Allowed,
}

/// Operations open to a caller who is not refused, with why; everything else is refused.
fn allowed(method: &str, template: &str, anonymous: bool) -> Option<&'static str> {
    Some(match (method, template) {
        ("get", "/health") => "the load balancer's probe",
        ("get", "/timesync/") => "EXACT's clock, anonymous there too",
        ("get", "/openapi.json") => "the document describes routes, not data",
        ("post", "/auth/login/") if anonymous => "logging in is how one stops being anonymous",
        ("post", "/auth/logout/") => "ending a session one may not have changes nothing",
        _ if anonymous => return None,
        ("get", "/auth/session/") => "who the caller is",
        ("post", "/auth/login/") => "a login with a wrong password is a 401 of its own",
        ("get", "/users/tokens/") | ("post", "/users/tokens/") => "one's own tokens",
        ("post", "/users/teams/") => "anyone may found a team",
        ("get", "/users/users/") | ("get", "/users/users/{id}/") => {
            "accounts are listed to every signed-in user, to add members by name (EXACT)"
        }
        _ => return None,
    })
}

async fn nobody_reaches_what_is_not_theirs(db: TestDb) {
    let app = TestApp::new(db).await;
    let world = World::build(&app).await;
    let mut refusals = 0;
    for (method, template) in operations() {
        if template == "/events/" {
            // A stream: the REST tests read it over a socket, outsiders included.
            continue;
        }
        let path = world.path(&template);
        let (_, operation) = support::operation(&method, &path).unwrap();
        for who in [None, Some(OUTSIDER)] {
            let anonymous = who.is_none();
            let expect = match allowed(&method, &template, anonymous) {
                Some(_) => Expect::Allowed,
                None if anonymous => Expect::Unauthenticated,
                None => Expect::Refused,
            };
            let before = app.position().await;
            let answer = call(&app, &world, &method, &template, &path, operation, who).await;
            let written = app.position().await != before;
            let caller = if anonymous { "anonymous" } else { "outsider" };
            match expect {
                Expect::Allowed => continue,
                Expect::Unauthenticated => assert_eq!(
                    answer.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {template} as {caller}: {answer:?}"
                ),
                Expect::Refused if method == "get" && !template.contains('{') => {
                    // A list: it answers with none of the world's things, or 404 when it
                    // names one of them (as a filter naming a missing thing does).
                    assert!(
                        matches!(answer.status, StatusCode::OK | StatusCode::NOT_FOUND),
                        "{method} {template}: {answer:?}"
                    );
                    if let Some((_, id)) = world.resource(&template) {
                        let shown: Vec<String> = answer.json["results"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|r| id_text(&r["id"]))
                            .collect();
                        assert!(
                            !shown.iter().any(|s| s == id),
                            "{template} shows the {caller} the owner's {id}: {answer:?}"
                        );
                    }
                }
                Expect::Refused => assert!(
                    matches!(answer.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND),
                    "{method} {template} as {caller}: {answer:?}"
                ),
            }
            assert!(
                !written,
                "{method} {template} as {caller} wrote to the log: {answer:?}"
            );
            refusals += 1;
        }
    }
    // The table's routes outside the document, the same way.
    // Pages are read with a session (a Basic login is sent to the login page, as anonymous
    // callers are); the other routes with Basic credentials.
    let login = app
        .post(
            "/api/v1/auth/login/",
            OUTSIDER,
            json!({"username": OUTSIDER.0, "password": OUTSIDER.1}),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK, "{login:?}");
    let cookie = login.headers["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    for route in OTHER_ROUTES {
        let Some(probe) = route.probe else { continue };
        let path = match route.of {
            "" => probe.to_owned(),
            of => probe.replace("{id}", &world.ids[of]),
        };
        let page = route.anonymous == TO_LOGIN;
        for (caller, expect) in [("anonymous", route.anonymous), ("outsider", route.outsider)] {
            let (who, headers) = match (caller, page) {
                ("anonymous", _) => (None, vec![]),
                (_, true) => (None, vec![("cookie", cookie.as_str())]),
                (_, false) => (Some(OUTSIDER), vec![]),
            };
            let before = app.position().await;
            let answer = app
                .send(Method::GET, &path, who, None, vec![], &headers)
                .await;
            assert!(
                expect.contains(&answer.status.as_u16()),
                "{path} as {caller}: {} is not one of {expect:?} ({answer:?})",
                answer.status
            );
            assert_eq!(app.position().await, before, "{path} as {caller} wrote");
            refusals += 1;
        }
    }
    // The member reads what the team has: the matrix's ids are right, not merely missing.
    for prefix in [
        "/images/images/",
        "/annotations/annotations/",
        "/images/image_sets/",
    ] {
        let path = format!("/api/v1{prefix}{}/", world.ids[prefix]);
        let answer = app.get(&path, MEMBER).await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "the member reads {path}: {answer:?}"
        );
    }
    assert!(refusals > 150, "only {refusals} refusals checked");
}

/// A caller of the role matrix: who they are to the world's team and set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Signed in, in no team.
    Outsider,
    /// A member of the team, not an admin.
    Member,
    /// An admin of the team who did not create the set.
    TeamAdmin,
    /// A staff account in no team.
    Staff,
    /// A superuser in no team.
    Superuser,
    /// An outsider on a `public` set.
    PublicReader,
    /// An outsider on a `public` set with `public_collaboration`.
    Collaborator,
}

impl Role {
    const ALL: [Role; 7] = [
        Role::Outsider,
        Role::Member,
        Role::TeamAdmin,
        Role::Staff,
        Role::PublicReader,
        Role::Collaborator,
        Role::Superuser,
    ];

    fn credentials(self) -> (&'static str, &'static str) {
        match self {
            Role::Outsider | Role::PublicReader | Role::Collaborator => OUTSIDER,
            Role::Member => MEMBER,
            Role::TeamAdmin => TEAM_ADMIN,
            Role::Staff => STAFF,
            Role::Superuser => support::ADMIN,
        }
    }
}

/// Who an operation is for: the rule the role matrix holds the server to (EXACT's model,
/// `domain/src/permissions.rs` and the deciders).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    /// Any signed-in caller.
    SignedIn,
    /// Whoever reads the set: its team, superusers, anyone when it is public.
    ReadSet,
    /// Whoever annotates in the set: its team, superusers, anyone on a public-collaboration set.
    AnnotateSet,
    /// The set's team and superusers: editing the set, adding images, versions and tags.
    EditSet,
    /// The team's admins (and the set's creator) and superusers: deleting sets and images.
    AdministerSet,
    /// The team's members and superusers.
    Team,
    /// The team's admins and superusers.
    AdministerTeam,
    /// Products and annotation types: the team's admins, staff and superusers (EXACT's rule).
    ManageProducts,
    /// Reading products and types: whoever reads a set they are offered in, their team, and
    /// staff and superusers (who manage them).
    ReadProducts,
    /// The team's members, staff and superusers.
    TeamOrStaff,
    /// Superusers alone: accounts, and entries that belong to another user.
    Superuser,
    /// The thing's own user alone (the owner's tokens): no caller of the matrix.
    OwnerOnly,
}

impl Rule {
    fn allows(self, role: Role) -> bool {
        use Role::*;
        match self {
            Rule::SignedIn => true,
            Rule::ReadSet => matches!(
                role,
                Member | TeamAdmin | Superuser | PublicReader | Collaborator
            ),
            Rule::AnnotateSet => matches!(role, Member | TeamAdmin | Superuser | Collaborator),
            Rule::EditSet | Rule::Team => matches!(role, Member | TeamAdmin | Superuser),
            Rule::AdministerSet | Rule::AdministerTeam => matches!(role, TeamAdmin | Superuser),
            Rule::ManageProducts => matches!(role, TeamAdmin | Staff | Superuser),
            Rule::TeamOrStaff => matches!(role, Member | TeamAdmin | Staff | Superuser),
            Rule::ReadProducts => role != Outsider,
            Rule::Superuser => role == Superuser,
            Rule::OwnerOnly => false,
        }
    }
}

/// The rule of every operation of the API document that the role matrix calls; an operation
/// without one fails the test, so a new route must be given its rule.
fn rule(method: &str, template: &str) -> Option<Rule> {
    use Rule::*;
    let (collection, rest) = resource_of(template);
    Some(match (method, collection, rest) {
        ("get", "/auth/session/" | "/timesync/" | "/openapi.json" | "/health", _) => SignedIn,
        ("get" | "post", "/users/tokens/", "") => SignedIn,
        ("delete", "/users/tokens/", _) => OwnerOnly,
        ("get", "/users/users/", _) => SignedIn,
        (_, "/users/users/", _) => Superuser,
        ("post", "/users/teams/", "") => SignedIn,
        ("get", "/users/teams/" | "/users/team_membership/", _) => Team,
        // The world's membership is the member's own: they may leave; admins remove.
        ("delete", "/users/team_membership/", _) => Team,
        (_, "/users/teams/" | "/users/team_membership/", _) => AdministerTeam,
        ("get", "/administration/products/" | "/annotations/annotation_types/", _) => ReadProducts,
        // A product's body links the world's set, which staff may not edit.
        ("post" | "patch", "/administration/products/", _) => AdministerTeam,
        (_, "/administration/products/" | "/annotations/annotation_types/", _) => ManageProducts,
        // A team's formats: its members' (EXACT's `manage_export_formats`); staff and
        // superusers see every format. A preview reads the set it renders.
        ("post", "/administration/export_formats/", "preview/") => ReadSet,
        ("get", "/administration/export_formats/", _) => TeamOrStaff,
        (_, "/administration/export_formats/", _) => Team,
        ("post", "/images/image_sets/", "") => Team,
        // An export reads the set (EXACT's `create_export`, which readers of public sets have).
        ("get", "/images/image_sets/", _) | (_, "/images/image_sets/", "pin/") => ReadSet,
        ("post", "/images/image_sets/", "import/") => AnnotateSet,
        ("patch", "/images/image_sets/", _) => EditSet,
        ("delete", "/images/image_sets/", _) => AdministerSet,
        ("delete", "/images/images/", "") => AdministerSet,
        // Warming the tile cache is what a viewer does.
        ("get", "/images/images/", _) | ("patch", "/images/images/", "update_image_cache/") => {
            ReadSet
        }
        (_, "/images/images/", _) => EditSet,
        // A dataset version names a moment of sets one reads, as an export does (which
        // readers of public sets may make in EXACT).
        ("get" | "post", "/images/set_versions/", _) => ReadSet,
        ("get", "/images/set_tags/", _) => ReadSet,
        (_, "/images/set_tags/", _) => EditSet,
        ("get", "/annotations/annotation_versions/", _) => ReadSet,
        ("get", "/annotations/annotations/" | "/annotations/verifications/", _) => ReadSet,
        // A verdict is changed or taken back by the user who gave it, no one else.
        ("patch" | "delete", "/annotations/verifications/", _) => OwnerOnly,
        (_, "/annotations/annotations/" | "/annotations/verifications/", _) => AnnotateSet,
        ("get", "/annotations/annotation_media_files/", _) => ReadSet,
        (_, "/annotations/annotation_media_files/", _) => AnnotateSet,
        // Access entries and screenings are read with the set; another user's are changed
        // by superusers alone.
        ("get", "/annotations/log_image_actions/" | "/images/screening_modes/", _) => ReadSet,
        ("post", "/annotations/log_image_actions/", "") => ReadSet,
        ("post", "/images/screening_modes/", "") => AnnotateSet,
        (_, "/annotations/log_image_actions/" | "/images/screening_modes/", _) => Superuser,
        _ => return None,
    })
}

/// The collection a template is under and what follows the id (`""` for the collection and
/// its items): `("/images/images/", "thumbnail/")`.
fn resource_of(template: &str) -> (&str, &str) {
    let parts: Vec<&str> = template.trim_start_matches('/').splitn(3, '/').collect();
    match parts.as_slice() {
        [a, b, rest] => {
            let collection = &template[..a.len() + b.len() + 3];
            let after_id = rest.split_once('/').map_or("", |(_, after)| after);
            let after_id = if rest.starts_with('{') {
                after_id
            } else {
                rest
            };
            (collection, after_id)
        }
        _ => (template, ""),
    }
}

/// The order the matrix calls operations in: reads, then creations, then changes, then
/// deletions of the leaves before what they hang on, so that an allowed deletion does not
/// decide a later answer.
fn call_order(method: &str, template: &str) -> (usize, usize) {
    const LEAVES_FIRST: &[&str] = &[
        "/annotations/annotation_media_files/",
        "/annotations/verifications/",
        "/annotations/annotations/multiple_delete/",
        "/annotations/annotations/",
        "/annotations/log_image_actions/",
        "/images/screening_modes/",
        "/images/set_tags/",
        "/images/image_sets/{id}/pin/",
        "/images/images/",
        "/users/tokens/",
        "/users/users/",
        "/annotations/annotation_types/",
        // While the member is still in the team whose format it is.
        "/administration/export_formats/",
        "/users/team_membership/",
        "/images/image_sets/",
        "/administration/products/",
        "/users/teams/",
    ];
    let verb = ["get", "post", "put", "patch", "delete"]
        .iter()
        .position(|m| *m == method)
        .unwrap();
    let leaf = LEAVES_FIRST
        .iter()
        .position(|prefix| template.starts_with(prefix))
        .unwrap_or(LEAVES_FIRST.len());
    (verb, leaf)
}

/// Every operation of the API document, called by every role on a world of its own: an
/// operation whose rule allows the role must not refuse it (no 401, 403 or 404; a read
/// answers 200, a list shows the world's thing), one whose rule does not must refuse it (403
/// or 404, a list without the world's thing) and write nothing. Beside the outsider of
/// `nobody_reaches_what_is_not_theirs`: the boundary between member and team admin, staff
/// and superuser, and what public and public-collaboration sets open.
async fn every_role_meets_its_rule(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("owner").await;
    let member = app.user("member").await;
    let team_admin = app.user("teamadmin").await;
    let outsider = app.user("outsider").await;
    let staff = app
        .post(
            "/api/v1/users/users/",
            support::ADMIN,
            json!({"username": STAFF.0, "password": STAFF.1, "is_staff": true}),
        )
        .await;
    assert_eq!(staff.status, StatusCode::CREATED, "{staff:?}");
    let staff = staff.json["id"].as_i64().unwrap();
    let superuser = app.get("/api/v1/auth/session/", support::ADMIN).await.json["id"]
        .as_i64()
        .unwrap();

    // Not called here: logging in and out and the live stream (their own tests in rest.rs and
    // security.rs), and EXACT's clock and the document, which need no account.
    let skipped = [
        "/auth/login/",
        "/auth/logout/",
        "/events/",
        "/health",
        "/timesync/",
        "/openapi.json",
    ];
    let mut calls: Vec<(String, String)> = operations()
        .into_iter()
        .filter(|(_, template)| !skipped.contains(&template.as_str()))
        .collect();
    let unruled: Vec<String> = calls
        .iter()
        .filter(|(method, template)| rule(method, template).is_none())
        .map(|(method, template)| format!("{method} {template}"))
        .collect();
    assert!(
        unruled.is_empty(),
        "operations without a rule in the role matrix:\n{}",
        unruled.join("\n")
    );
    calls.sort_by_key(|(method, template)| call_order(method, template));

    let mut broken = Vec::new();
    let (mut allowed_calls, mut refused_calls) = (0, 0);
    for role in Role::ALL {
        let name = format!("{role:?}").to_lowercase();
        let mut world = World::project(&app, &name, member, Some(team_admin)).await;
        world.acting_user = match role {
            Role::Outsider | Role::PublicReader | Role::Collaborator => outsider,
            Role::Member => member,
            Role::TeamAdmin => team_admin,
            Role::Staff => staff,
            Role::Superuser => superuser,
        };
        let flags = match role {
            Role::PublicReader => Some(json!({"public": true})),
            Role::Collaborator => Some(json!({"public": true, "public_collaboration": true})),
            _ => None,
        };
        if let Some(flags) = flags {
            let set = world.ids["/images/image_sets/"].clone();
            let answer = app
                .patch(&format!("/api/v1/images/image_sets/{set}/"), OWNER, flags)
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{answer:?}");
        }
        // The routes outside the document (pages, tiles, downloads), each by its rule, before
        // the calls below change the world; pages by the role's session, the rest by its
        // password, as browsers and scripts call them.
        let cookie = app.session(role.credentials()).await;
        for route in OTHER_ROUTES {
            let Some(probe) = route.probe else { continue };
            let path = match route.of {
                "" => probe.to_owned(),
                of => probe.replace("{id}", &world.ids[of]),
            };
            let answer = if route.anonymous == TO_LOGIN {
                let headers = [("cookie", cookie.as_str())];
                app.send(Method::GET, &path, None, None, vec![], &headers)
                    .await
            } else {
                // Straight to the router: some of these paths (get_patch without its slash)
                // are outside the document the helper holds answers to.
                let (user, password) = role.credentials();
                let mut request = axum::http::Request::builder()
                    .uri(&path)
                    .header("authorization", support::basic(user, password))
                    .body(axum::body::Body::empty())
                    .unwrap();
                request.extensions_mut().insert(axum::extract::ConnectInfo(
                    std::net::SocketAddr::from(([10, 0, 0, 1], 5000)),
                ));
                let response = tower::ServiceExt::oneshot(app.router.clone(), request)
                    .await
                    .unwrap();
                Answer {
                    status: response.status(),
                    headers: response.headers().clone(),
                    json: Value::Null,
                    bytes: Vec::new(),
                }
            };
            let status = answer.status.as_u16();
            let expected = if route.outsider == NOT_BUILT {
                NOT_BUILT
            } else if route.rule.allows(role) {
                route.allowed
            } else {
                HIDDEN
            };
            if route.rule.allows(role) {
                allowed_calls += 1;
            } else {
                refused_calls += 1;
            }
            if !expected.contains(&status) {
                broken.push(format!(
                    "{role:?} GET {path} ({:?}): {status} is not one of {expected:?}",
                    route.rule
                ));
            }
        }
        for (method, template) in &calls {
            let rule = rule(method, template).unwrap();
            let path = world.path(template);
            let (_, operation) = support::operation(method, &path).unwrap();
            let before = app.position().await;
            let answer = call(
                &app,
                &world,
                method,
                template,
                &path,
                operation,
                Some(role.credentials()),
            )
            .await;
            let written = app.position().await != before;
            let status = answer.status.as_u16();
            let is_list = method == "get" && !template.contains('{');
            let shown = world.resource(template).is_some_and(|(_, id)| {
                answer.json["results"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|r| id_text(&r["id"]) == id)
            });
            let problem = if status >= 500 {
                Some("a server error")
            } else if rule.allows(role) {
                allowed_calls += 1;
                if matches!(status, 401 | 403 | 404) {
                    Some("refused, though its rule allows the role")
                } else if method == "get" && status != 200 {
                    Some("a read that does not answer 200")
                } else if is_list && rule != Rule::SignedIn && !shown {
                    Some("a list without the world's thing")
                } else {
                    None
                }
            } else {
                refused_calls += 1;
                if written {
                    Some("wrote to the log, though its rule refuses the role")
                } else if is_list {
                    (!matches!(status, 200 | 404) || shown)
                        .then_some("a list showing the world's thing")
                } else if !matches!(status, 403 | 404) {
                    Some("not refused, though its rule refuses the role")
                } else {
                    None
                }
            };
            // A set tag's id is a digest of its name: a renamed tag is found by its new one.
            if method == "patch" && answer.status == StatusCode::OK {
                if let Some((prefix, _)) = world.resource(template) {
                    if !answer.json["id"].is_null() {
                        world.ids.insert(prefix, id_text(&answer.json["id"]));
                    }
                }
            }
            if let Some(problem) = problem {
                broken.push(format!(
                    "{role:?} {} {template} ({rule:?}): {problem}: {answer:?}",
                    method.to_uppercase()
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "{} calls broke their rule:\n{}",
        broken.len(),
        broken.join("\n")
    );
    eprintln!(
        "role matrix: {} operations x {} roles: {allowed_calls} allowed, {refused_calls} refused",
        calls.len(),
        Role::ALL.len()
    );
    assert!(allowed_calls > 200 && refused_calls > 150);
}

/// A product made or changed with a link to a set its caller may not edit is refused whole:
/// no product made without the link, no rename kept (each link used to be its own command,
/// after the product's creation or change).
async fn a_refused_link_leaves_a_product_as_it_was(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("owner").await;
    app.user("outsider").await;
    let mine = project(&app, OWNER, "mine", 1).await;
    let theirs = project(&app, OUTSIDER, "theirs", 1).await;
    let before = app.position().await;
    let made = app
        .post(
            "/api/v1/administration/products/",
            OWNER,
            json!({"name": "grabbing", "team": mine.team, "imagesets": [mine.set, theirs.set]}),
        )
        .await;
    assert_eq!(made.status, StatusCode::NOT_FOUND, "{made:?}");
    let changed = app
        .patch(
            &format!("/api/v1/administration/products/{}/", mine.product),
            OWNER,
            json!({"name": "renamed", "imagesets": [mine.set, theirs.set]}),
        )
        .await;
    assert_eq!(changed.status, StatusCode::NOT_FOUND, "{changed:?}");
    assert_eq!(app.position().await, before, "a refused link wrote");
    let products = app.get("/api/v1/administration/products/", OWNER).await;
    let names: Vec<&str> = products.json["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mine product"], "{products:?}");
}

/// What a server keeps of the catalog between requests (the caller's account, the set and their
/// role in it, the image, the type) is read anew after any change of it: by this server at
/// once, and by another process (`exact user`, a second server) as its commit is announced.
async fn kept_reads_never_outlive_a_change_of_rights(db: TestDb) {
    let app = TestApp::new(db).await;
    app.user("owner").await;
    let member = app.user("member").await;
    let p = project(&app, OWNER, "kept", 1).await;
    let image = image(&app, OWNER, p.set, "a.png", 64, 64).await;
    let joined = app
        .post(
            "/api/v1/users/team_membership/",
            OWNER,
            json!({"team": p.team, "user": member}),
        )
        .await;
    assert_eq!(joined.status, StatusCode::CREATED, "{joined:?}");
    let create = |annotation_type: i64| {
        app.post(
            "/api/v1/annotations/annotations/",
            MEMBER,
            json!({"image": image, "annotation_type": annotation_type,
                   "vector": {"x1": 1, "y1": 1, "x2": 9, "y2": 9}}),
        )
    };
    // Twice, so that the second is answered from what the first read.
    for _ in 0..2 {
        assert_eq!(create(p.annotation_type).await.status, StatusCode::CREATED);
    }

    // Out of the team: refused at once.
    let left = app
        .delete(
            &format!(
                "/api/v1/users/team_membership/{}/",
                joined.json["id"].as_i64().unwrap()
            ),
            OWNER,
        )
        .await;
    assert_eq!(left.status, StatusCode::NO_CONTENT, "{left:?}");
    let before = app.position().await;
    let refused = create(p.annotation_type).await;
    assert!(
        refused.status.is_client_error(),
        "a member who left still creates: {refused:?}"
    );
    assert_eq!(app.position().await, before);

    // Back in, then the type deleted: refused at once.
    add_member(&app, OWNER, p.team, member).await;
    assert_eq!(create(p.annotation_type).await.status, StatusCode::CREATED);
    let gone = app
        .delete(
            &format!(
                "/api/v1/annotations/annotation_types/{}/",
                p.annotation_type
            ),
            OWNER,
        )
        .await;
    assert!(gone.status.is_success(), "{gone:?}");
    let before = app.position().await;
    let refused = create(p.annotation_type).await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{refused:?}"
    );
    assert_eq!(app.position().await, before);

    // Deactivated by another process, as `exact user deactivate` does: refused once its
    // commit is heard (on SQLite nothing is kept, so at once).
    let other_type = app
        .post(
            "/api/v1/annotations/annotation_types/",
            OWNER,
            json!({"name": "other", "product": p.product, "vector_type": 1}),
        )
        .await;
    let other_type = other_type.json["id"].as_i64().unwrap();
    assert_eq!(create(other_type).await.status, StatusCode::CREATED);
    let other = app.db.open_with_projections(exact_projections::all()).await;
    let read = exact_projections::ReadDb::connect(&app.db.url)
        .await
        .unwrap();
    let commands = exact_api::commands::Commands::new(other, read);
    let system =
        exact_api::commands::Caller::new(exact_domain::Actor::SYSTEM, exact_store::Source::Cli);
    commands
        .user_command(
            &system,
            member,
            &exact_domain::user::UserCommand::SetActive(false),
        )
        .await
        .unwrap();
    let mut answer = create(other_type).await;
    if app.db.backend() == exact_store::Backend::Sqlite {
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
    }
    for _ in 0..100 {
        if answer.status != StatusCode::CREATED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        answer = create(other_type).await;
    }
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{answer:?}");
}

/// Sends `method path` as `who`, with the body the operation's document asks for.
async fn call(
    app: &TestApp,
    world: &World,
    method: &str,
    template: &str,
    path: &str,
    operation: &Value,
    who: Option<(&str, &str)>,
) -> Answer {
    let method_name = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let content = &operation["requestBody"]["content"];
    if let Some(schema) = content["application/json"].get("schema") {
        let body = world.body(method, template, schema);
        let bytes = serde_json::to_vec(&body).unwrap();
        return app
            .send(method_name, path, who, Some("application/json"), bytes, &[])
            .await;
    }
    if let Some(schema) = content["multipart/form-data"].get("schema") {
        let body = world.body(method, template, schema);
        let fields: Vec<(String, String)> = body
            .as_object()
            .unwrap()
            .iter()
            .map(|(name, value)| (name.clone(), value.to_string()))
            .collect();
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let file = png(8, 8);
        let file_field = files_of(schema).pop().expect("a multipart body has a file");
        let (content_type, bytes) = multipart(&fields, &[(&file_field, "probe.png", &file)]);
        return app
            .send(method_name, path, who, Some(&content_type), bytes, &[])
            .await;
    }
    app.send(method_name, path, who, None, vec![], &[]).await
}

/// A route outside the API document: how to probe it and what each caller gets.
struct OtherRoute {
    /// The route as the router writes it.
    route: &'static str,
    /// A GET that exercises it with the world's ids, or `None` with the reason in `why`.
    probe: Option<&'static str>,
    /// Whose id `{id}` in the probe is (a resource of the world), if any.
    of: &'static str,
    anonymous: &'static [u16],
    outsider: &'static [u16],
    /// Who else it is for: each role of the matrix probes it (a route not built answers 501
    /// to everyone), and `allowed` is what the ones its rule allows get.
    rule: Rule,
    allowed: &'static [u16],
    why: &'static str,
}

const NOT_SIGNED_IN: &[u16] = &[401];
/// A page sends the anonymous to the login page.
const TO_LOGIN: &[u16] = &[303];
const HIDDEN: &[u16] = &[403, 404];
const OWN: &[u16] = &[200];
const NOT_BUILT: &[u16] = &[501];
/// A set's zip: ready, being built, or a set without images.
const ARCHIVE: &[u16] = &[200, 202, 204];

const OTHER_ROUTES: &[OtherRoute] = &[
    OtherRoute {
        route: "/images/image/{id}/{z}/{frame}/tile/",
        probe: Some("/images/image/{id}/1/1/tile/"),
        of: "/images/images/",
        anonymous: NOT_SIGNED_IN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "EXACT's DeepZoom path by image id",
    },
    OtherRoute {
        route: "/images/image/{id}/{z}/{frame}/tile_files/{level}/{tile}",
        probe: Some("/images/image/{id}/1/1/tile_files/0/0_0.jpeg"),
        of: "/images/images/",
        anonymous: NOT_SIGNED_IN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "EXACT's DeepZoom tiles by image id",
    },
    OtherRoute {
        route: "/images/api/image/download/{id}/",
        probe: Some("/images/api/image/download/{id}/"),
        of: "/images/images/",
        anonymous: NOT_SIGNED_IN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "exact-sync's download of the original file",
    },
    OtherRoute {
        route: "/images/images/{id}/get_patch",
        probe: Some("/api/v1/images/images/{id}/get_patch?x=0&y=0&w=8&h=8"),
        of: "/images/images/",
        anonymous: NOT_SIGNED_IN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "get_patch without its slash, as exact-sync calls it",
    },
    OtherRoute {
        route: "/images/set_versions/{id}/add/",
        probe: Some("/api/v1/images/set_versions/{id}/add/"),
        of: "/images/set_versions/",
        anonymous: NOT_BUILT,
        outsider: NOT_BUILT,
        rule: Rule::SignedIn,
        allowed: NOT_BUILT,
        why: "attaching a file to a version is not built: 501 to everyone, reading nothing",
    },
    OtherRoute {
        route: "/processing/{*rest}",
        probe: Some("/api/v1/processing/plugins/"),
        of: "",
        anonymous: NOT_BUILT,
        outsider: NOT_BUILT,
        rule: Rule::SignedIn,
        allowed: NOT_BUILT,
        why: "EXACT's plugins are not built",
    },
    OtherRoute {
        route: "/images/registration/",
        probe: Some("/api/v1/images/registration/"),
        of: "",
        anonymous: NOT_BUILT,
        outsider: NOT_BUILT,
        rule: Rule::SignedIn,
        allowed: NOT_BUILT,
        why: "EXACT's registration is not built",
    },
    OtherRoute {
        route: "/images/registration/{*rest}",
        probe: Some("/api/v1/images/registration/1/"),
        of: "",
        anonymous: NOT_BUILT,
        outsider: NOT_BUILT,
        rule: Rule::SignedIn,
        allowed: NOT_BUILT,
        why: "EXACT's registration is not built",
    },
    OtherRoute {
        route: "/",
        probe: Some("/"),
        of: "",
        anonymous: TO_LOGIN,
        outsider: OWN,
        rule: Rule::SignedIn,
        allowed: OWN,
        why: "the home page: the caller's own teams and sets",
    },
    OtherRoute {
        route: "/accounts/login/",
        probe: Some("/accounts/login/"),
        of: "",
        anonymous: OWN,
        outsider: OWN,
        rule: Rule::SignedIn,
        allowed: OWN,
        why: "the login page (its POST is covered by security.rs: same origin only)",
    },
    OtherRoute {
        route: "/accounts/logout/",
        probe: None,
        of: "",
        anonymous: &[],
        outsider: &[],
        rule: Rule::SignedIn,
        allowed: OWN,
        why: "POST only, with the session's CSRF token: security.rs",
    },
    OtherRoute {
        route: "/images/imageset/{id}/",
        probe: Some("/images/imageset/{id}/"),
        of: "/images/image_sets/",
        anonymous: TO_LOGIN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "a set's page",
    },
    OtherRoute {
        route: "/images/imageset/{id}/diff/",
        probe: Some("/images/imageset/{id}/diff/?from=1"),
        of: "/images/image_sets/",
        anonymous: TO_LOGIN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "what changed in a set between two moments",
    },
    OtherRoute {
        route: "/users/team/{id}/",
        probe: Some("/users/team/{id}/"),
        of: "/users/teams/",
        anonymous: TO_LOGIN,
        outsider: HIDDEN,
        rule: Rule::Team,
        allowed: OWN,
        why: "a team's page",
    },
    OtherRoute {
        route: "/users/settings/",
        probe: Some("/users/settings/"),
        of: "",
        anonymous: TO_LOGIN,
        outsider: OWN,
        rule: Rule::SignedIn,
        allowed: OWN,
        why: "one's own settings",
    },
    OtherRoute {
        route: "/images/imageset/{id}/download/",
        probe: Some("/images/imageset/{id}/download/"),
        of: "/images/image_sets/",
        anonymous: NOT_SIGNED_IN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: ARCHIVE,
        why: "EXACT's zip download of a set",
    },
    OtherRoute {
        route: "/images/imageset/{id}/label-upload/",
        probe: None,
        of: "",
        anonymous: &[],
        outsider: &[],
        rule: Rule::AnnotateSet,
        allowed: OWN,
        why: "POST only (multipart): exports.rs refuses an outsider (404) and imports as a member",
    },
    OtherRoute {
        route: "/users/settings/password/",
        probe: None,
        of: "",
        anonymous: &[],
        outsider: &[],
        rule: Rule::SignedIn,
        allowed: OWN,
        why: "POST only, one's own password, with the CSRF token: rest.rs and the browser test",
    },
    OtherRoute {
        route: "/administration/",
        probe: Some("/administration/"),
        of: "",
        anonymous: TO_LOGIN,
        outsider: OWN,
        rule: Rule::SignedIn,
        allowed: OWN,
        why: "the caller's own teams' products and types (accounts only for staff)",
    },
    OtherRoute {
        route: "/administration/export_formats/",
        probe: Some("/administration/export_formats/"),
        of: "",
        anonymous: TO_LOGIN,
        outsider: OWN,
        rule: Rule::SignedIn,
        allowed: OWN,
        why: "the caller's own teams' formats and the public ones (a new one by default)",
    },
    OtherRoute {
        route: "/annotations/{image}/",
        probe: Some("/annotations/{id}/"),
        of: "/images/images/",
        anonymous: TO_LOGIN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "the viewer of an image",
    },
    OtherRoute {
        route: "/audit/",
        probe: Some("/audit/?annotation={id}"),
        of: "/annotations/annotations/",
        anonymous: TO_LOGIN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "the audit trail of an annotation (images, sets and users: audit.rs)",
    },
    OtherRoute {
        route: "/audit/report/",
        probe: Some("/audit/report/?set={id}"),
        of: "/images/image_sets/",
        anonymous: TO_LOGIN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "the printable audit report of a set",
    },
    OtherRoute {
        route: "/annotations/{image}/verify/",
        probe: Some("/annotations/{id}/verify/"),
        of: "/images/images/",
        anonymous: TO_LOGIN,
        outsider: HIDDEN,
        rule: Rule::ReadSet,
        allowed: OWN,
        why: "the verification page of an image",
    },
    OtherRoute {
        route: "/static/{version}/{*path}",
        probe: None,
        of: "",
        anonymous: &[],
        outsider: &[],
        rule: Rule::SignedIn,
        allowed: OWN,
        why: "the app's own scripts and styles, public; security.rs keeps them in their folder",
    },
];

/// Every route the server's router writes (in `api/src`: the REST API, EXACT's legacy paths,
/// the pages) is an operation of the API document or a row of `OTHER_ROUTES`: a new route
/// without a place in the matrix fails here.
#[test]
fn every_route_is_in_the_matrix() {
    let documented: Vec<String> = operations().into_iter().map(|(_, path)| path).collect();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut routes = Vec::new();
    for file in rust_files(&root) {
        if file.ends_with("routes/tiles.rs") {
            continue; // the tile server, a process of its own: its token is tested in tiles.rs
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let literal = rest.trim_start();
            if let Some(quoted) = literal.strip_prefix('"') {
                let route = &quoted[..quoted.find('"').unwrap()];
                routes.push((file.display().to_string(), route.to_owned()));
            }
        }
    }
    assert!(routes.len() > 60, "only {} routes found", routes.len());
    let mut unplaced = Vec::new();
    for (file, route) in &routes {
        let in_document = documented.iter().any(|d| d == route);
        let in_table = OTHER_ROUTES.iter().any(|r| r.route == route);
        if !in_document && !in_table {
            unplaced.push(format!("{route} ({file})"));
        }
    }
    assert!(
        unplaced.is_empty(),
        "routes outside the permission matrix:\n{}",
        unplaced.join("\n")
    );
    for row in OTHER_ROUTES {
        assert!(!row.why.is_empty());
        assert!(
            routes.iter().any(|(_, r)| r == row.route),
            "{} is in the table but no longer routed",
            row.route
        );
    }
}

fn rust_files(folder: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}
