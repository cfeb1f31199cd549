//! [`text_enum!`]: quire's states (task and document statuses, page sources,
//! indexing phases...) are Rust enums everywhere; their names exist only at
//! the edges, in the database and in JSON. The macro gives an enum those names.

/// Gives an enum `ALL`, `as_str`, `Display` and a `FromStr` whose error
/// lists the accepted names: `text_enum!(Kind { A => "a", B => "b" });`.
macro_rules! text_enum {
    ($t:ty { $($v:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            /// Every value, in declaration order.
            pub const ALL: &'static [$t] = &[$(<$t>::$v),+];

            /// The name stored in the database and shown to users.
            pub fn as_str(self) -> &'static str {
                match self { $(<$t>::$v => $s),+ }
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
        impl std::str::FromStr for $t {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok(<$t>::$v),)+
                    _ => Err(format!(
                        "unknown {} {s:?}; expected one of: {}",
                        stringify!($t),
                        [$($s),+].join(", ")
                    )),
                }
            }
        }
    };
}

pub(crate) use text_enum;
