//! `mdimap demo`: a throw-away maildir and user served on 127.0.0.1 through
//! the real `mdimap-listen` → `mdimapd` path, so a person can point a mail
//! client at mdimap within a minute. Started as root it serves as an
//! unprivileged user, so the privilege drop is exercised too.
//!
//! Started as root, the demo must not hand root's inputs to that user: the
//! directory, `mdimapd.conf`, `users` and `mdimapd.pem` are read by root
//! (the listener, the pre-auth part) and stay root's, mode 0600 in a 0755
//! directory that only root can write; only `Maildir` is the serving user's,
//! and root never writes inside it: the maildir is filled by a child that has
//! become that user. Root's files are written under a new name (O_EXCL,
//! O_NOFOLLOW) and renamed into place, so a symlink left in a reused
//! directory is replaced, never followed. A reused directory that someone
//! other than root could have changed is refused rather than repaired: its
//! contents cannot be trusted, and an audit is the administrator's call.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{OFlag, openat, renameat};
use nix::sys::stat::{FileStat, Mode, SFlag, fchmod, fstat, fstatat, mkdirat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, unlinkat};

use crate::maildir::Store;

pub struct DemoOptions {
    pub dir: Option<PathBuf>,
    pub port: u16,
    pub empty: bool,
    pub user: Option<String>,
}

const SAMPLES: [&str; 3] = [
    "From: Alice Example <alice@example.org>\n\
To: Demo User <demo@example.org>\n\
Subject: Welcome to mdimap\n\
Date: Mon, 2 Nov 2026 09:00:00 +0000\n\
Message-ID: <welcome.1@example.org>\n\
\n\
Hello!\n\
\n\
This message lives in a Maildir++ store served by mdimap.\n\
Flag it, move it, delete it: every change lands on disk as Courier would make it.\n",
    "From: Bob Example <bob@example.org>\n\
To: demo@example.org\n\
Subject: Report with an attachment\n\
Date: Tue, 3 Nov 2026 14:30:00 +0100\n\
Message-ID: <report.2@example.org>\n\
MIME-Version: 1.0\n\
Content-Type: multipart/mixed; boundary=\"sep\"\n\
\n\
--sep\n\
Content-Type: text/plain; charset=us-ascii\n\
\n\
The numbers are attached.\n\
--sep\n\
Content-Type: text/csv; name=\"numbers.csv\"\n\
Content-Disposition: attachment; filename=\"numbers.csv\"\n\
\n\
month,count\n\
october,42\n\
november,57\n\
--sep--\n",
    "From: =?UTF-8?Q?Ren=C3=A9e?= <renee@example.org>\n\
To: demo@example.org\n\
Subject: =?UTF-8?Q?Caf=C3=A9_tomorrow=3F?=\n\
Date: Wed, 4 Nov 2026 18:15:00 +0100\n\
Message-ID: <cafe.3@example.org>\n\
In-Reply-To: <welcome.1@example.org>\n\
MIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: 8bit\n\
\n\
Shall we meet at the café at ten?\n",
];

/// Writes a message into `new/` the way an MTA delivers: tmp, then rename.
fn deliver_new(maildir: &Path, n: usize, body: &str) -> std::io::Result<()> {
    let name = format!(
        "{}.M{}P{}_{n}.demo,S={}",
        1_793_000_000 + n * 3600,
        n,
        std::process::id(),
        body.len()
    );
    let tmp = maildir.join("tmp").join(&name);
    fs::write(&tmp, body)?;
    fs::rename(&tmp, maildir.join("new").join(&name))
}

