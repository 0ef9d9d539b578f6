//! Options maps (`#{ rw: true }`) into option structs, strictly: an unknown
//! key is an error with the nearest known key, and a value of the wrong type
//! names its key and the type the key takes. serde's own messages name
//! neither the key nor anything a profile author would call a type.

use super::Res;
use crate::script::diagnostics::type_word;
use rhai::{Dynamic, EvalAltResult, Map};
use serde::de::DeserializeOwned;

/// `map` as the options `T` of the call `what` (`bind`, `tmpfs`, ...).
pub(crate) fn options<T: DeserializeOwned>(map: &Map, what: &str) -> Res<T> {
    if let Some(keys) = keys_of::<T>() {
        if let Some(key) = map.keys().find(|k| !keys.contains(&k.as_str())) {
            return Err(format!(
                "{what} option {key} is unknown{} (options of {what}: {})",
                crate::suggest::did_you_mean(key, keys.iter().copied()),
                keys.join(", ")
            )
            .into());
        }
    }
    rhai::serde::from_dynamic(&Dynamic::from_map(map.clone())).map_err(|whole| {
        // The key at fault is the one that fails on its own; alone, the
        // others fail only for the fields they leave missing.
        let culprit = map.iter().find_map(|(key, value)| {
            let alone = Map::from([(key.clone(), value.clone())]);
            match rhai::serde::from_dynamic::<T>(&Dynamic::from_map(alone)) {
                Err(e) if missing_field(&e).is_none() => Some((key, value, e)),
                _ => None,
            }
        });
        let message = match (culprit, missing_field(&whole)) {
            (Some((key, value, e)), _) => format!("{what} option {key}: {}", wrong_type(value, &e)),
            (None, Some(field)) => format!("{what} option {field} is required"),
            (None, None) => format!("{what} options: {}", serde_message(&whole)),
        };
        message.into()
    })
}

/// Rhai's serde messages carry their own "in ..." tails; keep the useful part.
pub(crate) fn strip_rhai_noise(msg: &str) -> String {
    let first = msg.lines().next().unwrap_or(msg);
    first
        .strip_prefix("Syntax error: ")
        .unwrap_or(first)
        .to_string()
}

fn serde_message(e: &EvalAltResult) -> String {
    strip_rhai_noise(&e.to_string())
}

/// The field serde says is missing (its wording is stable: `missing field `x``).
fn missing_field(e: &EvalAltResult) -> Option<String> {
    let text = serde_message(e);
    let field = text.strip_prefix("missing field `")?.strip_suffix('`')?;
    Some(field.to_string())
}

/// What is wrong with `value` for its key, from the deserializer's error.
fn wrong_type(value: &Dynamic, e: &EvalAltResult) -> String {
    match e {
        // Rhai's names: the type the option takes, and the one it was given.
        EvalAltResult::ErrorMismatchOutputType(wanted, given, _) => {
            let (wanted, given) = (a_type(wanted), a_type(given));
            let outer = a_type(value.type_name());
            match (value.is_array(), value.is_map()) {
                // The value is of the right kind; one of its items is not.
                (true, _) if given != outer => {
                    format!("every element must be {wanted}, found {given}")
                }
                (_, true) if given != outer => {
                    format!("every value must be {wanted}, found {given}")
                }
                _ => format!("expected {wanted}, got {given}"),
            }
        }
        // An option of several types (`#[serde(expecting = "...")]`).
        other => {
            let text = serde_message(other);
            match text.starts_with("expected ") {
                true => format!("{text}, got {}", a_type(value.type_name())),
                false => text,
            }
        }
    }
}

/// A type named as a profile author says it: `a bool`, `an int`, `a string`,
/// `an array`, `a map`, from Rhai's names and Rust's (`alloc::vec::Vec<i64>`).
fn a_type(name: &str) -> String {
    let (outer, inner) = name.split_once('<').unwrap_or((name, ""));
    let word = match outer.rsplit("::").next().unwrap_or(outer) {
        "Option" => return a_type(inner.strip_suffix('>').unwrap_or(inner)),
        "Vec" | "Array" => "array".to_string(),
        "BTreeMap" | "HashMap" | "Map" => "map".to_string(),
        _ => type_word(name).to_lowercase(),
    };
    match word.chars().next() {
        Some('a' | 'e' | 'i' | 'o' | 'u') => format!("an {word}"),
        Some('(') => word,
        _ => format!("a {word}"),
    }
}

/// The keys an options struct takes, from its own `Deserialize`: serde hands
/// the field names to `deserialize_struct`, the one call this deserializer
/// answers. `None` for a type that is not a struct.
fn keys_of<T: DeserializeOwned>() -> Option<&'static [&'static str]> {
    use serde::de::{Deserializer, Visitor};

    #[derive(Debug)]
    struct Stop;
    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("field names only")
        }
    }
    impl std::error::Error for Stop {}
    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }

    struct Fields(Option<&'static [&'static str]>);
    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = Stop;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0 = Some(fields);
            Err(Stop)
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields = Fields(None);
    let _ = T::deserialize(&mut fields);
    fields.0
}
