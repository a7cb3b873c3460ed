//! The categories catalog entries are filed under (`categories` in `servers.json`): ids in
//! Composio's style (`developer-tools`) with their display names. Composio's toolkit list
//! filters by a category's id or name.

/// Every category an entry may name: `(id, name)`.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("ai", "AI"),
    ("analytics", "Analytics"),
    ("communication", "Communication"),
    ("crm", "CRM"),
    ("customer-support", "Customer Support"),
    ("databases", "Databases"),
    ("design", "Design"),
    ("developer-tools", "Developer Tools"),
    ("documents", "Documents"),
    ("e-commerce", "E-commerce"),
    ("file-storage", "File Storage"),
    ("finance", "Finance"),
    ("marketing", "Marketing"),
    ("media", "Media"),
    ("monitoring", "Monitoring"),
    ("productivity", "Productivity"),
    ("project-management", "Project Management"),
    ("scheduling", "Scheduling"),
    ("search", "Search"),
    ("social-media", "Social Media"),
];

/// The display name of a category id (the id itself for one not in [`CATEGORIES`]).
pub fn name_of(id: &str) -> &str {
    CATEGORIES.iter().find(|(known, _)| *known == id).map_or(id, |(_, name)| name)
}

/// Whether `wanted` names the category `id`: its id or its name, ignoring case.
pub fn matches(id: &str, wanted: &str) -> bool {
    let wanted = wanted.trim();
    id.eq_ignore_ascii_case(wanted) || name_of(id).eq_ignore_ascii_case(wanted)
}
