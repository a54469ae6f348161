//! What the import did not carry, changed, or left to the configuration that stays in place:
//! one line each on stderr, naming the source resource and field.

#[derive(Default)]
pub struct Notes {
    lines: Vec<String>,
    /// Something was not carried, or left to the policy in place: exit status 2.
    incomplete: bool,
}

impl Notes {
    /// Not carried: what it guarded is refused (or, for a DENY condition, refused more widely).
    pub fn not_carried(&mut self, source: &str, field: &str, what: impl AsRef<str>) {
        self.incomplete = true;
        self.push("not carried", source, field, what.as_ref());
    }

    /// Left to the RBAC filter or AuthorizationPolicy that stays in place (not about the token).
    pub fn left_in_place(&mut self, source: &str, field: &str, what: impl AsRef<str>) {
        self.incomplete = true;
        self.push("left in place", source, field, what.as_ref());
    }

    /// Carried with another meaning, said so the reader can judge it.
    pub fn changed(&mut self, source: &str, field: &str, what: impl AsRef<str>) {
        self.push("changed", source, field, what.as_ref());
    }

    /// Carried, with something worth knowing (jwt-guard is stricter here, say).
    pub fn note(&mut self, source: &str, field: &str, what: impl AsRef<str>) {
        self.push("note", source, field, what.as_ref());
    }

    /// Once each: one policy can reach the same line through several alternatives.
    fn push(&mut self, kind: &str, source: &str, field: &str, what: &str) {
        let line = if field.is_empty() {
            format!("{kind}: {source}: {what}")
        } else {
            format!("{kind}: {source}: {field}: {what}")
        };
        if !self.lines.contains(&line) {
            self.lines.push(line);
        }
    }

    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    pub fn complete(&self) -> bool {
        !self.incomplete
    }
}
