//! The call's conversation besides voice and video: chat, raised hands, reactions. All of it
//! travels pairwise-sealed (`PeerMessage::Private`), so it is for the members' eyes only; this
//! is what each member keeps of it, in memory only, gone when the tab closes.

use std::collections::VecDeque;

use litemap::LiteMap;

use conclave_protocol::PeerId;
use conclave_protocol::peer::{MAX_CHAT_CHARS, REACTIONS};

use crate::set::Set;

/// How many chat lines a member keeps; older ones scroll away.
pub const KEPT_LINES: usize = 500;

/// One chat line as the screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatLine {
    /// `None`: we wrote it.
    pub from: Option<PeerId>,
    pub name: String,
    pub text: String,
    /// When it arrived (or was sent), on this page's clock.
    pub at_ms: u64,
}

/// Why a chat message was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRefusal {
    Empty,
    TooLong,
    /// Nobody to send it to yet.
    Alone,
}

#[derive(Debug, Default)]
pub struct Conversation {
    lines: VecDeque<ChatLine>,
    /// The last chat id taken from each member: a message is shown once, and an older one
    /// arriving late is not shown out of order.
    last_id: LiteMap<PeerId, u64>,
    next_id: u64,
    hands: Set<PeerId>,
    my_hand: bool,
}

/// A chat text as it may be sent and shown: trimmed, and at most [`MAX_CHAT_CHARS`].
pub fn clean_chat(text: &str) -> Result<String, ChatRefusal> {
    let text = text.trim();
    if text.is_empty() {
        return Err(ChatRefusal::Empty);
    }
    if text.chars().count() > MAX_CHAT_CHARS {
        return Err(ChatRefusal::TooLong);
    }
    // Control characters could hide text or break the layout, and bidirectional overrides
    // could make a message read as something else; newlines and tabs may stay.
    let bidi = |c: char| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    Ok(text
        .chars()
        .filter(|&c| (!c.is_control() || c == '\n' || c == '\t') && !bidi(c))
        .collect())
}

impl Conversation {
    pub fn lines(&self) -> impl Iterator<Item = &ChatLine> {
        self.lines.iter()
    }

    fn push(&mut self, line: ChatLine) {
        if self.lines.len() == KEPT_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }

    /// Records our own message; returns the id to send it under.
    pub fn sent(&mut self, name: &str, text: String, now_ms: u64) -> u64 {
        self.next_id += 1;
        self.push(ChatLine {
            from: None,
            name: name.to_owned(),
            text,
            at_ms: now_ms,
        });
        self.next_id
    }

    /// Takes a message from `from`; `false` if it was seen before, is older than one seen, or
    /// is not a message anyone may send.
    pub fn received(
        &mut self,
        from: &PeerId,
        name: &str,
        id: u64,
        text: &str,
        now_ms: u64,
    ) -> bool {
        if self.last_id.get(from).is_some_and(|last| id <= *last) {
            return false;
        }
        let Ok(text) = clean_chat(text) else {
            return false;
        };
        self.last_id.insert(from.clone(), id);
        self.push(ChatLine {
            from: Some(from.clone()),
            name: name.to_owned(),
            text,
            at_ms: now_ms,
        });
        true
    }

    /// Records `peer`'s hand; returns whether that changed anything.
    pub fn hand(&mut self, peer: &PeerId, raised: bool) -> bool {
        if raised {
            self.hands.insert(peer.clone())
        } else {
            self.hands.remove(peer)
        }
    }

    pub fn hand_raised(&self, peer: &PeerId) -> bool {
        self.hands.contains(peer)
    }

    pub fn my_hand(&self) -> bool {
        self.my_hand
    }

    /// Returns whether our hand changed.
    pub fn set_my_hand(&mut self, raised: bool) -> bool {
        std::mem::replace(&mut self.my_hand, raised) != raised
    }

    /// A member left: its hand goes down with it (its chat lines stay).
    pub fn forget(&mut self, peer: &PeerId) {
        self.hands.remove(peer);
    }
}

/// A stretch of a chat line: text as it is, or a web address to open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    Link(&'a str),
}

/// `text` cut into text and the web addresses in it (`http://` and `https://` only: no other
/// scheme, `javascript:` least of all, ever becomes a link). An address runs to the next
/// space; punctuation that ends a sentence, and a closing bracket it did not open, stay text.
pub fn pieces(text: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(start) = ["https://", "http://"]
        .iter()
        .filter_map(|scheme| find_address(rest, scheme))
        .min()
    {
        let tail = &rest[start..];
        let end = tail.find(char::is_whitespace).unwrap_or(tail.len());
        let mut address = &tail[..end];
        loop {
            let trimmed = address.trim_end_matches(['.', ',', ';', ':', '!', '?', '\'', '"']);
            let trimmed = match trimmed.strip_suffix(')') {
                Some(t) if t.matches('(').count() < trimmed.matches(')').count() => t,
                _ => trimmed,
            };
            if trimmed == address {
                break;
            }
            address = trimmed;
        }
        let is_address = address.len() > address.find("://").unwrap_or(0) + 3;
        if start > 0 {
            out.push(Piece::Text(&rest[..start]));
        }
        out.push(if is_address {
            Piece::Link(address)
        } else {
            Piece::Text(address)
        });
        rest = &tail[address.len()..];
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest));
    }
    out
}

