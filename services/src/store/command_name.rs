//! A command's name for metric labels: its variant (`CreateInstance`), read from the start
//! of its `Debug` output. Formatting stops at the first character past the name, so the
//! command's fields (which may hold user input) are never formatted.

use std::fmt::{self, Debug, Write};

/// The variant name of `command`, or `unknown` if its `Debug` output starts otherwise.
pub fn of(command: &impl Debug) -> String {
    let mut name = Name(String::new());
    // An error here is the writer stopping at the end of the name.
    let _ = write!(name, "{command:?}");
    if name.0.is_empty() { "unknown".into() } else { name.0 }
}

struct Name(String);

impl Write for Name {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if !(c.is_ascii_alphanumeric() || c == '_') || self.0.len() >= 64 {
                return Err(fmt::Error);
            }
            self.0.push(c);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug)]
    #[allow(dead_code)]
    enum Command {
        Create { secret: String },
        Delete,
        Named(u32),
    }

    #[test]
    fn the_variant_is_named_without_its_fields() {
        assert_eq!(super::of(&Command::Create { secret: "hunter2".into() }), "Create");
        assert_eq!(super::of(&Command::Delete), "Delete");
        assert_eq!(super::of(&Command::Named(3)), "Named");
    }
}
