//! The product aggregate: one stream per product, `product-{id}`.
//!
//! A product groups annotation types and is linked to image sets; a set offers the active types
//! of every product linked to it. EXACT guarded products with Django model permissions (in
//! practice: staff); here the admins of the product's team manage them, and staff and
//! superusers everywhere.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{allow, name_in, DomainError};
use crate::event::{Actor, DomainEvent, TeamRole};
use crate::permissions::{Permission, Permissions};

pub fn stream(id: i64) -> String {
    format!("product-{id}")
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload")]
pub enum ProductEvent {
    ProductCreated {
        id: i64,
        team: i64,
        name: String,
        description: String,
        creator: i64,
    },
    ProductChanged {
        id: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
    },
    ProductLinkedToImageSet {
        id: i64,
        image_set: i64,
    },
    ProductUnlinkedFromImageSet {
        id: i64,
        image_set: i64,
    },
    /// Gone from lists; its types are offered nowhere any more. Its annotation types and their
    /// annotations stay in the log and in reads as of earlier moments.
    ProductDeleted {
        id: i64,
    },
}

impl DomainEvent for ProductEvent {
    const NAMES: &'static [&'static str] = &[
        "ProductCreated",
        "ProductChanged",
        "ProductLinkedToImageSet",
        "ProductUnlinkedFromImageSet",
        "ProductDeleted",
    ];
}

