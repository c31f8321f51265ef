//! Hash maps for the scan's hot paths. A scan of a 50 000-message folder
//! hashes every file name several times; SipHash, std's default, made up a
//! tenth of its time. foldhash is several times faster and still seeded per
//! process, so file names chosen to collide cannot be prepared in advance.

pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub type FastSet<T> = std::collections::HashSet<T, foldhash::fast::RandomState>;
