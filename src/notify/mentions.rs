//! `@username` in a comment: which names it mentions. Pure; the fan-out
//! looks the names up, and a name nobody has stays plain text.

/// At most this many distinct names are looked up per comment.
pub const MAX_MENTIONS: usize = 50;

/// The distinct names mentioned in `text`, in order of first mention. An
/// `@` counts only at the start of a word: the `@` in `ann@example.org` is
/// part of an address, not a mention. Punctuation that ends a sentence
/// (`@bob.`, `@bob,`) is not part of the name.
pub fn usernames(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut previous: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let starts_word = previous.is_none_or(|p| !is_name_char(p) && p != '@');
        previous = Some(c);
        if c != '@' || !starts_word {
            continue;
        }
        let start = at + 1;
        let mut end = start;
        while let Some(&(i, next)) = chars.peek() {
            if !is_name_char(next) {
                break;
            }
            end = i + next.len_utf8();
            previous = Some(next);
            chars.next();
        }
        let name = text[start..end].trim_end_matches(['.', '-', '+']);
        if !name.is_empty() && !out.iter().any(|n| n == name) && out.len() < MAX_MENTIONS {
            out.push(name.to_string());
        }
    }
    out
}

/// A character a mentioned username may hold (usernames also allow `@`,
/// which a mention cannot carry).
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || ".+-_".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_at_word_starts_only() {
        assert_eq!(
            usernames("@bob please ask @carol.d, not ann@example.org; cc @bob."),
            vec!["bob", "carol.d"]
        );
        assert_eq!(usernames("(@dana) @ alone @@eve x@fay"), vec!["dana"]);
        assert!(usernames("mail me at rita@example.org").is_empty());
        assert_eq!(usernames("@émile"), vec!["émile"]);
    }
}
