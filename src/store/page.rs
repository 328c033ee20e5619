//! Paging: opaque, versioned list cursors and the range scan that reads one page.
//!
//! A cursor names the last item of a page by its *domain* value (an account prefix, a
//! token name, a license id), never by its key bytes, so a cursor a client holds keeps
//! working across a change of the key layout. On the wire it is the base64url (no
//! padding) of `v1:` ++ that value; a cursor of another version, or anything that does
//! not decode, is refused (the edge answers `400` naming `cursor`). A value that decodes
//! but cannot be a position of the listing asked for (a license cursor that is not a
//! number) is refused by the listing with [`StoreError::InvalidCursor`].

use super::codec::Value;
use super::key::Key;
use super::schema::Table;
use super::tx::decode_entry;
use super::{Store, StoreError};
use crate::base64url;
use std::fmt;
use std::ops::Bound;

/// The version written today, and the only one read.
const VERSION: &str = "v1:";
/// Longest cursor accepted on the wire (a token name is at most a few hundred bytes).
const MAX_LEN: usize = 1024;

/// Where the next page of a listing starts: after the item it names. Opaque to clients.
#[derive(Clone, PartialEq, Eq)]
pub struct Cursor {
    /// What a client sees: base64url of `v1:` ++ `value`.
    text: String,
    /// The last item's domain value.
    value: String,
}

/// Why a cursor from a client was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CursorError {
    /// Not base64url, too long, or not text.
    Malformed,
    /// A cursor of a version this upkeep does not read.
    UnknownVersion,
}

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CursorError::Malformed => f.write_str("not a cursor this API returned"),
            CursorError::UnknownVersion => {
                f.write_str("a cursor of an unknown version (start the listing again)")
            }
        }
    }
}

impl std::error::Error for CursorError {}

impl Cursor {
    /// The cursor of a page that ended at the item whose domain value is `value`.
    pub(super) fn after(value: impl Into<String>) -> Cursor {
        let value = value.into();
        let text = base64url::encode(format!("{VERSION}{value}").as_bytes());
        Cursor { text, value }
    }

    /// Reads a cursor a client sent back.
    ///
    /// # Errors
    /// `Malformed` or `UnknownVersion`.
    pub fn parse(text: &str) -> Result<Cursor, CursorError> {
        if text.len() > MAX_LEN {
            return Err(CursorError::Malformed);
        }
        let bytes = base64url::decode(text).ok_or(CursorError::Malformed)?;
        let decoded = String::from_utf8(bytes).map_err(|_| CursorError::Malformed)?;
        let (version, value) = decoded.split_once(':').ok_or(CursorError::UnknownVersion)?;
        if format!("{version}:") != VERSION {
            return Err(CursorError::UnknownVersion);
        }
        Ok(Cursor {
            text: text.to_owned(),
            value: value.to_owned(),
        })
    }

    /// The wire form.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The domain value of the item the previous page ended at.
    pub(crate) fn value(&self) -> &str {
        &self.value
    }
}

impl std::ops::Deref for Cursor {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({:?})", self.value)
    }
}

/// Which page of a listing to read: the items after `after`, at most `limit` of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    pub after: Option<Cursor>,
    pub limit: usize,
}

impl PageRequest {
    /// Everything (CLI listings).
    pub fn all() -> Self {
        PageRequest {
            after: None,
            limit: usize::MAX,
        }
    }

    /// The first `limit` items.
    pub fn first(limit: usize) -> Self {
        PageRequest { after: None, limit }
    }
}

/// One page of a listing, in order, and the cursor of the next page if there may be one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next: Option<Cursor>,
}

impl<T> Page<T> {
    /// A page of a short list already read whole and in order (a version's files, a
    /// product's versions newest first): the items after the one whose id the cursor
    /// names.
    ///
    /// A list kept by id (a key's activations, a customer's keys) goes on after the cursor's
    /// id even when that item was deleted meanwhile, as the range-scanned listings do.
    ///
    /// # Errors
    /// `InvalidCursor` when the cursor names no item of a list in another order (it was
    /// deleted meanwhile, or the cursor is another list's).
    pub fn of_list(
        items: Vec<T>,
        id: impl Fn(&T) -> u64,
        page: &PageRequest,
    ) -> Result<Page<T>, StoreError> {
        let start = match &page.after {
            None => 0,
            Some(cursor) => {
                let after: u64 = cursor.value().parse().map_err(|_| {
                    StoreError::InvalidCursor("not a cursor of this list".to_owned())
                })?;
                match items.iter().position(|item| id(item) == after) {
                    Some(at) => at + 1,
                    None if items.is_sorted_by_key(&id) => {
                        items.partition_point(|item| id(item) < after)
                    }
                    None => {
                        return Err(StoreError::InvalidCursor(
                            "the item this cursor names is gone; start the listing again"
                                .to_owned(),
                        ));
                    }
                }
            }
        };
        let mut rest: Vec<T> = items.into_iter().skip(start).collect();
        let next = if rest.len() > page.limit {
            rest.truncate(page.limit);
            rest.last().map(|item| Cursor::after(id(item).to_string()))
        } else {
            None
        };
        Ok(Page { items: rest, next })
    }
}