/// Where `scheme` begins an address in `text`: at the start, or after a space or an opening
/// bracket or quote (not inside a word, as "xhttps://").
fn find_address(text: &str, scheme: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = text[from..].find(scheme).map(|i| i + from) {
        let before = text[..i].chars().next_back();
        if before.is_none_or(|c| c.is_whitespace() || matches!(c, '(' | '"' | '\'' | '<')) {
            return Some(i);
        }
        from = i + scheme.len();
    }
    None
}

/// Whether `emoji` is one of the reactions there are.
pub fn is_reaction(emoji: &str) -> bool {
    REACTIONS.contains(&emoji)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(s: &str) -> PeerId {
        PeerId::new(s).unwrap()
    }

    #[test]
    fn web_addresses_in_a_line_are_links_and_nothing_else_is() {
        use Piece::{Link, Text};
        assert_eq!(pieces("no link here"), [Text("no link here")]);
        assert_eq!(
            pieces("see https://example.test/a_b?c=1. Then"),
            [
                Text("see "),
                Link("https://example.test/a_b?c=1"),
                Text(". Then")
            ]
        );
        assert_eq!(
            pieces("(http://w.test/wiki/X_(y)) and https://b.test"),
            [
                Text("("),
                Link("http://w.test/wiki/X_(y)"),
                Text(") and "),
                Link("https://b.test")
            ]
        );
        // No other scheme, no address inside a word, no address without a host.
        assert_eq!(
            pieces("javascript:alert(1) xhttps://a.test ftp://f.test"),
            [Text("javascript:alert(1) xhttps://a.test ftp://f.test")]
        );
        assert_eq!(pieces("https://."), [Text("https://"), Text(".")]);
        // Every byte of the line is in exactly one piece, in order.
        let line = "a https://x.test/é, b\nhttp://y.test";
        let joined: String = pieces(line)
            .iter()
            .map(|p| match p {
                Text(t) | Link(t) => *t,
            })
            .collect();
        assert_eq!(joined, line);
    }

    #[test]
    fn chat_text_is_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(clean_chat("  hi  "), Ok("hi".into()));
        assert_eq!(clean_chat(" a\nb "), Ok("a\nb".into()));
        assert_eq!(clean_chat(" \n "), Err(ChatRefusal::Empty));
        assert_eq!(clean_chat("a\u{202e}b\nc"), Ok("ab\nc".into()));
        assert_eq!(clean_chat("a\u{0007}b"), Ok("ab".into()));
        assert_eq!(
            clean_chat(&"x".repeat(MAX_CHAT_CHARS + 1)),
            Err(ChatRefusal::TooLong)
        );
        assert!(
            clean_chat(&"é".repeat(MAX_CHAT_CHARS)).is_ok(),
            "characters, not bytes"
        );
    }

    #[test]
    fn a_message_is_shown_once_and_never_out_of_order() {
        let mut c = Conversation::default();
        let bob = peer("bob");
        assert!(c.received(&bob, "Bob", 1, "one", 10));
        assert!(!c.received(&bob, "Bob", 1, "one", 11), "shown twice");
        assert!(c.received(&bob, "Bob", 3, "three", 12));
        assert!(!c.received(&bob, "Bob", 2, "two", 13), "shown out of order");
        assert!(
            c.received(&peer("cyd"), "Cyd", 1, "hi", 14),
            "ids are per sender"
        );
        let texts: Vec<_> = c.lines().map(|l| l.text.as_str()).collect();
        assert_eq!(texts, ["one", "three", "hi"]);
    }

    #[test]
    fn only_so_many_lines_are_kept() {
        let mut c = Conversation::default();
        for i in 0..KEPT_LINES + 10 {
            c.sent("me", i.to_string(), 0);
        }
        assert_eq!(c.lines().count(), KEPT_LINES);
        assert_eq!(c.lines().next().unwrap().text, "10");
    }

    #[test]
    fn hands_go_up_and_down_and_leave_with_their_member() {
        let mut c = Conversation::default();
        let bob = peer("bob");
        assert!(c.hand(&bob, true));
        assert!(!c.hand(&bob, true));
        assert!(c.hand_raised(&bob));
        c.forget(&bob);
        assert!(!c.hand_raised(&bob));
        assert!(c.set_my_hand(true));
        assert!(!c.set_my_hand(true));
        assert!(is_reaction("👍") && !is_reaction("<b>"));
    }
}
