//! Real-world shaped messages for the tests of this module, kept as files under
//! `tests/fixtures/mail/` so they read as the mail clients and servers wrote
//! them (line ends are LF there; the parser reads both).

macro_rules! fixture {
    ($name:ident, $file:literal) => {
        pub const $name: &str = include_str!(concat!("../../tests/fixtures/mail/", $file));
    };
}

fixture!(THUNDERBIRD_REPLY, "thunderbird-reply.eml");
fixture!(OUTLOOK_REPLY, "outlook-reply.eml");
fixture!(GMAIL_HTML_REPLY, "gmail-html-reply.eml");
fixture!(POSTFIX_BOUNCE, "postfix-bounce.eml");
fixture!(EXIM_BOUNCE, "exim-bounce.eml");
fixture!(VACATION_REPLY, "vacation-reply.eml");
fixture!(MAILING_LIST, "mailing-list.eml");

pub const ALL: &[&str] = &[
    THUNDERBIRD_REPLY,
    OUTLOOK_REPLY,
    GMAIL_HTML_REPLY,
    POSTFIX_BOUNCE,
    EXIM_BOUNCE,
    VACATION_REPLY,
    MAILING_LIST,
];
