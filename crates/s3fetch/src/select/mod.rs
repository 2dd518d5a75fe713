//! Which objects a run fetches, and in what order they reach the downloads: the key filter
//! ([`filter`]), the listing of a prefix in parallel ([`listing`]) or the objects of an S3
//! Inventory report ([`inventory`]), each object sent with what is known of the folders on
//! its path ([`folders`]).

pub(crate) mod filter;
pub(crate) mod folders;
pub(crate) mod inventory;
pub(crate) mod listing;
pub(crate) mod source;