fn make_tempdir() -> std::io::Result<PathBuf> {
    let base = std::env::temp_dir();
    for i in 0..1000u32 {
        let p = base.join(format!("mdimap-demo-{}-{i}", std::process::id()));
        match fs::DirBuilder::new().mode(0o755).create(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary directory name"))
}

/// Who serves the demo's mail.
struct ServingUser {
    name: String,
    uid: u32,
    gid: u32,
}

fn serving_user(opts: &DemoOptions, root: bool) -> Result<ServingUser, String> {
    if !root {
        let uid = nix::unistd::getuid();
        let name = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.name)
            .unwrap_or_else(|| uid.to_string());
        return Ok(ServingUser {
            name,
            uid: uid.as_raw(),
            gid: nix::unistd::getgid().as_raw(),
        });
    }
    let name = opts.user.clone().unwrap_or_else(|| "nobody".to_string());
    let user = nix::unistd::User::from_name(&name)
        .map_err(|e| format!("looking up user {name}: {e}"))?
        .ok_or_else(|| format!("no such user {name}; name an unprivileged account with --user"))?;
    if user.uid.is_root() {
        return Err(
            "the demo refuses to serve mail as root; name an unprivileged account with --user"
                .into(),
        );
    }
    Ok(ServingUser {
        name,
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
    })
}

fn is_type(st: &FileStat, kind: SFlag) -> bool {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == kind
}

/// What `st` lets others than root change, as the end of a sentence; None
/// when only root can.
fn not_roots(st: &FileStat) -> Option<String> {
    if st.st_uid != 0 {
        Some(format!("belongs to uid {}, not root", st.st_uid))
    } else if st.st_mode & 0o022 != 0 {
        Some(format!(
            "is writable by its group or others (mode {:o})",
            st.st_mode & 0o7777
        ))
    } else {
        None
    }
}

/// Started as root, everything root later reads by path lies under `dir`, so
/// neither `top` nor any directory above it may be changeable by anyone else
/// (a sticky directory such as /tmp is fine: others cannot rename root's
/// entries in it).
fn check_ancestors(dir: &Path, top: &Path) -> Result<(), String> {
    for up in top.ancestors() {
        let st = nix::sys::stat::lstat(up).map_err(|e| format!("{}: {e}", up.display()))?;
        let sticky = st.st_mode & 0o1000 != 0;
        let problem = match not_roots(&st) {
            Some(_) if st.st_uid == 0 && sticky => None,
            p => p,
        };
        if let Some(problem) = problem {
            return Err(format!(
                "{} is inside {}, which {problem}; started as root, the demo keeps its \
                 configuration where only root can change it: choose a --dir under directories \
                 only root can write, or leave --dir out",
                dir.display(),
                up.display()
            ));
        }
    }
    Ok(())
}

/// Started as root: `given` (the --dir as typed) must not pass through a
/// symlink someone else made, such as one planted in /tmp to send root's
/// files into /etc. Root's own symlinks are followed as usual.
fn check_symlinks(given: &Path) -> Result<(), String> {
    let absolute = std::env::current_dir()
        .map_err(|e| format!("the current directory: {e}"))?
        .join(given);
    for prefix in absolute.ancestors() {
        match nix::sys::stat::lstat(prefix) {
            Ok(st) if is_type(&st, SFlag::S_IFLNK) && st.st_uid != 0 => {
                return Err(format!(
                    "{} passes through {}, a symlink made by uid {}; started as root, the demo \
                     follows no one else's symlinks: give the real directory as --dir",
                    given.display(),
                    prefix.display(),
                    st.st_uid
                ));
            }
            Ok(_) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(format!("{}: {e}", prefix.display())),
        }
    }
    Ok(())
}

/// Opens the demo directory (never through a symlink). Started as root it
/// must be root's and writable by root alone; it is then made 0755 so the
/// serving user can reach its maildir (the files in it are 0600).
fn open_demo_dir(dir: &Path, root: bool) -> Result<OwnedFd, String> {
    let fd = nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("opening {}: {e}", dir.display()))?;
    if root {
        if let Some(parent) = dir.parent() {
            check_ancestors(dir, parent)?;
        }
        let st = fstat(&fd).map_err(|e| format!("{}: {e}", dir.display()))?;
        if let Some(problem) = not_roots(&st) {
            return Err(format!(
                "{} {problem}; started as root, the demo keeps its configuration where only \
                 root can change it and will not reuse a directory others could have planted \
                 files in: remove it (demos made by older versions as root belong to the \
                 serving user), choose a new --dir, or leave --dir out",
                dir.display()
            ));
        }
        fchmod(&fd, Mode::from_bits_truncate(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    }
    Ok(fd)
}

/// Started as root: makes `Maildir` in the demo directory the serving
/// user's, or checks that an existing one already is (and is a real
/// directory). Root creates only the empty directory; the user fills it.
fn claim_maildir(dir: &OwnedFd, path: &Path, user: &ServingUser) -> Result<(), String> {
    let refuse = |problem: &str| {
        format!(
            "{} {problem}; the demo's maildir must be a directory of {}, who serves it: \
             remove it, or choose a new --dir",
            path.display(),
            user.name
        )
    };
    match fstatat(dir, "Maildir", nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) if !is_type(&st, SFlag::S_IFDIR) => Err(refuse("is not a directory")),
        Ok(st) if st.st_uid != user.uid => Err(refuse(&format!("belongs to uid {}", st.st_uid))),
        Ok(_) => Ok(()),
        Err(Errno::ENOENT) => {
            mkdirat(dir, "Maildir", Mode::from_bits_truncate(0o700))
                .map_err(|e| format!("creating {}: {e}", path.display()))?;
            // The directory is root's and writable by root alone, so the
            // entry chowned is the one just made.
            fchownat(
                dir,
                "Maildir",
                Some(Uid::from_raw(user.uid)),
                Some(Gid::from_raw(user.gid)),
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )
            .map_err(|e| format!("chown {}: {e}", path.display()))
        }
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Runs `work` in a child process that has become `user` for good, and
/// returns its result. Only valid while this process has one thread: the
/// child runs ordinary Rust code (allocation, file calls) after fork.
fn as_user(user: &ServingUser, work: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    let (from_child, to_parent) = nix::unistd::pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: `mdimap demo` runs on the main thread alone (it starts no
    // thread before it execs the listener), so no lock or allocator state
    // can be held by another thread at the fork, and the child may run Rust
    // code freely before it _exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(from_child);
            let result = crate::server::privdrop::drop_to(&user.name, user.uid, user.gid)
                .map_err(|e| e.to_string())
                .and_then(|()| work());
            let code = match result {
                Ok(()) => 0,
                Err(why) => {
                    let _ = File::from(to_parent).write_all(why.as_bytes());
                    1
                }
            };
            // SAFETY: ends the child at once, without the exit handlers and
            // buffer flushes that belong to the parent's process image.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(to_parent);
            let mut why = String::new();
            let _ = File::from(from_child).read_to_string(&mut why);
            let status =
                nix::sys::wait::waitpid(child, None).map_err(|e| format!("waitpid: {e}"))?;
            match status {
                nix::sys::wait::WaitStatus::Exited(_, 0) => Ok(()),
                _ if !why.is_empty() => Err(why),
                other => Err(format!(
                    "preparing the maildir as {} failed ({other:?})",
                    user.name
                )),
            }
        }
    }
}

/// Makes or opens the maildir and, unless `empty` or it already holds mail,
/// delivers the sample messages and folders.
fn fill_maildir(maildir: &Path, empty: bool) -> Result<(), String> {
    let store = if maildir.join("cur").is_dir() {
        Store::open(maildir).map_err(|e| e.to_string())?
    } else {
        Store::create(maildir).map_err(|e| e.to_string())?
    };
    let fresh = !maildir.join("courierimapuiddb").exists()
        && fs::read_dir(maildir.join("new"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
    if empty || !fresh {
        return Ok(());
    }
    for (n, body) in SAMPLES.iter().enumerate() {
        deliver_new(maildir, n + 1, body).map_err(|e| format!("writing a sample message: {e}"))?;
    }
    for folder in ["INBOX.Work", "INBOX.Archive"] {
        if !store.folder_exists(folder) {
            store.create_folder(folder).map_err(|e| e.to_string())?;
        }
        store.subscribe(folder).map_err(|e| e.to_string())?;
    }
    let work = maildir.join(".Work");
    deliver_new(&work, 9, "From: carol@example.org\nTo: demo@example.org\nSubject: Quarterly planning\nDate: Thu, 5 Nov 2026 08:00:00 +0000\n\nAgenda to follow.\n")
        .map_err(|e| format!("writing a sample message: {e}"))
}

/// Sets up the demo and execs `mdimap-listen`; returns only on failure.
pub fn run(opts: DemoOptions) -> Result<(), String> {
    let root = nix::unistd::geteuid().is_root();
    let user = serving_user(&opts, root)?;
    let dir = match &opts.dir {
        Some(d) => {
            if root {
                // Root makes no directory where someone else could redirect it.
                let base = d
                    .ancestors()
                    .find(|a| !a.as_os_str().is_empty() && a.exists())
                    .unwrap_or(Path::new("."));
                let base =
                    fs::canonicalize(base).map_err(|e| format!("{}: {e}", base.display()))?;
                check_ancestors(d, &base)?;
                check_symlinks(d)?;
            }
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(d)
                .map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            if root {
                // Again: a name missing a moment ago may have appeared.
                check_symlinks(d)?;
            }
            d.clone()
        }
        None => make_tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?,
    };
    let dir = fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let dir_fd = open_demo_dir(&dir, root)?;
    let maildir = dir.join("Maildir");
    if root {
        claim_maildir(&dir_fd, &maildir, &user)?;
        as_user(&user, || fill_maildir(&maildir, opts.empty))?;
    } else {
        fill_maildir(&maildir, opts.empty)?;
    }

    let hash = crate::auth::password::hash(b"demo")?;
    let users = dir.join("users");
    let line = format!(
        "demo:{hash}:{}:{}:{}:{}::\n",
        user.uid,
        user.gid,
        dir.display(),
        maildir.display()
    );
    replace_private(&dir_fd, "users", &line)
        .map_err(|e| format!("writing {}: {e}", users.display()))?;
    let pem = dir.join("mdimapd.pem");
    if !is_private_file(&dir_fd, "mdimapd.pem") {
        let text = crate::server::tls::self_signed_pem(&["localhost", "127.0.0.1"])?;
        replace_private(&dir_fd, "mdimapd.pem", &text)
            .map_err(|e| format!("writing {}: {e}", pem.display()))?;
    }
    let conf = dir.join("mdimapd.conf");
    let conf_text = format!(
        "# Written by `mdimap demo`.\nMDIMAP_USERFILE={}\nTLS_CERTFILE={}\nIMAP_IDLE_TIMEOUT=60\n",
        users.display(),
        pem.display()
    );
    replace_private(&dir_fd, "mdimapd.conf", &conf_text)
        .map_err(|e| format!("writing {}: {e}", conf.display()))?;
    drop(dir_fd);

    let listen = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("mdimap-listen")))
        .ok_or("cannot find mdimap-listen next to mdimap")?;
    if !listen.exists() {
        return Err(format!(
            "{} is missing: the demo runs the real listener and server; build all three programs first \
             (cargo build --release)",
            listen.display()
        ));
    }
    let tls_port = if opts.port == 0 {
        0
    } else {
        opts.port.wrapping_add(1)
    };
    eprintln!("mdimap demo: maildir {}", maildir.display());
    eprintln!("mdimap demo: user \"demo\", password \"demo\"");
    eprintln!(
        "mdimap demo: 127.0.0.1 port {} (plain or STARTTLS), port {tls_port} (TLS); self-signed certificate {}",
        opts.port,
        pem.display()
    );
    eprintln!(
        "mdimap demo: try  mutt -f imap://demo@127.0.0.1:{}/   or point Thunderbird at it; Ctrl-C stops",
        opts.port
    );
    let _ = std::io::stderr().flush();
    let err = std::process::Command::new(&listen)
        .arg("--config")
        .arg(&conf)
        .arg("--listen")
        .arg(format!("127.0.0.1:{}", opts.port))
        .arg("--listen-tls")
        .arg(format!("127.0.0.1:{tls_port}"))
        .arg("--log-stderr")
        .exec();
    Err(format!("cannot run {}: {err}", listen.display()))
}

/// Is `name` in `dir` a regular file of ours that no one else can read or
/// write (so an existing certificate may be kept)? Never follows a symlink
/// and never blocks on a FIFO.
fn is_private_file(dir: &OwnedFd, name: &str) -> bool {
    let Ok(fd) = openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    fstat(&fd).is_ok_and(|st| {
        is_type(&st, SFlag::S_IFREG)
            && st.st_uid == nix::unistd::geteuid().as_raw()
            && st.st_mode & 0o077 == 0
    })
}

/// Replaces `name` in `dir` with a new file of ours, mode 0600, holding
/// `text`: written under a fresh name (O_EXCL, O_NOFOLLOW), synced, then
/// renamed over `name`, so whatever `name` was (a symlink, say) is replaced,
/// never opened.
fn replace_private(dir: &OwnedFd, name: &str, text: &str) -> std::io::Result<()> {
    for attempt in 0..100u32 {
        let tmp = format!(".{name}.{}.{attempt}.new", std::process::id());
        let fd = match openat(
            dir,
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        ) {
            Ok(fd) => fd,
            Err(Errno::EEXIST) => continue,
            Err(e) => return Err(e.into()),
        };
        let written = (|| {
            // The umask may have taken bits away; the file is exactly 0600.
            fchmod(&fd, Mode::from_bits_truncate(0o600))?;
            let mut file = File::from(fd);
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            renameat(dir, tmp.as_str(), dir, name)?;
            Ok(())
        })();
        if written.is_err() {
            let _ = unlinkat(dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        }
        return written;
    }
    Err(std::io::Error::other(format!(
        "no free temporary name for {name}"
    )))
}
