//! The descriptions' templating: `{name}` placeholders replaced by values, `{{` and `}}` for
//! literal braces, and nothing else — no expressions, no code. Which names a template may use
//! depends on where it is ([`Scope`]), checked when the description is loaded.

use std::collections::BTreeSet;

use super::describe::Request;

/// Where a template is, and so which placeholders it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// A login request: `{secret.NAME}` (the connection secret's fields).
    Login,
    /// A probe or a contract sample: no placeholders.
    Read,
    /// An action's request or lookup: `{param.NAME}` (the route's parameters) and `{key}`.
    Action,
    /// An action's link: `{id}`, `{base_url}` and `{param.NAME}`.
    Link,
}

fn allowed(name: &str, scope: Scope) -> bool {
    match scope {
        Scope::Login => name.strip_prefix("secret.").is_some_and(valid_field),
        Scope::Read => false,
        Scope::Action => name == "key" || name.strip_prefix("param.").is_some_and(valid_field),
        Scope::Link => {
            matches!(name, "id" | "base_url")
                || name.strip_prefix("param.").is_some_and(valid_field)
        }
    }
}

fn valid_field(f: &str) -> bool {
    !f.is_empty()
        && f.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A template's pieces: literal text and placeholder names.
enum Piece<'a> {
    Text(&'a str),
    Name(&'a str),
}

fn pieces(t: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = Vec::new();
    let mut rest = t;
    while !rest.is_empty() {
        let next = rest.find(['{', '}']).unwrap_or(rest.len());
        if next > 0 {
            out.push(Piece::Text(&rest[..next]));
            rest = &rest[next..];
            continue;
        }
        if let Some(r) = rest.strip_prefix("{{") {
            out.push(Piece::Text("{"));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("}}") {
            out.push(Piece::Text("}"));
            rest = r;
        } else if rest.starts_with('}') {
            return Err(format!(
                "{t:?} has a lone }} (write }}}} for a literal one)"
            ));
        } else {
            let end = rest
                .find('}')
                .ok_or_else(|| format!("{t:?} has an unclosed {{"))?;
            out.push(Piece::Name(rest[1..end].trim()));
            rest = &rest[end + 1..];
        }
    }
    Ok(out)
}

/// Whether every placeholder of `t` may be used in `scope`.
pub fn check(t: &str, scope: Scope) -> Result<(), String> {
    for p in pieces(t)? {
        if let Piece::Name(name) = p {
            if !allowed(name, scope) {
                let may = match scope {
                    Scope::Login => "{secret.NAME}",
                    Scope::Read => "no placeholder",
                    Scope::Action => "{param.NAME} and {key}",
                    Scope::Link => "{id}, {base_url} and {param.NAME}",
                };
                return Err(format!(
                    "placeholder {{{name}}} is not allowed here (only {may})"
                ));
            }
        }
    }
    Ok(())
}

/// The placeholder names `t` uses.
pub fn names(t: &str) -> Vec<String> {
    pieces(t)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|p| match p {
            Piece::Name(n) => Some(n.to_owned()),
            Piece::Text(_) => None,
        })
        .collect()
}

/// Fill `t`; `Err(name)` when `value` has nothing for a placeholder.
pub fn render(t: &str, value: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(t.len());
    for p in pieces(t)? {
        match p {
            Piece::Text(s) => out.push_str(s),
            Piece::Name(n) => out.push_str(&value(n).ok_or_else(|| n.to_owned())?),
        }
    }
    Ok(out)
}

/// A JSON body from its TOML form, every string in it rendered.
pub(crate) fn render_json(
    v: &toml::Value,
    value: &dyn Fn(&str) -> Option<String>,
) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        toml::Value::String(s) => J::String(render(s, value)?),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => J::from(*f),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(d) => J::String(d.to_string()),
        toml::Value::Array(items) => J::Array(
            items
                .iter()
                .map(|i| render_json(i, value))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => J::Object(
            t.iter()
                .map(|(k, v)| Ok((k.clone(), render_json(v, value)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// Every template string of a request.
pub fn strings(r: &Request) -> Vec<&str> {
    fn json_strings<'a>(v: &'a toml::Value, out: &mut Vec<&'a str>) {
        match v {
            toml::Value::String(s) => out.push(s),
            toml::Value::Array(items) => items.iter().for_each(|i| json_strings(i, out)),
            toml::Value::Table(t) => t.values().for_each(|i| json_strings(i, out)),
            _ => {}
        }
    }
    let mut out = vec![r.path.as_str()];
    out.extend(r.query.values().map(String::as_str));
    out.extend(r.headers.values().map(String::as_str));
    out.extend(r.form.iter().flat_map(|f| f.values().map(String::as_str)));
    if let Some(j) = &r.json {
        json_strings(j, &mut out);
    }
    out
}

pub(crate) fn uses_key(r: &Request) -> bool {
    strings(r)
        .iter()
        .any(|t| names(t).iter().any(|n| n == "key"))
}

/// The route parameters a request needs (`{param.NAME}`).
pub fn params(r: &Request) -> BTreeSet<String> {
    strings(r)
        .iter()
        .flat_map(|t| names(t))
        .filter_map(|n| n.strip_prefix("param.").map(str::to_owned))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(name: &str) -> Option<String> {
        match name {
            "param.title" => Some("Lease {dispute}".into()),
            "key" => Some("k1".into()),
            _ => None,
        }
    }

    #[test]
    fn placeholders_are_replaced_once_and_values_are_not_templates() {
        // A value holding braces is text, never read as a placeholder.
        assert_eq!(
            render("{param.title} / {key} {{x}}", &ctx).unwrap(),
            "Lease {dispute} / k1 {x}"
        );
        assert_eq!(
            render("{param.missing}", &ctx).unwrap_err(),
            "param.missing"
        );
    }

    #[test]
    fn scopes_limit_what_a_template_may_name() {
        assert!(check("{param.a}-{key}", Scope::Action).is_ok());
        let e = check("{secret.password}", Scope::Action).unwrap_err();
        assert!(e.contains("{secret.password} is not allowed"), "{e}");
        assert!(check("{secret.password}", Scope::Login).is_ok());
        assert!(check("/me", Scope::Read).is_ok());
        assert!(check("{key}", Scope::Read).is_err());
        assert!(check("{id} at {base_url}", Scope::Link).is_ok());
        assert!(check("open {", Scope::Action)
            .unwrap_err()
            .contains("unclosed"));
        assert!(check("a } b", Scope::Action).unwrap_err().contains("lone"));
    }
}
