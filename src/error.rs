//! Errors as a user reads them: `error: <what failed>`, then `caused by:`
//! lines, then `hint:` when there is something to do. `Hint` rides along an
//! anyhow error so the place that knows the fix can name it.

use std::fmt;

/// An error message with the fix attached.
#[derive(Debug)]
pub struct Hint {
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Hint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Hint {}

/// Shorthand for an error with a hint.
pub fn hinted(message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Hint {
        message: message.into(),
        hint: hint.into(),
    }
    .into()
}

/// Prints an error the way the user reads it (a stderr that cannot be
/// written loses it, but never panics).
pub fn report(err: &anyhow::Error) {
    use crate::output::print_stderr;
    print_stderr(&format!("error: {err}"));
    let causes: Vec<String> = err.chain().skip(1).map(|c| c.to_string()).collect();
    if !causes.is_empty() {
        print_stderr("caused by:");
        for cause in causes {
            print_stderr(&format!("  {cause}"));
        }
    }
    for hint in err.chain().filter_map(|c| c.downcast_ref::<Hint>()) {
        print_stderr(&format!("hint: {}", hint.hint));
    }
}
