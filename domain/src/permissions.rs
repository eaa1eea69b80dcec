//! Who may do what with an image set: EXACT's `ImageSet.get_perms`, as one pure function.
//!
//! - a member of the set's team: read, annotate, verify, edit and delete annotations, create
//!   and delete exports, edit the set;
//! - the team's admins and the set's creator (member or not): all of that, plus deleting the set
//!   and its images;
//! - anyone, on a `public` set: read and create exports;
//! - anyone, on a `public` set with `public_collaboration`: also annotate, verify, and edit and
//!   delete annotations;
//! - a superuser: everything.
//!
//! A set that was "set free" belongs to no team: then only its public flags count, for its
//! creator too.
//!
//! Beyond EXACT: a set's `image_lock` stops adding and deleting images for everyone but
//! superusers, through every door (EXACT checked it in its HTML views only, not in REST).

use std::fmt;

/// One thing that can be done with an image set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Annotate,
    Verify,
    EditAnnotation,
    DeleteAnnotation,
    CreateExport,
    DeleteExport,
    EditSet,
    AddImages,
    DeleteImages,
    DeleteSet,
}

impl Permission {
    pub const ALL: [Permission; 11] = [
        Permission::Read,
        Permission::Annotate,
        Permission::Verify,
        Permission::EditAnnotation,
        Permission::DeleteAnnotation,
        Permission::CreateExport,
        Permission::DeleteExport,
        Permission::EditSet,
        Permission::AddImages,
        Permission::DeleteImages,
        Permission::DeleteSet,
    ];

    fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of permissions.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct Permissions(u16);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);

    pub fn of(permissions: &[Permission]) -> Self {
        Self(permissions.iter().fold(0, |bits, p| bits | p.bit()))
    }

    pub fn contains(self, permission: Permission) -> bool {
        self.0 & permission.bit() != 0
    }

    #[must_use]
    pub fn with(self, other: Permissions) -> Self {
        Self(self.0 | other.0)
    }

    #[must_use]
    pub fn without(self, other: Permissions) -> Self {
        Self(self.0 & !other.0)
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

/// How a user stands to an image set: everything the rule needs, gathered by the caller.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Standing {
    pub superuser: bool,
    /// Member of the team that owns the set.
    pub member: bool,
    /// Admin of the team that owns the set.
    pub team_admin: bool,
    /// Created the set.
    pub creator: bool,
}

/// The flags of an image set that the rule reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetFlags {
    /// The set belongs to no team any more ("set free", or its team dissolved).
    pub freed: bool,
    pub public: bool,
    pub public_collaboration: bool,
    pub image_lock: bool,
}

/// What `standing` allows on a set with `flags`.
pub fn image_set_permissions(standing: Standing, flags: SetFlags) -> Permissions {
    use Permission::*;
    if standing.superuser {
        return Permissions::of(&Permission::ALL);
    }
    let mut granted = Permissions::NONE;
    let in_team = !flags.freed;
    if in_team && (standing.member || standing.team_admin || standing.creator) {
        granted = granted.with(Permissions::of(&[
            Read,
            Annotate,
            Verify,
            EditAnnotation,
            DeleteAnnotation,
            CreateExport,
            DeleteExport,
            EditSet,
            AddImages,
        ]));
    }
    if in_team && (standing.team_admin || standing.creator) {
        granted = granted.with(Permissions::of(&[DeleteSet, DeleteImages]));
    }
    if flags.public {
        granted = granted.with(Permissions::of(&[Read, CreateExport]));
        if flags.public_collaboration {
            granted = granted.with(Permissions::of(&[
                Annotate,
                Verify,
                EditAnnotation,
                DeleteAnnotation,
            ]));
        }
    }
    if flags.image_lock {
        granted = granted.without(Permissions::of(&[AddImages, DeleteImages]));
    }
    granted
}

#[cfg(test)]
mod tests {
    use super::Permission::*;
    use super::*;

    const MEMBER: &[Permission] = &[
        Read,
        Annotate,
        Verify,
        EditAnnotation,
        DeleteAnnotation,
        CreateExport,
        DeleteExport,
        EditSet,
        AddImages,
    ];

