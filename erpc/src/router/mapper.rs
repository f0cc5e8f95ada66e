//! TEMPORARY STUB (replaced by the leaf branch).
#![allow(missing_docs)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum NameMapper {
    #[default]
    Http,
    Rpc,
}
impl NameMapper {
    pub fn route(self, prefix: &str, name: &str) -> String {
        match self {
            NameMapper::Http => {
                let p = format!(
                    "{}/{}",
                    prefix.trim_end_matches('/'),
                    name.trim_start_matches('/').to_lowercase()
                );
                p
            }
            NameMapper::Rpc => format!("{prefix}.{name}").trim_matches('.').to_string(),
        }
    }
    pub fn root(self) -> String {
        match self {
            NameMapper::Http => "/".into(),
            NameMapper::Rpc => String::new(),
        }
    }
}
pub fn go_name(rust_name: &str) -> String {
    rust_name
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}
