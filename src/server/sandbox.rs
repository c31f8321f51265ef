//! The login process's confinement: it reads every byte a client sends
//! before login, so it runs as `MDIMAP_LOGIN_USER` (default `nobody`), with
//! no capabilities (none effective, permitted, inheritable or ambient, and
//! none left in the bounding set), `no_new_privs`, no right to fork, and in
//! an empty chroot.
//!
//! The chroot is a directory made for the process and removed before it
//! enters it: nothing can ever be created in a removed directory, not even
//! by root, so it is empty for good, and no directory has to be configured
//! or kept clean. `/proc/<pid>/root` shows it as `/tmp/mdimap-login.XXXXXX
//! (deleted)`.
//!
//! What the login process needs after this is open already: the client
//! socket, the channel to the root part, the log, and the TLS keys in
//! memory. Random bytes come from getrandom(2), which needs no file.

use nix::unistd::{Gid, Uid};

/// The account the login process runs as.
#[derive(Debug, Clone)]
pub struct LoginUser {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl LoginUser {
    /// Looks up `MDIMAP_LOGIN_USER` (before any client byte is read).
    pub fn named(name: &str) -> Result<LoginUser, String> {
        let user = match nix::unistd::User::from_name(name) {
            Ok(Some(u)) => u,
            Ok(None) => {
                return Err(format!(
                    "MDIMAP_LOGIN_USER={name}: no such user; create it (an account that owns no files and serves no mail, like nobody) or name another"
                ));
            }
            Err(e) => return Err(format!("MDIMAP_LOGIN_USER={name}: cannot look it up: {e}")),
        };
        if user.uid.is_root() {
            return Err(format!(
                "MDIMAP_LOGIN_USER={name} has uid 0; the login process must not run as root: name an unprivileged account such as nobody"
            ));
        }
        Ok(LoginUser {
            name: name.to_string(),
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })
    }
}

/// Confines the calling process (the freshly forked login process). When
/// mdimapd does not run as root there is nothing to drop and no chroot to
/// enter; `no_new_privs` and the fork limit still apply.
pub fn confine(user: &LoginUser) -> Result<(), String> {
    let root = nix::unistd::geteuid().is_root();
    if root {
        enter_empty_root()?;
        drop_bounding_set()?;
        let gid = Gid::from_raw(user.gid);
        let uid = Uid::from_raw(user.uid);
        nix::unistd::setgroups(&[gid]).map_err(|e| format!("setgroups: {e}"))?;
        nix::unistd::setresgid(gid, gid, gid).map_err(|e| format!("setresgid: {e}"))?;
        nix::unistd::setresuid(uid, uid, uid).map_err(|e| format!("setresuid: {e}"))?;
    }
    // SAFETY: prctl with these integer arguments only sets process flags.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(format!(
            "prctl(PR_SET_NO_NEW_PRIVS): {}",
            std::io::Error::last_os_error()
        ));
    }
    // Not dumpable: other processes of the same user (other login
    // processes) cannot ptrace this one or read its memory.
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    use nix::sys::resource::{Resource, setrlimit};
    setrlimit(Resource::RLIMIT_NPROC, 0, 0).map_err(|e| format!("RLIMIT_NPROC: {e}"))?;
    if root {
        verify(user)?;
    }
    Ok(())
}

/// chroot(2) into a new directory that is removed first (see the module).
fn enter_empty_root() -> Result<(), String> {
    let dir = nix::unistd::mkdtemp("/tmp/mdimap-login.XXXXXX")
        .map_err(|e| format!("cannot make the login process's empty root in /tmp: {e}"))?;
    let entered = nix::unistd::chdir(&dir).map_err(|e| format!("chdir {}: {e}", dir.display()));
    let removed = std::fs::remove_dir(&dir).map_err(|e| format!("rmdir {}: {e}", dir.display()));
    entered?;
    removed?;
    nix::unistd::chroot(".").map_err(|e| {
        format!(
            "chroot: {e}; mdimapd needs CAP_SYS_CHROOT in its bounding set, as in the shipped systemd units"
        )
    })?;
    nix::unistd::chdir("/").map_err(|e| format!("chdir /: {e}"))
}

/// Empties the capability bounding set, so nothing the process could ever
/// execute regains a capability. Capabilities a service manager left out of
/// the set already (systemd's `CapabilityBoundingSet=`) need no dropping;
/// dropping the others needs CAP_SETPCAP.
fn drop_bounding_set() -> Result<(), String> {
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments; EINVAL past the last capability.
        match unsafe { libc::prctl(libc::PR_CAPBSET_READ, cap, 0, 0, 0) } {
            0 => continue,
            1 => {}
            _ => break,
        }
        // SAFETY: as above.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) } != 0 {
            let err = std::io::Error::last_os_error();
            return Err(format!(
                "prctl(PR_CAPBSET_DROP, {cap}): {err}; mdimapd needs CAP_SETPCAP (and CAP_SYS_CHROOT) in its bounding set, as in the shipped systemd units"
            ));
        }
    }
    Ok(())
}

/// The capability sets of the calling process (effective, permitted,
/// inheritable; each 64 bits), by capget(2).
fn capabilities() -> Result<[u64; 3], String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let mut header = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut data = [Data::default(); 2];
    // SAFETY: capget reads the header and writes two Data structs, which
    // `data` has room for (version 3 of the interface).
    let r = unsafe {
        libc::syscall(
            libc::SYS_capget,
            &mut header as *mut Header,
            data.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(format!("capget: {}", std::io::Error::last_os_error()));
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok([
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ])
}

/// Proves the confinement took: the ids, no capability, no way back to root.
fn verify(user: &LoginUser) -> Result<(), String> {
    let ids = nix::unistd::getresuid().map_err(|e| format!("getresuid: {e}"))?;
    let gids = nix::unistd::getresgid().map_err(|e| format!("getresgid: {e}"))?;
    let uid = Uid::from_raw(user.uid);
    let gid = Gid::from_raw(user.gid);
    if [ids.real, ids.effective, ids.saved] != [uid; 3]
        || [gids.real, gids.effective, gids.saved] != [gid; 3]
    {
        return Err("the login process's ids differ after setresuid/setresgid".into());
    }
    if capabilities()? != [0; 3] {
        return Err("the login process kept capabilities after setresuid".into());
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err("setuid(0) succeeded in the login process".into());
    }
    Ok(())
}
