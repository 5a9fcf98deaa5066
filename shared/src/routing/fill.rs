//! Filling a route's parameter templates from one event. Event text is data:
//! - one pass: a value is never read as a placeholder, so a subject holding `{event.text}` or
//!   `{reason}` stays those characters;
//! - every value is escaped for the markup of the parameter it lands in (Slack mrkdwn, Teams
//!   markdown, HTML), so a ticket cannot mention a channel, plant a link or add markup;
//! - a parameter written as JSON (`blocks = '[{"type": "section", …}]'`) is structure from the
//!   route's author: placeholders fill its strings, and nothing an event says becomes an object,
//!   a list or a key.

use serde_json::Value;

/// How a parameter's text is read by the vendor it goes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Markup {
    /// Taken as it is (a plain-text field, a JSON string value, a form field).
    Plain,
    /// Slack `mrkdwn`: `<…>` makes mentions (`<!channel>`) and links; `&`, `<`, `>` are escaped
    /// as Slack documents ("Escaping text").
    SlackMrkdwn,
    /// Teams Adaptive Card text: a markdown subset (emphasis, lists, `[text](url)` links).
    Markdown,
    /// An HTML body (Zendesk `html_body`, a HubSpot note).
    Html,
}

impl Markup {
    /// The markup a built-in connector's parameter is rendered in; described connectors and
    /// unknown parameters are plain (their values go into JSON or form fields as values).
    pub fn of(connector: &str, param: &str) -> Markup {
        match (connector, param) {
            ("slack", "channel" | "thread_ts") => Markup::Plain,
            ("slack", _) => Markup::SlackMrkdwn,
            ("teams", _) => Markup::Markdown,
            ("zendesk", "html_comment") | ("hubspot", "note") => Markup::Html,
            _ => Markup::Plain,
        }
    }

    pub fn escape(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match (self, c) {
                (Markup::SlackMrkdwn | Markup::Html, '&') => out.push_str("&amp;"),
                (Markup::SlackMrkdwn | Markup::Html, '<') => out.push_str("&lt;"),
                (Markup::SlackMrkdwn | Markup::Html, '>') => out.push_str("&gt;"),
                (Markup::Html, '"') => out.push_str("&quot;"),
                (Markup::Html, '\'') => out.push_str("&#39;"),
                (
                    Markup::Markdown,
                    '\\' | '*' | '_' | '[' | ']' | '(' | ')' | '`' | '~' | '#' | '<' | '>',
                ) => {
                    out.push('\\');
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
        out
    }
}

/// The placeholder names of a plain template, in order.
pub fn names(template: &str) -> impl Iterator<Item = &str> {
    template
        .split('{')
        .skip(1)
        .filter_map(|part| part.split_once('}').map(|(name, _)| name))
}

/// Fill `template` in one pass; `Err(name)` for a placeholder `value` has nothing for. Text
/// between placeholders is the template's own and is kept as written.
pub fn fill<'t>(
    template: &'t str,
    value: &dyn Fn(&str) -> Option<String>,
    markup: Markup,
) -> Result<String, &'t str> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                let name = &after[..close];
                out.push_str(&markup.escape(&value(name).ok_or(name)?));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A parameter written as a JSON object or list: its structure, whose strings are templates.
pub(crate) fn as_structure(template: &str) -> Option<Value> {
    let t = template.trim_start();
    if !(t.starts_with('{') || t.starts_with('[')) {
        return None;
    }
    serde_json::from_str::<Value>(template)
        .ok()
        .filter(|v| v.is_object() || v.is_array())
}

/// Every string of a structure (the templates in it).
pub fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(map) => map.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// The structure with each string filled; keys, numbers and shape stay the template's.
pub(crate) fn fill_structure(
    v: &Value,
    value: &dyn Fn(&str) -> Option<String>,
    markup: Markup,
) -> Result<Value, String> {
    Ok(match v {
        Value::String(s) => Value::String(fill(s, value, markup).map_err(str::to_owned)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| fill_structure(i, value, markup))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), fill_structure(v, value, markup)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hostile(name: &str) -> Option<String> {
        match name {
            "event.subject" => {
                Some("<!channel> {event.text} <https://evil.example|Reset your SSO> & co".into())
            }
            "event.text" => Some("SECRET BODY".into()),
            "reason" => Some(r#""}]},{"type":"actions"#.into()),
            _ => None,
        }
    }

    #[test]
    fn slack_text_cannot_mention_or_link_and_placeholders_fill_once() {
        let out = fill("Outage: {event.subject}", &hostile, Markup::SlackMrkdwn).unwrap();
        assert_eq!(
            out,
            "Outage: &lt;!channel&gt; {event.text} &lt;https://evil.example|Reset your SSO&gt; &amp; co"
        );
        assert!(!out.contains("SECRET BODY"));
        // The route's own markup is the author's and stays.
        let own = fill("<!here> {event.subject}", &hostile, Markup::SlackMrkdwn).unwrap();
        assert!(own.starts_with("<!here> &lt;!channel&gt;"), "{own}");
    }

    #[test]
    fn teams_and_html_escape_their_own_markup() {
        let v = |_: &str| Some("[Reset](https://evil.example) **now** <b>".to_owned());
        assert_eq!(
            fill("{x}", &v, Markup::Markdown).unwrap(),
            r"\[Reset\]\(https://evil.example\) \*\*now\*\* \<b\>"
        );
        assert_eq!(
            fill("<p>{x}</p>", &v, Markup::Html).unwrap(),
            "<p>[Reset](https://evil.example) **now** &lt;b&gt;</p>"
        );
        assert_eq!(fill("{x}", &v, Markup::Plain).unwrap(), v("").unwrap());
    }

    #[test]
    fn json_parameters_keep_the_templates_structure() {
        let t = r#"[{"type": "section", "text": {"type": "mrkdwn", "text": "*Down*: {event.subject} ({reason})"}}]"#;
        let structure = as_structure(t).unwrap();
        let filled = fill_structure(&structure, &hostile, Markup::SlackMrkdwn).unwrap();
        // One block, as written; the hostile reason is a string inside it, not another block.
        assert_eq!(filled.as_array().unwrap().len(), 1);
        let text = filled[0]["text"]["text"].as_str().unwrap();
        assert!(text.contains(r#""}]},{"type":"actions"#), "{text}");
        assert!(text.contains("&lt;!channel&gt;"), "{text}");
        // A plain template whose value looks like JSON is text, never parsed.
        assert!(as_structure("{event.subject}").is_none());
        assert_eq!(
            strings(&structure),
            ["*Down*: {event.subject} ({reason})", "mrkdwn", "section"]
        );
    }

    #[test]
    fn a_missing_value_names_its_placeholder() {
        assert_eq!(
            fill("{event.nope}", &hostile, Markup::Plain),
            Err("event.nope")
        );
        assert_eq!(fill("a { b", &hostile, Markup::Plain).unwrap(), "a { b");
    }
}