    /// EXACT's permission table, row by row: a standing and flags, and exactly what they allow.
    #[test]
    fn every_cell_of_the_permission_table() {
        let outsider = Standing::default();
        let member = Standing {
            member: true,
            ..outsider
        };
        let admin = Standing {
            member: true,
            team_admin: true,
            ..outsider
        };
        let creator_member = Standing {
            member: true,
            creator: true,
            ..outsider
        };
        // A creator who is not (or no longer) a member keeps every right on the set.
        let creator_outside = Standing {
            creator: true,
            ..outsider
        };
        let superuser = Standing {
            superuser: true,
            ..outsider
        };
        let private = SetFlags::default();
        let public = SetFlags {
            public: true,
            ..private
        };
        let collaborative = SetFlags {
            public: true,
            public_collaboration: true,
            ..private
        };
        // public_collaboration without public grants nothing, as in EXACT.
        let collaboration_only = SetFlags {
            public_collaboration: true,
            ..private
        };
        let locked = SetFlags {
            image_lock: true,
            ..private
        };

        let member_plus = |extra: &[Permission]| [MEMBER, extra].concat();
        let rows: Vec<(&str, Standing, SetFlags, Vec<Permission>)> = vec![
            ("outsider, private", outsider, private, vec![]),
            (
                "outsider, collaboration flag alone",
                outsider,
                collaboration_only,
                vec![],
            ),
            (
                "outsider, public",
                outsider,
                public,
                vec![Read, CreateExport],
            ),
            (
                "outsider, public collaboration",
                outsider,
                collaborative,
                vec![
                    Read,
                    CreateExport,
                    Annotate,
                    Verify,
                    EditAnnotation,
                    DeleteAnnotation,
                ],
            ),
            ("member, private", member, private, MEMBER.to_vec()),
            (
                "member, public collaboration",
                member,
                collaborative,
                MEMBER.to_vec(),
            ),
            (
                "admin, private",
                admin,
                private,
                member_plus(&[DeleteSet, DeleteImages]),
            ),
            (
                "creator, private",
                creator_member,
                private,
                member_plus(&[DeleteSet, DeleteImages]),
            ),
            (
                "creator outside the team, private",
                creator_outside,
                private,
                member_plus(&[DeleteSet, DeleteImages]),
            ),
            (
                "creator outside the team, public",
                creator_outside,
                public,
                member_plus(&[DeleteSet, DeleteImages]),
            ),
            (
                "creator, freed set (public, collaborative, locked)",
                creator_member,
                SetFlags {
                    freed: true,
                    public: true,
                    public_collaboration: true,
                    image_lock: true,
                },
                vec![
                    Read,
                    CreateExport,
                    Annotate,
                    Verify,
                    EditAnnotation,
                    DeleteAnnotation,
                ],
            ),
            (
                "admin, freed private set",
                admin,
                SetFlags {
                    freed: true,
                    ..private
                },
                vec![],
            ),
            (
                "member, locked",
                member,
                locked,
                MEMBER.iter().copied().filter(|p| *p != AddImages).collect(),
            ),
            (
                "admin, locked",
                admin,
                locked,
                MEMBER
                    .iter()
                    .copied()
                    .filter(|p| *p != AddImages)
                    .chain([DeleteSet])
                    .collect(),
            ),
            (
                "superuser, private",
                superuser,
                private,
                Permission::ALL.to_vec(),
            ),
            (
                "superuser, locked",
                superuser,
                locked,
                Permission::ALL.to_vec(),
            ),
        ];
        for (name, standing, flags, expected) in rows {
            let got = image_set_permissions(standing, flags);
            assert_eq!(got, Permissions::of(&expected), "{name}");
        }
    }

    /// Across all 256 combinations: more standing or more openness never takes a right away,
    /// reading comes with any right, and a lock only ever removes image changes.
    #[test]
    fn rights_only_grow_with_standing_and_openness() {
        let all: Vec<(Standing, SetFlags)> = (0u16..256)
            .map(|bits| {
                let b = |i: u16| bits & (1 << i) != 0;
                (
                    Standing {
                        superuser: b(0),
                        member: b(1),
                        team_admin: b(2),
                        creator: b(3),
                    },
                    SetFlags {
                        public: b(4),
                        public_collaboration: b(5),
                        image_lock: b(6),
                        freed: b(7),
                    },
                )
            })
            .collect();
        for &(standing, flags) in &all {
            let got = image_set_permissions(standing, flags);
            let unlocked = image_set_permissions(
                standing,
                SetFlags {
                    image_lock: false,
                    ..flags
                },
            );
            assert_eq!(
                got.without(Permissions::of(&[AddImages, DeleteImages])),
                unlocked.without(Permissions::of(&[AddImages, DeleteImages]))
            );
            let only_set_rights = Permissions::of(&[DeleteSet, DeleteImages]);
            if got.without(only_set_rights) != Permissions::NONE {
                assert!(got.contains(Read), "{standing:?} {flags:?}");
            }
            for &(other, other_flags) in &all {
                let more = (other.superuser || !standing.superuser)
                    && (other.member || !standing.member)
                    && (other.team_admin || !standing.team_admin)
                    && (other.creator || !standing.creator)
                    && (other_flags.public || !flags.public)
                    && (other_flags.public_collaboration || !flags.public_collaboration)
                    && other_flags.image_lock == flags.image_lock
                    && other_flags.freed == flags.freed;
                if more {
                    let wider = image_set_permissions(other, other_flags);
                    assert_eq!(
                        wider.with(got),
                        wider,
                        "{other:?} {other_flags:?} lost a right of {standing:?} {flags:?}"
                    );
                }
            }
        }
    }
}
