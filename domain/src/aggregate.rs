//! One trait over every aggregate, as cqrs-es has it: what a command decides from the state,
//! how an event evolves the state, and the stream the events live in. The command layer (in
//! `exact-api`) loads, decides and appends through it; tests state rules through [`given`].

use crate::error::DomainError;
use crate::event::DomainEvent;

pub trait Aggregate {
    type State: Send + Sync;
    type Command: Send + Sync;
    type Event: DomainEvent + Send + Sync;
    /// What the rules need to know beyond the stream (the actor, read-model facts).
    type Context: Send + Sync;
    type Error: Into<DomainError> + std::fmt::Debug + PartialEq;
    /// The stream prefix and the id counter's name.
    const KIND: &'static str;

    fn decide(
        state: Option<&Self::State>,
        command: &Self::Command,
        context: &Self::Context,
    ) -> Result<Vec<Self::Event>, Self::Error>;

    fn evolve(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State>;

    /// The stream of aggregate `id`, e.g. `image_set-12`.
    fn stream(id: i64) -> String {
        format!("{}-{id}", Self::KIND)
    }
}

/// Implements [`Aggregate`] for a module with `decide` and `evolve`.
macro_rules! aggregate {
    ($name:ident, $module:ident, $kind:literal, $state:ident, $command:ident, $event:ident, $context:ident, $error:ty) => {
        #[doc = concat!("The `", $kind, "` aggregate: [`crate::", stringify!($module), "`]'s rules.")]
        #[derive(Debug)]
        pub struct $name;

        impl Aggregate for $name {
            type State = crate::$module::$state;
            type Command = crate::$module::$command;
            type Event = crate::$module::$event;
            type Context = crate::$module::$context;
            type Error = $error;
            const KIND: &'static str = $kind;

            fn decide(
                state: Option<&Self::State>,
                command: &Self::Command,
                context: &Self::Context,
            ) -> Result<Vec<Self::Event>, Self::Error> {
                crate::$module::decide(state, command, context)
            }

            fn evolve(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State> {
                crate::$module::evolve(state, event)
            }
        }
    };
}

aggregate!(
    UserAggregate,
    user,
    "user",
    User,
    UserCommand,
    UserEvent,
    UserContext,
    DomainError
);
aggregate!(
    TeamAggregate,
    team,
    "team",
    Team,
    TeamCommand,
    TeamEvent,
    TeamContext,
    DomainError
);
aggregate!(
    ProductAggregate,
    product,
    "product",
    Product,
    ProductCommand,
    ProductEvent,
    ProductContext,
    DomainError
);
aggregate!(
    AnnotationTypeAggregate,
    annotation_type,
    "annotation_type",
    AnnotationType,
    AnnotationTypeCommand,
    AnnotationTypeEvent,
    AnnotationTypeContext,
    DomainError
);
aggregate!(
    ImageSetAggregate,
    image_set,
    "image_set",
    ImageSet,
    ImageSetCommand,
    ImageSetEvent,
    ImageSetContext,
    DomainError
);
aggregate!(
    ImageAggregate,
    image,
    "image",
    Image,
    ImageCommand,
    ImageEvent,
    ImageContext,
    DomainError
);
aggregate!(
    ExportFormatAggregate,
    export_format,
    "export_format",
    ExportFormat,
    ExportFormatCommand,
    ExportFormatEvent,
    ExportFormatContext,
    DomainError
);
aggregate!(
    AnnotationAggregate,
    annotation,
    "annotation",
    Annotation,
    AnnotationCommand,
    AnnotationEvent,
    AnnotationContext,
    crate::annotation::AnnotationError
);

/// A rule stated as a test reads it: `given(&[events]).when(command, &context)` is what the
/// aggregate decides after those events; `.state()` is what they left.
pub struct Given<A: Aggregate>(Option<A::State>);

impl<A: Aggregate> std::fmt::Debug for Given<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Given<{}>", A::KIND)
    }
}

pub fn given<A: Aggregate>(events: &[A::Event]) -> Given<A> {
    Given(events.iter().fold(None, A::evolve))
}

impl<A: Aggregate> Given<A> {
    #[expect(
        clippy::needless_pass_by_value,
        reason = "tests read as given(..).when(Command::.., ..)"
    )]
    pub fn when(
        &self,
        command: A::Command,
        context: &A::Context,
    ) -> Result<Vec<A::Event>, A::Error> {
        A::decide(self.0.as_ref(), &command, context)
    }

    pub fn state(&self) -> Option<&A::State> {
        self.0.as_ref()
    }

    /// The state after `events` more.
    #[must_use]
    pub fn and(self, events: &[A::Event]) -> Self {
        Given(events.iter().fold(self.0, A::evolve))
    }
}
