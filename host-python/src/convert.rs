//! How WIT values cross to Python, and the macros that make a Python class
//! of a WIT record or enum.
//!
//! Every class is a newtype over the type `bindgen!` generates from the WIT
//! (`delimiter_embed::types`): the record is stored as is, passed to the
//! component as is, and read field by field through getters. [`Field`]
//! says, per field type, what a constructor takes and what a getter gives.

use pyo3::IntoPyObjectExt;
use pyo3::prelude::*;
use std::marker::PhantomData;

/// A field's form on the Python side: `Self` names the form (usually the
/// WIT type itself), [`Field::Wit`] is the field's WIT type.
pub trait Field {
    type Wit;
    /// What a constructor takes for the field.
    type Arg;
    /// What the getter returns.
    type Py;
    fn from_arg(arg: Self::Arg) -> Self::Wit;
    fn to_py(value: &Self::Wit) -> Self::Py;
}

macro_rules! plain {
    ($($t:ty),*) => {$(
        impl Field for $t {
            type Wit = $t;
            type Arg = $t;
            type Py = $t;
            fn from_arg(arg: $t) -> $t {
                arg
            }
            fn to_py(value: &$t) -> $t {
                value.clone()
            }
        }
    )*};
}

plain!(String, i64, u64, u32, bool);

impl<T: Field> Field for Option<T> {
    type Wit = Option<T::Wit>;
    type Arg = Option<T::Arg>;
    type Py = Option<T::Py>;
    fn from_arg(arg: Self::Arg) -> Self::Wit {
        arg.map(T::from_arg)
    }
    fn to_py(value: &Self::Wit) -> Self::Py {
        value.as_ref().map(T::to_py)
    }
}

impl<T: Field> Field for Vec<T> {
    type Wit = Vec<T::Wit>;
    type Arg = Vec<T::Arg>;
    type Py = Vec<T::Py>;
    fn from_arg(arg: Self::Arg) -> Self::Wit {
        arg.into_iter().map(T::from_arg).collect()
    }
    fn to_py(value: &Self::Wit) -> Self::Py {
        value.iter().map(T::to_py).collect()
    }
}

/// A field whose constructor argument may be None (or left out): its WIT
/// type's default then.
pub struct OrDefault<T>(PhantomData<T>);

impl<T: Field> Field for OrDefault<T>
where
    T::Wit: Default,
{
    type Wit = T::Wit;
    type Arg = Option<T::Arg>;
    type Py = T::Py;
    fn from_arg(arg: Self::Arg) -> Self::Wit {
        arg.map(T::from_arg).unwrap_or_default()
    }
    fn to_py(value: &Self::Wit) -> Self::Py {
        T::to_py(value)
    }
}

/// Python's repr of a getter's value.
pub fn repr<'py>(py: Python<'py>, value: impl IntoPyObject<'py>) -> PyResult<String> {
    Ok(value.into_bound_py_any(py)?.repr()?.to_string())
}

/// `$name`, a pyclass newtype over the WIT type `$wit`, is how `$wit`
/// crosses into and out of Python.
macro_rules! newtype_field {
    ($name:ident($wit:ident)) => {
        impl $crate::convert::Field for ::delimiter_embed::types::$wit {
            type Wit = Self;
            type Arg = $name;
            type Py = $name;
            fn from_arg(arg: $name) -> Self {
                arg.0
            }
            fn to_py(value: &Self) -> $name {
                $name(::core::clone::Clone::clone(value))
            }
        }
    };
}

/// A frozen, hashable class over the WIT record `$wit`, equal when the
/// records are, with a getter per field, a repr that reads like its
/// constructor, and (unless `@custom`, which brings its own `#[new]`) a
/// constructor taking the fields in order, with their defaults. Methods
/// after the field list go into the class as they are.
macro_rules! record {
    (@custom $(#[$doc:meta])* $name:ident($wit:ident) { $($field:ident: $ty:ty),* $(,)? }
     $($methods:tt)*) => {
        $(#[$doc])*
        #[::pyo3::pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name(pub ::delimiter_embed::types::$wit);

        $crate::convert::newtype_field!($name($wit));

        #[::pyo3::pymethods]
        impl $name {
            $(
                #[getter]
                fn $field(&self) -> <$ty as $crate::convert::Field>::Py {
                    <$ty as $crate::convert::Field>::to_py(&self.0.$field)
                }
            )*

            fn __repr__(&self, py: ::pyo3::Python<'_>) -> ::pyo3::PyResult<String> {
                let fields: Vec<String> = vec![$(
                    format!("{}={}", stringify!($field), $crate::convert::repr(
                        py, <$ty as $crate::convert::Field>::to_py(&self.0.$field))?)
                ),*];
                Ok(format!("{}({})", stringify!($name), fields.join(", ")))
            }

            $($methods)*
        }
    };
    ($(#[$doc:meta])* $name:ident($wit:ident) { $($field:ident: $ty:ty $(= $default:expr)?),* $(,)? }
     $($methods:tt)*) => {
        $crate::convert::record! {
            @custom $(#[$doc])* $name($wit) { $($field: $ty),* }

            #[new]
            #[pyo3(signature = ($($field $(= $default)?),*))]
            fn new($($field: <$ty as $crate::convert::Field>::Arg),*) -> Self {
                Self(::delimiter_embed::types::$wit {
                    $($field: <$ty as $crate::convert::Field>::from_arg($field)),*
                })
            }

            $($methods)*
        }
    };
}

/// A class over the WIT enum `$wit`: one class attribute per case (`$py`),
/// `value` and `str()` its canonical name, repr `Class.CASE`.
macro_rules! enum_class {
    ($(#[$doc:meta])* $name:ident($wit:ident) {
        $($(#[$case_doc:meta])* $py:ident = $case:ident),* $(,)?
    }) => {
        $(#[$doc])*
        #[::pyo3::pyclass(module = "delimiter", frozen, eq, hash, from_py_object)]
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $name(pub ::delimiter_embed::types::$wit);

        impl $name {
            /// The WIT's name of the case (embed's list, the only one).
            pub fn as_str(self) -> &'static str {
                self.0.as_str()
            }
        }

        $crate::convert::newtype_field!($name($wit));

        #[::pyo3::pymethods]
        impl $name {
            $(
                $(#[$case_doc])*
                #[classattr]
                #[allow(non_snake_case)]
                fn $py() -> Self {
                    Self(::delimiter_embed::types::$wit::$case)
                }
            )*

            /// The canonical (kebab-case) name.
            #[getter]
            fn value(&self) -> &'static str {
                self.as_str()
            }

            fn __str__(&self) -> &'static str {
                self.as_str()
            }

            fn __repr__(&self) -> &'static str {
                match self.0 {
                    $(::delimiter_embed::types::$wit::$case =>
                        concat!(stringify!($name), ".", stringify!($py))),*
                }
            }
        }
    };
}

pub(crate) use {enum_class, newtype_field, record};
