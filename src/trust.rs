//! Trust in local files: which files another local user could have written
//! or could read, as ssh and sudo judge them. A file that steers helpdesk
//! (the configuration, templates, the password file, the sendmail command)
//! must be owned by the user running helpdesk or by root, and writable by
//! nobody else. A database file must also be readable by nobody else and
//! have a single name (a second hard link is a second way in). Callers turn
//! the reason into their own error; this module only judges.

use std::fs::Metadata;
use std::path::Path;

/// What a file is used for, which decides how strictly it is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// It steers what helpdesk does: nobody else may write it.
    Steering,
    /// It holds the data: nobody else may read or write it, one name only.
    Private,
}

/// Why `meta` (the metadata of `path`, symlinks followed) cannot be
/// trusted for `usage`, with the fix; `None` when it can.
#[cfg(unix)]
pub fn distrust(meta: &Metadata, usage: Use, path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let me = current_uid();
    let owner = meta.uid();
    let shown = path.display();
    if owner != me && owner != 0 {
        return Some(format!(
            "it is owned by another user (uid {owner}), and only files owned by you or by root are trusted: check it, then run `chown {me} {shown}`"
        ));
    }
    let mode = meta.mode() & 0o7777;
    let what = if meta.is_dir() { "folder" } else { "file" };
    match usage {
        Use::Steering => {
            if mode & 0o022 != 0 {
                return Some(format!(
                    "the {what} can be changed by other users (mode {mode:o}): run `chmod go-w {shown}`"
                ));
            }
        }
        Use::Private => {
            if mode & 0o066 != 0 {
                return Some(format!(
                    "other users can read or write it (mode {mode:o}): run `chmod 600 {shown}`"
                ));
            }
            if meta.nlink() > 1 {
                return Some(format!(
                    "it has {} hard links, so it can be read under another name: copy it to a new file and use that",
                    meta.nlink()
                ));
            }
        }
    }
    None
}

#[cfg(not(unix))]
pub fn distrust(_meta: &Metadata, _usage: Use, _path: &Path) -> Option<String> {
    None
}

/// The user this process acts as.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Reads the file at `path` as text if it can be trusted for steering:
/// judged on the open file itself, so it cannot be swapped between the
/// check and the read. `Err` holds why not (or the read error, in words).
pub fn read_steering(path: &Path) -> Result<String, Refusal> {
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(Refusal::Unreadable)?;
    let meta = file.metadata().map_err(Refusal::Unreadable)?;
    if let Some(reason) = distrust(&meta, Use::Steering, path) {
        return Err(Refusal::Untrusted(reason));
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(Refusal::Unreadable)?;
    Ok(text)
}

/// Why a steering file was not read.
#[derive(Debug)]
pub enum Refusal {
    /// Another user could have written it: the reason, with the fix.
    Untrusted(String),
    Unreadable(std::io::Error),
}

/// Judges the file at `path` (symlinks followed); a file that does not exist
/// is not judged here.
pub fn check(path: &Path, usage: Use) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    distrust(&meta, usage, path)
}
