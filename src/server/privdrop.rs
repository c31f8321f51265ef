//! Dropping root for good: after authentication the session runs as the mail
//! user with exactly that user's group, and proves it cannot get root back.

use std::ffi::CString;

use nix::unistd::{
    Gid, Uid, User, getegid, geteuid, getgid, getgrouplist, getgroups, getuid, setgid, setgroups,
    setuid,
};

#[derive(Debug)]
pub enum DropError {
    /// The user record asks for uid 0; a mail session never runs as root.
    RootUser,
    /// Not root, and the user is someone else: we cannot become them.
    NotRoot {
        want: u32,
        have: u32,
    },
    Failed(String),
}

impl std::fmt::Display for DropError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DropError::RootUser => write!(
                f,
                "refusing to serve a mail user with uid 0; give the account its own uid"
            ),
            DropError::NotRoot { want, have } => write!(
                f,
                "cannot switch to uid {want}: running as uid {have}, not root; run mdimapd as root or give the user uid {have}"
            ),
            DropError::Failed(why) => write!(f, "dropping privileges failed: {why}"),
        }
    }
}

/// Becomes `uid`/`gid`. A system account (the name is in the passwd database
/// with this uid) keeps its supplementary groups, as login(1) would give it;
/// a virtual user gets `gid` alone. When not running as root this only checks
/// that we already are that user.
pub fn drop_to(name: &str, uid: u32, gid: u32) -> Result<(), DropError> {
    if uid == 0 {
        return Err(DropError::RootUser);
    }
    if !geteuid().is_root() {
        let have = getuid().as_raw();
        if have != uid {
            return Err(DropError::NotRoot { want: uid, have });
        }
        return Ok(());
    }
    let fail = |what: &str, e: nix::Error| DropError::Failed(format!("{what}: {e}"));
    let groups = supplementary_groups(name, uid, gid);
    setgroups(&groups).map_err(|e| fail("setgroups", e))?;
    setgid(Gid::from_raw(gid)).map_err(|e| fail("setgid", e))?;
    setuid(Uid::from_raw(uid)).map_err(|e| fail("setuid", e))?;
    verify(uid, gid, &groups)
}

fn supplementary_groups(name: &str, uid: u32, gid: u32) -> Vec<Gid> {
    let mut groups = vec![Gid::from_raw(gid)];
    let system = matches!(User::from_name(name), Ok(Some(u)) if u.uid.as_raw() == uid);
    if !system {
        return groups;
    }
    let Ok(cname) = CString::new(name) else {
        return groups;
    };
    if let Ok(list) = getgrouplist(&cname, Gid::from_raw(gid)) {
        for g in list {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
    }
    groups
}

/// Checks the drop took: real and effective ids, the group list, and that
/// setuid(0) now fails.
fn verify(uid: u32, gid: u32, allowed: &[Gid]) -> Result<(), DropError> {
    let ids_ok = getuid().as_raw() == uid
        && geteuid().as_raw() == uid
        && getgid().as_raw() == gid
        && getegid().as_raw() == gid;
    if !ids_ok {
        return Err(DropError::Failed("ids differ after setuid/setgid".into()));
    }
    let groups = getgroups().map_err(|e| DropError::Failed(format!("getgroups: {e}")))?;
    if groups.iter().any(|g| !allowed.contains(g)) {
        return Err(DropError::Failed("supplementary groups remain".into()));
    }
    if setuid(Uid::from_raw(0)).is_ok() {
        return Err(DropError::Failed(
            "setuid(0) succeeded after the drop".into(),
        ));
    }
    Ok(())
}
