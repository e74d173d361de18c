//! Rendering: the one minijinja `Environment`, over the templates built into
//! the binary (from `templates/`) and any file of the same name in the
//! configured `templates_dir`, which replaces the built-in one. HTML
//! templates are auto-escaped and undefined values are errors, so a typo in a
//! template fails loudly instead of reaching an inbox. User text only ever
//! enters as values, never as template source.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value};
use serde::Serialize;

use crate::trust;

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
        "email/ticket_assign.html",
        include_str!("../templates/email/ticket_assign.html"),
    ),
    (
        "email/ticket_assign.txt",
        include_str!("../templates/email/ticket_assign.txt"),
    ),
    (
        "email/digest.html",
        include_str!("../templates/email/digest.html"),
    ),
    (
        "email/digest.txt",
        include_str!("../templates/email/digest.txt"),
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

/// How much work one rendering may do (minijinja's fuel: about one unit
/// per instruction). The built-in templates use a few hundred; a loop that
/// would keep a flush busy for minutes runs out long before.
const FUEL: u64 = 2_000_000;

pub struct Renderer {
    env: Environment<'static>,
    /// The file each template in `templates_dir` came from, by name: a
    /// rendering error names the file a person edits.
    files: std::collections::HashMap<&'static str, String>,
}

impl Renderer {
    /// Compiles every template, taking a file from `overrides` where one of
    /// the same name exists there. A template file must stay inside that
    /// folder (a symbolic link out of it is refused) and be one that no
    /// other local user could have written; a syntax error names the file
    /// and the line.
    pub fn new(overrides: Option<&Path>) -> Result<Renderer> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(FUEL));
        env.add_filter("linebreaksbr", linebreaksbr);
        let folder =
            match overrides {
                Some(dir) => Some(dir.canonicalize().with_context(|| {
                    format!("could not read `templates_dir` `{}`", dir.display())
                })?),
                None => None,
            };
        let mut files = std::collections::HashMap::new();
        for (name, built_in) in BUILT_IN {
            let (source, shown) = match &folder {
                Some(dir) => match override_file(dir, name)? {
                    Some(path) => {
                        let source = match trust::read_steering(&path) {
                            Ok(source) => source,
                            Err(trust::Refusal::Untrusted(reason)) => bail!(
                                "template `{}` is not trusted: {reason}",
                                dir.join(name).display()
                            ),
                            Err(trust::Refusal::Unreadable(err)) => {
                                return Err(err).with_context(|| {
                                    format!("could not read template `{}`", path.display())
                                });
                            }
                        };
                        files.insert(*name, path.display().to_string());
                        (source, path.display().to_string())
                    }
                    None => ((*built_in).to_string(), format!("built-in {name}")),
                },
                None => ((*built_in).to_string(), format!("built-in {name}")),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| anyhow::anyhow!("template `{shown}`{}", describe(&e)))?;
        }
        Ok(Renderer { env, files })
    }

    /// Renders one template with a typed context.
    pub fn render(&self, name: &str, context: &impl Serialize) -> Result<String> {
        let template = self
            .env
            .get_template(name)
            .with_context(|| format!("no template named `{name}`"))?;
        template
            .render(Value::from_serialize(context))
            .map_err(|e| match e.kind() {
                ErrorKind::OutOfFuel => anyhow::anyhow!(
                    "template `{name}` did more work than an email may take (a loop that runs too long?)"
                ),
                _ => {
                    // The template at fault may be one this one includes.
                    let at_fault = e.name().unwrap_or(name);
                    let shown = self.files.get(at_fault).map_or(at_fault, String::as_str);
                    anyhow::anyhow!("could not render template `{shown}`{}", describe(&e))
                }
            })
    }
}

/// The file in `dir` (canonical) that replaces the template `name`, if any:
/// it must resolve inside `dir` and be trusted.
fn override_file(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let path = dir.join(name);
    if std::fs::symlink_metadata(&path).is_err() {
        return Ok(None);
    }
    let real = path.canonicalize().with_context(|| {
        format!(
            "template `{}` is a symbolic link to nothing: remove it or copy the template there",
            path.display()
        )
    })?;
    if !real.starts_with(dir) {
        bail!(
            "template `{}` resolves to `{}`, outside `templates_dir` `{}`: copy the file into the folder instead of linking to it",
            path.display(),
            real.display(),
            dir.display()
        );
    }
    if !real.is_file() {
        return Ok(None);
    }
    Ok(Some(real))
}

/// A minijinja error as `: line N: what` (the template is named by the caller).
fn describe(err: &minijinja::Error) -> String {
    let line = err.line().map(|l| format!(" line {l}")).unwrap_or_default();
    let what = match err.detail() {
        Some(detail) => format!("{}: {detail}", err.kind()),
        None => err.kind().to_string(),
    };
    format!("{line}: {what}")
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
mod properties;

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
