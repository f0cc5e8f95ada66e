//! The two service-method mappers of Go eRPC: how a type, method or
//! group name becomes a route.
//!
//! Both first *fold* underscores: a single `_` between two characters is a separator (`/` or
//! `.`), a run of two or more is one literal `_`, a trailing single `_` stays. The HTTP mapper
//! then snake-cases (`SayHello` → `say_hello`) and joins like a URL path; the RPC mapper keeps
//! case and joins with dots.
//!
//! | name | HTTP | RPC |
//! |---|---|---|
//! | `AaBb` | `/aa_bb` | `AaBb` |
//! | `Aa_Bb` | `/aa/bb` | `Aa.Bb` |
//! | `Aa__Bb` | `/aa_bb` | `Aa_Bb` |
//! | `Get_ID` | `/get/id` | `Get.ID` |

use serde::{Deserialize, Serialize};

/// How names become routes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameMapper {
    /// URL style, Go's default: `/home/test`.
    #[default]
    Http,
    /// RPC style: `Home.Test`.
    Rpc,
}

impl NameMapper {
    /// Go's `mapper(prefix, name)`: the route of `name` under `prefix`.
    pub fn route(self, prefix: &str, name: &str) -> String {
        match self {
            NameMapper::Http => {
                let name = snake(&fold(name, '/'));
                clean_path(&format!("/{prefix}/{name}"))
            }
            NameMapper::Rpc => format!("{prefix}.{}", fold(name, '.')).trim_matches('.').to_string(),
        }
    }

    /// The root router's prefix, `mapper("", "")`: `/` for HTTP, empty for RPC.
    pub fn root(self) -> String {
        self.route("", "")
    }
}

/// Folds underscores: `a_b` → `a{sep}b`, `a__b` (or longer runs) → `a_b`, trailing `a_` stays.
fn fold(name: &str, sep: char) -> String {
    enum Last {
        Other,
        Underscore(usize),
        Run,
    }
    let mut out = String::with_capacity(name.len());
    let mut last = Last::Other;
    for c in name.chars() {
        if c == '_' {
            match last {
                Last::Underscore(_) | Last::Run => last = Last::Run,
                Last::Other => {
                    out.push('_');
                    last = Last::Underscore(out.len() - 1);
                }
            }
        } else {
            if let Last::Underscore(at) = last {
                out.replace_range(at..at + 1, sep.encode_utf8(&mut [0; 4]));
            }
            out.push(c);
            last = Last::Other;
        }
    }
    out
}

/// Go's HTTP-mapper snake case: `_` before an upper-case letter that follows a byte that is
/// neither upper case nor `_`; then lower case, `__` → `_`, `/_` → `/`.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    let mut after_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if after_lower {
                out.push('_');
                after_lower = false;
            }
        } else if c != '_' {
            after_lower = true;
        }
        out.push(c.to_ascii_lowercase());
    }
    out.replace("__", "_").replace("/_", "/")
}

/// A URL path with duplicate slashes collapsed, `.` and `..` resolved and no trailing slash.
fn clean_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The Go name of a Rust method: snake case becomes CamelCase (`say_hello` → `SayHello`,
/// `add` → `Add`), so a Rust handler gets the route a Go handler of the same name gets. A run
/// of two or more underscores is kept as it is (`add__2` → `Add__2`, which maps to `/add_2`
/// like Go's `Add__2`).
pub(crate) fn go_name(rust_name: &str) -> String {
    let mut out = String::with_capacity(rust_name.len());
    let mut upper_next = true;
    let mut chars = rust_name.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '_' {
            let mut run = 1;
            while chars.next_if_eq(&'_').is_some() {
                run += 1;
            }
            if run == 1 && !out.is_empty() {
                upper_next = true;
            } else {
                out.extend(std::iter::repeat_n('_', run));
                upper_next = false;
            }
        } else if upper_next {
            out.extend(c.to_uppercase());
            upper_next = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// behaviour.md §8.3, every row: name, HTTP route, RPC route.
    const TABLE: &[(&str, &str, &str)] = &[
        ("AaBb", "/aa_bb", "AaBb"),
        ("ABcXYz", "/abc_xyz", "ABcXYz"),
        ("Aa__Bb", "/aa_bb", "Aa_Bb"),
        ("Aa________Bb", "/aa_bb", "Aa_Bb"),
        ("aa__bb", "/aa_bb", "aa_bb"),
        ("ABC__XYZ", "/abc_xyz", "ABC_XYZ"),
        ("Aa_Bb", "/aa/bb", "Aa.Bb"),
        ("aa_bb", "/aa/bb", "aa.bb"),
        ("ABC_XYZ", "/abc/xyz", "ABC.XYZ"),
        ("HTTPServer", "/httpserver", "HTTPServer"),
        ("A1B2", "/a1_b2", "A1B2"),
        ("Get_ID", "/get/id", "Get.ID"),
        ("math_v2", "/math/v2", "math.v2"),
        ("Add__2", "/add_2", "Add_2"),
        ("a_", "/a_", "a_"),
        ("_a", "/a", "a"),
        ("a___b", "/a_b", "a_b"),
        ("panic_call", "/panic/call", "panic.call"),
    ];

    #[test]
    fn every_row_of_the_spec_table() {
        for &(name, http, rpc) in TABLE {
            assert_eq!(
                NameMapper::Http.route(&NameMapper::Http.root(), name),
                http,
                "HTTP {name}"
            );
            assert_eq!(NameMapper::Rpc.route(&NameMapper::Rpc.root(), name), rpc, "RPC {name}");
        }
    }

    #[test]
    fn roots() {
        assert_eq!(NameMapper::Http.root(), "/");
        assert_eq!(NameMapper::Rpc.root(), "");
    }

    #[test]
    fn composition_like_go() {
        let http = NameMapper::Http;
        let home = http.route(&http.root(), "Home");
        assert_eq!(http.route(&home, "Test"), "/home/test");
        let group = http.route(&http.root(), "group");
        assert_eq!(http.route(&http.route(&group, "Home"), "Test"), "/group/home/test");
        let srv = http.route(&http.root(), "/srv");
        assert_eq!(http.route(&http.route(&srv, "math_v2"), "Add__2"), "/srv/math/v2/add_2");

        let rpc = NameMapper::Rpc;
        assert_eq!(rpc.route(&rpc.route(&rpc.root(), "Home"), "Test"), "Home.Test");
        let group = rpc.route(&rpc.root(), "group");
        assert_eq!(rpc.route(&rpc.route(&group, "Home"), "Test"), "group.Home.Test");
    }

    #[test]
    fn paths_are_cleaned() {
        assert_eq!(clean_path("//a//b/"), "/a/b");
        assert_eq!(clean_path("/a/./b/../c"), "/a/c");
        assert_eq!(clean_path("/../x"), "/x");
        assert_eq!(clean_path("/"), "/");
    }

    #[test]
    fn rust_names_become_go_names() {
        assert_eq!(go_name("say_hello"), "SayHello");
        assert_eq!(go_name("add"), "Add");
        assert_eq!(go_name("add__2"), "Add__2");
        assert_eq!(go_name("get_id"), "GetId");
        assert_eq!(
            NameMapper::Http.route("/math", &go_name("say_hello")),
            "/math/say_hello"
        );
        assert_eq!(NameMapper::Http.route("/", &go_name("add__2")), "/add_2");
        assert_eq!(NameMapper::Rpc.route("Math", &go_name("say_hello")), "Math.SayHello");
    }
}