impl Store {
    /// The entries of `table` under `prefix` after the key `after` (built by `key` from
    /// the cursor's value), at most `limit`, and whether more follow. A range scan from
    /// the cursor: the cost of a page does not grow with the size of the listing.
    pub(super) fn page_of<K: Key, V: Value>(
        &self,
        table: &Table<K, V>,
        prefix: &[u8],
        after: Option<&K>,
        limit: usize,
    ) -> Result<(Vec<(K, V)>, bool), StoreError> {
        self.page_of_where(table, prefix, after, limit, None)
    }

    /// [`Store::page_of`], of only the records `keep` keeps (all with `None`, and then the
    /// record after a full page is not decoded): read in key order from the cursor until
    /// `limit` are kept and one more is found (or the prefix ends), holding only the page.
    /// A page costs the records up to its end: few when `keep` keeps many, the rest of the
    /// prefix when it keeps few.
    pub(super) fn page_of_where<K: Key, V: Value>(
        &self,
        table: &Table<K, V>,
        prefix: &[u8],
        after: Option<&K>,
        limit: usize,
        mut keep: Option<&mut dyn FnMut(&V) -> bool>,
    ) -> Result<(Vec<(K, V)>, bool), StoreError> {
        let start = match after {
            Some(after) => Bound::Excluded(after.to_bytes().as_ref().to_vec()),
            None => Bound::Included(prefix.to_vec()),
        };
        let mut items = Vec::new();
        for entry in self
            .tree(table.id())
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
        {
            let (key, value) = entry?;
            if !key.starts_with(prefix) {
                break;
            }
            if items.len() == limit && keep.is_none() {
                return Ok((items, true));
            }
            let (key, value) = decode_entry(table, &key, &value)?;
            if keep.as_mut().is_some_and(|keep| !keep(&value)) {
                continue;
            }
            if items.len() == limit {
                return Ok((items, true));
            }
            items.push((key, value));
        }
        Ok((items, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_or_unknown_versions_are_refused() {
        let cursor = Cursor::after("ci deploy/é");
        assert!(
            cursor
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{}",
            cursor.as_str()
        );
        let back = Cursor::parse(cursor.as_str()).unwrap();
        assert_eq!(back, cursor);
        assert_eq!(back.value(), "ci deploy/é");
        // The old wire form (hex of a key), a truncated cursor, other versions.
        let v2 = base64url::encode(b"v2:acme");
        let unversioned = base64url::encode(b"acme");
        let truncated = &cursor.as_str()[..cursor.as_str().len() - 1];
        for (text, expected) in [
            ("xyz", CursorError::Malformed),
            ("", CursorError::UnknownVersion),
            (v2.as_str(), CursorError::UnknownVersion),
            (unversioned.as_str(), CursorError::UnknownVersion),
            ("%%%", CursorError::Malformed),
        ] {
            assert_eq!(Cursor::parse(text), Err(expected), "{text}");
        }
        assert!(Cursor::parse(truncated).is_err());
        assert!(
            Cursor::parse("61636d65").is_err(),
            "a cursor of the old hex form"
        );
        assert_eq!(
            Cursor::parse(&"A".repeat(MAX_LEN + 4)),
            Err(CursorError::Malformed)
        );
    }

    /// A list kept by id goes on after a cursor whose item was deleted meanwhile; a list
    /// in another order (newest version first) still refuses it: it cannot tell where the
    /// item stood.
    #[test]
    fn a_list_kept_by_id_goes_on_after_a_deleted_cursor_item() {
        let after = |id: u64| PageRequest {
            after: Some(Cursor::after(id.to_string())),
            limit: 2,
        };
        let ids = |page: Page<u64>| (page.items, page.next.map(|c| c.value().to_owned()));
        let by_id = vec![10u64, 20, 30, 40, 50];
        // 20 is there: the page after it.
        let page = Page::of_list(by_id.clone(), |&n| n, &after(20)).unwrap();
        assert_eq!(ids(page), (vec![30, 40], Some("40".to_owned())));
        // 25 (deleted meanwhile) was between 20 and 30: the same page.
        let page = Page::of_list(by_id.clone(), |&n| n, &after(25)).unwrap();
        assert_eq!(ids(page), (vec![30, 40], Some("40".to_owned())));
        // Past the end: an empty last page.
        let page = Page::of_list(by_id, |&n| n, &after(99)).unwrap();
        assert_eq!(ids(page), (vec![], None));
        // Newest first: a missing item is refused, a present one still pages.
        let newest_first = vec![50u64, 40, 30, 20, 10];
        let page = Page::of_list(newest_first.clone(), |&n| n, &after(40)).unwrap();
        assert_eq!(ids(page), (vec![30, 20], Some("20".to_owned())));
        assert!(matches!(
            Page::of_list(newest_first, |&n| n, &after(35)),
            Err(StoreError::InvalidCursor(_))
        ));
    }
}
