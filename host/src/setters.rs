//! Chained setters for a `#[non_exhaustive]` settings struct (one per
//! public field), so that embedders can build it from its `Default`
//! outside this crate, where a struct literal is refused.

/// `setters!(/// docs of the impl block
/// Type { field: FieldType, ... })` writes, for each field, `pub fn
/// field(mut self, field: FieldType) -> Self`, documented as setting that
/// field.
macro_rules! setters {
    ($(#[$doc:meta])* $ty:ident { $($field:ident: $field_ty:ty),* $(,)? }) => {
        $(#[$doc])*
        impl $ty {
            $(
                #[doc = concat!(
                    "Sets [`", stringify!($ty), "::", stringify!($field),
                    "`](#structfield.", stringify!($field), ")."
                )]
                pub fn $field(mut self, $field: $field_ty) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}

pub(crate) use setters;