#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    pub id: i64,
    pub team: i64,
    pub name: String,
    pub description: String,
    pub image_sets: BTreeSet<i64>,
    pub deleted: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ProductCommand {
    Create {
        id: i64,
        team: i64,
        name: String,
        description: String,
    },
    Change {
        name: Option<String>,
        description: Option<String>,
    },
    Link {
        image_set: i64,
    },
    Unlink {
        image_set: i64,
    },
    Delete,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ProductContext {
    pub actor: Actor,
    /// The actor's role in the product's team (for `Create`: the team it names).
    pub team_role: TeamRole,
    /// Another product of the team has this name.
    pub name_taken: bool,
    /// The actor's permissions on the image set a link names.
    pub set_permissions: Permissions,
}

pub const NAME_LENGTH: (usize, usize) = (1, 100);

/// Team admins, staff and superusers manage products and their annotation types.
pub fn manages(actor: Actor, team_role: TeamRole) -> bool {
    actor.superuser || actor.staff || team_role == TeamRole::Admin
}

pub fn decide(
    state: Option<&Product>,
    command: &ProductCommand,
    context: &ProductContext,
) -> Result<Vec<ProductEvent>, DomainError> {
    allow(
        manages(context.actor, context.team_role),
        "manage this team's products",
    )?;
    let taken = |name: &str| -> Result<(), DomainError> {
        if context.name_taken {
            Err(DomainError::Taken {
                field: "name",
                value: name.to_owned(),
            })
        } else {
            Ok(())
        }
    };
    if let ProductCommand::Create {
        id,
        team,
        name,
        description,
    } = command
    {
        if state.is_some() {
            return Err(DomainError::AlreadyExists("product"));
        }
        let name = name_in("name", name, NAME_LENGTH.0, NAME_LENGTH.1)?;
        taken(&name)?;
        return Ok(vec![ProductEvent::ProductCreated {
            id: *id,
            team: *team,
            name,
            description: description.clone(),
            creator: context.actor.id,
        }]);
    }
    let product = state.ok_or(DomainError::NotFound("product"))?;
    if product.deleted {
        return Err(DomainError::Deleted("product"));
    }
    let id = product.id;
    match command {
        ProductCommand::Create { .. } => unreachable!("handled above"),
        ProductCommand::Change { name, description } => {
            let name = match name {
                Some(n) => Some(name_in("name", n, NAME_LENGTH.0, NAME_LENGTH.1)?)
                    .filter(|n| *n != product.name),
                None => None,
            };
            if let Some(n) = &name {
                taken(n)?;
            }
            let description = description.clone().filter(|d| *d != product.description);
            if name.is_none() && description.is_none() {
                return Ok(vec![]);
            }
            Ok(vec![ProductEvent::ProductChanged {
                id,
                name,
                description,
            }])
        }
        ProductCommand::Link { image_set } | ProductCommand::Unlink { image_set } => {
            if !context.set_permissions.contains(Permission::EditSet) {
                return Err(DomainError::ForbiddenInSet(Permission::EditSet));
            }
            let linked = product.image_sets.contains(image_set);
            let image_set = *image_set;
            Ok(match (command, linked) {
                (ProductCommand::Link { .. }, false) => {
                    vec![ProductEvent::ProductLinkedToImageSet { id, image_set }]
                }
                (ProductCommand::Unlink { .. }, true) => {
                    vec![ProductEvent::ProductUnlinkedFromImageSet { id, image_set }]
                }
                _ => vec![],
            })
        }
        ProductCommand::Delete => Ok(vec![ProductEvent::ProductDeleted { id }]),
    }
}

pub fn evolve(state: Option<Product>, event: &ProductEvent) -> Option<Product> {
    match (state, event) {
        (
            _,
            ProductEvent::ProductCreated {
                id,
                team,
                name,
                description,
                ..
            },
        ) => Some(Product {
            id: *id,
            team: *team,
            name: name.clone(),
            description: description.clone(),
            image_sets: BTreeSet::new(),
            deleted: false,
        }),
        (
            Some(mut p),
            ProductEvent::ProductChanged {
                name, description, ..
            },
        ) => {
            if let Some(n) = name {
                p.name.clone_from(n);
            }
            if let Some(d) = description {
                p.description.clone_from(d);
            }
            Some(p)
        }
        (Some(mut p), ProductEvent::ProductLinkedToImageSet { image_set, .. }) => {
            p.image_sets.insert(*image_set);
            Some(p)
        }
        (Some(mut p), ProductEvent::ProductUnlinkedFromImageSet { image_set, .. }) => {
            p.image_sets.remove(image_set);
            Some(p)
        }
        (Some(mut p), ProductEvent::ProductDeleted { .. }) => {
            p.deleted = true;
            p.image_sets.clear();
            Some(p)
        }
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::{given, ProductAggregate};
    use crate::permissions::{image_set_permissions, SetFlags, Standing};

    fn admin() -> ProductContext {
        ProductContext {
            actor: Actor::user(1),
            team_role: TeamRole::Admin,
            name_taken: false,
            set_permissions: image_set_permissions(
                Standing {
                    member: true,
                    ..Standing::default()
                },
                SetFlags::default(),
            ),
        }
    }

    fn product() -> Product {
        let create = ProductCommand::Create {
            id: 4,
            team: 2,
            name: "Mitosis".into(),
            description: String::new(),
        };
        let events = decide(None, &create, &admin()).unwrap();
        events.iter().fold(None, evolve).unwrap()
    }

    #[test]
    fn team_admins_staff_and_superusers_manage_products_members_do_not() {
        let member = ProductContext {
            team_role: TeamRole::Member,
            ..admin()
        };
        let rename = ProductCommand::Change {
            name: Some("Cells".into()),
            description: None,
        };
        assert!(matches!(
            decide(Some(&product()), &rename, &member),
            Err(DomainError::Forbidden(_))
        ));
        let staff = ProductContext {
            actor: Actor {
                staff: true,
                ..Actor::user(8)
            },
            ..member
        };
        assert_eq!(decide(Some(&product()), &rename, &staff).unwrap().len(), 1);
    }

    #[test]
    fn names_are_unique_per_team_and_unchanged_fields_are_no_event() {
        let taken = ProductContext {
            name_taken: true,
            ..admin()
        };
        let rename = ProductCommand::Change {
            name: Some("Cells".into()),
            description: None,
        };
        assert!(matches!(
            decide(Some(&product()), &rename, &taken),
            Err(DomainError::Taken { .. })
        ));
        let same = ProductCommand::Change {
            name: Some("Mitosis".into()),
            description: Some(String::new()),
        };
        assert!(decide(Some(&product()), &same, &taken).unwrap().is_empty());
    }

    #[test]
    fn linking_needs_edit_rights_on_the_set_and_is_idempotent() {
        let p = product();
        let link = ProductCommand::Link { image_set: 6 };
        let events = decide(Some(&p), &link, &admin()).unwrap();
        let linked = events.iter().fold(Some(p.clone()), evolve).unwrap();
        assert!(linked.image_sets.contains(&6));
        assert!(decide(Some(&linked), &link, &admin()).unwrap().is_empty());
        let reader = ProductContext {
            set_permissions: Permissions::of(&[Permission::Read]),
            ..admin()
        };
        assert_eq!(
            decide(Some(&p), &link, &reader),
            Err(DomainError::ForbiddenInSet(Permission::EditSet))
        );
    }

    #[test]
    fn managers_delete_a_product_once_and_it_takes_no_more_commands() {
        let created = decide(
            None,
            &ProductCommand::Create {
                id: 4,
                team: 2,
                name: "Mitosis".into(),
                description: String::new(),
            },
            &admin(),
        )
        .unwrap();
        let product = given::<ProductAggregate>(&created);
        let member = ProductContext {
            team_role: TeamRole::Member,
            ..admin()
        };
        assert!(matches!(
            product.when(ProductCommand::Delete, &member),
            Err(DomainError::Forbidden(_))
        ));
        let deleted = product.when(ProductCommand::Delete, &admin()).unwrap();
        assert_eq!(deleted, vec![ProductEvent::ProductDeleted { id: 4 }]);
        let gone = product.and(&deleted);
        assert!(gone.state().unwrap().deleted);
        for command in [
            ProductCommand::Delete,
            ProductCommand::Link { image_set: 6 },
            ProductCommand::Change {
                name: Some("Again".into()),
                description: None,
            },
        ] {
            assert_eq!(
                gone.when(command, &admin()),
                Err(DomainError::Deleted("product"))
            );
        }
    }
}
