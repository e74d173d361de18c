//! Rendering: the one minijinja `Environment`, over the templates built into
//! the binary (from `templates/`) and any file of the same name in the
//! configured `templates_dir`, which replaces the built-in one. HTML
//! templates are auto-escaped and undefined values are errors, so a typo in a
//! template fails loudly instead of reaching an inbox. User text only ever
//! enters as values, never as template source.

use std::path::Path;

use anyhow::{Context, Result};
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;

/// The built-in templates, by name.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "email/ticket_new.html",
        include_str!("../templates/email/ticket_new.html"),
    ),
    (
        "email/ticket_new.txt",
        include_str!("../templates/email/ticket_new.txt"),
    ),
    (
        "email/ticket_update.html",
        include_str!("../templates/email/ticket_update.html"),
    ),
    (
        "email/ticket_update.txt",
        include_str!("../templates/email/ticket_update.txt"),
    ),
    (
        "email/ticket_comment.html",
        include_str!("../templates/email/ticket_comment.html"),
    ),
    (
        "email/ticket_comment.txt",
        include_str!("../templates/email/ticket_comment.txt"),
    ),
    (
        "email/test.html",
        include_str!("../templates/email/test.html"),
    ),
    (
        "email/test.txt",
        include_str!("../templates/email/test.txt"),
    ),
    (
        "email/_footer.html",
        include_str!("../templates/email/_footer.html"),
    ),
    (
        "email/_footer.txt",
        include_str!("../templates/email/_footer.txt"),
    ),
];

pub struct Renderer {
    env: Environment<'static>,
}

impl Renderer {
    /// Compiles every template, taking a file from `overrides` where one of
    /// the same name exists there.
    pub fn new(overrides: Option<&Path>) -> Result<Renderer> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_filter("linebreaksbr", linebreaksbr);
        for (name, built_in) in BUILT_IN {
            let source = match overrides
                .map(|dir| dir.join(name))
                .filter(|path| path.is_file())
            {
                Some(path) => std::fs::read_to_string(&path)
                    .with_context(|| format!("could not read template `{}`", path.display()))?,
                None => (*built_in).to_string(),
            };
            env.add_template_owned(*name, source)
                .with_context(|| format!("template `{name}` is invalid"))?;
        }
        Ok(Renderer { env })
    }

    /// Renders one template with a typed context.
    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<String> {
        let template = self
            .env
            .get_template(name)
            .with_context(|| format!("no template named `{name}`"))?;
        template
            .render(Value::from_serialize(context))
            .with_context(|| format!("could not render template `{name}`"))
    }
}

/// Escapes text for HTML and keeps its line breaks as `<br>`.
fn linebreaksbr(text: &str) -> Value {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push_str("<br>\n");
        }
        for c in line.trim_end_matches('\r').chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#x27;"),
                _ => out.push(c),
            }
        }
    }
    Value::from_safe_string(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linebreaks_are_kept_and_html_escaped() {
        let value = linebreaksbr("<b>one</b>\r\ntwo & \"three\"");
        assert_eq!(
            value.to_string(),
            "&lt;b&gt;one&lt;/b&gt;<br>\ntwo &amp; &quot;three&quot;"
        );
    }

    #[test]
    fn an_override_replaces_one_template_only() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("email")).unwrap();
        std::fs::write(dir.path().join("email/test.txt"), "custom {{ to }}").unwrap();
        let renderer = Renderer::new(Some(dir.path())).unwrap();
        #[derive(Serialize)]
        struct Ctx {
            to: &'static str,
            site: &'static str,
        }
        let ctx = Ctx {
            to: "a@example.org",
            site: "https://example.com",
        };
        assert_eq!(
            renderer.render("email/test.txt", &ctx).unwrap(),
            "custom a@example.org"
        );
        assert!(
            renderer
                .render("email/test.html", &ctx)
                .unwrap()
                .contains("a@example.org")
        );
    }

    #[test]
    fn an_undefined_value_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("email")).unwrap();
        std::fs::write(dir.path().join("email/test.txt"), "{{ tpyo }}").unwrap();
        let renderer = Renderer::new(Some(dir.path())).unwrap();
        #[derive(Serialize)]
        struct Ctx {
            to: &'static str,
        }
        assert!(renderer.render("email/test.txt", &Ctx { to: "x" }).is_err());
    }
}
