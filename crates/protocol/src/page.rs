//! The app's paths, which the server and the page must read alike: the server answers them
//! with the app (anything else is not found), and the page shows what they name. Every move
//! between them is a full page load (a call's key is read from the link only as a page
//! loads), so the page reads its path once and needs no client-side router.

use std::fmt;

/// A path the app answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page<'a> {
    /// `/`: start a new call.
    Home,
    /// `/r/<room>`: a call. The room part is as the path has it; [`crate::RoomId::new`] says
    /// whether it is one, so a mistyped link gets the page that says so.
    Room(&'a str),
}

impl<'a> Page<'a> {
    /// The page at `path`, or `None` for a path the app does not have.
    pub fn from_path(path: &'a str) -> Option<Self> {
        if path == "/" {
            return Some(Page::Home);
        }
        path.strip_prefix("/r/")
            .filter(|room| !room.is_empty())
            .map(Page::Room)
    }
}

impl fmt::Display for Page<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Page::Home => f.write_str("/"),
            Page::Room(room) => write!(f, "/r/{room}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_and_rooms_are_pages() {
        assert_eq!(Page::from_path("/"), Some(Page::Home));
        assert_eq!(Page::from_path("/r/abc"), Some(Page::Room("abc")));
        assert_eq!(
            Page::from_path("/r/abc-def_12"),
            Some(Page::Room("abc-def_12"))
        );
        // Not a room id, but the page is the call's, which says the link is broken.
        assert_eq!(Page::from_path("/r/abc/def"), Some(Page::Room("abc/def")));
    }

    #[test]
    fn other_paths_are_not() {
        for path in [
            "",
            "/r/",
            "/r",
            "/favicon.ico",
            "/app-0123456789abcdef.js",
            "/x/r/y",
            "//",
        ] {
            assert_eq!(Page::from_path(path), None, "{path}");
        }
    }

    #[test]
    fn a_page_writes_the_path_it_is_read_from() {
        for path in ["/", "/r/abcdEFGH_-12"] {
            assert_eq!(Page::from_path(path).unwrap().to_string(), path);
        }
    }
}
