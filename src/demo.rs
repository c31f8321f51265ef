//! `mdimap demo`: a throw-away maildir and user served on 127.0.0.1 through
//! the real `mdimap-listen` → `mdimapd` path, so a person can point a mail
//! client at mdimap within a minute. Started as root it serves as an
//! unprivileged user, so the privilege drop is exercised too.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

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
        match fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free temporary directory name"))
}

fn chown_tree(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    if fs::symlink_metadata(path)?.is_dir() {
        for e in fs::read_dir(path)? {
            chown_tree(&e?.path(), uid, gid)?;
        }
    }
    Ok(())
}

/// Sets up the demo and execs `mdimap-listen`; returns only on failure.
pub fn run(opts: DemoOptions) -> Result<(), String> {
    let dir = match &opts.dir {
        Some(d) => {
            fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
            d.clone()
        }
        None => make_tempdir().map_err(|e| format!("cannot make a temporary directory: {e}"))?,
    };
    let dir = fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let maildir = dir.join("Maildir");
    let store = if maildir.join("cur").is_dir() {
        Store::open(&maildir).map_err(|e| e.to_string())?
    } else {
        Store::create(&maildir).map_err(|e| e.to_string())?
    };
    let fresh = !maildir.join("courierimapuiddb").exists()
        && fs::read_dir(maildir.join("new"))
            .map(|mut d| d.next().is_none())
            .unwrap_or(true);
    if !opts.empty && fresh {
        for (n, body) in SAMPLES.iter().enumerate() {
            deliver_new(&maildir, n + 1, body)
                .map_err(|e| format!("writing a sample message: {e}"))?;
        }
        for folder in ["INBOX.Work", "INBOX.Archive"] {
            if !store.folder_exists(folder) {
                store.create_folder(folder).map_err(|e| e.to_string())?;
            }
            store.subscribe(folder).map_err(|e| e.to_string())?;
        }
        let work = maildir.join(".Work");
        deliver_new(&work, 9, "From: carol@example.org\nTo: demo@example.org\nSubject: Quarterly planning\nDate: Thu, 5 Nov 2026 08:00:00 +0000\n\nAgenda to follow.\n")
            .map_err(|e| format!("writing a sample message: {e}"))?;
    }

    let (uid, gid) = if nix::unistd::geteuid().is_root() {
        let name = opts.user.clone().unwrap_or_else(|| "nobody".to_string());
        let user = nix::unistd::User::from_name(&name)
            .map_err(|e| format!("looking up user {name}: {e}"))?
            .ok_or_else(|| {
                format!("no such user {name}; name an unprivileged account with --user")
            })?;
        if user.uid.is_root() {
            return Err(
                "the demo refuses to serve mail as root; name an unprivileged account with --user"
                    .into(),
            );
        }
        (user.uid.as_raw(), user.gid.as_raw())
    } else {
        (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        )
    };

    let hash = crate::auth::password::hash(b"demo")?;
    let users = dir.join("users");
    let line = format!(
        "demo:{hash}:{uid}:{gid}:{}:{}::\n",
        dir.display(),
        maildir.display()
    );
    write_private(&users, &line).map_err(|e| format!("writing {}: {e}", users.display()))?;
    let pem = dir.join("mdimapd.pem");
    if !pem.exists() {
        let text = crate::server::tls::self_signed_pem(&["localhost", "127.0.0.1"])?;
        write_private(&pem, &text).map_err(|e| format!("writing {}: {e}", pem.display()))?;
    }
    let conf = dir.join("mdimapd.conf");
    let conf_text = format!(
        "# Written by `mdimap demo`.\nMDIMAP_USERFILE={}\nTLS_CERTFILE={}\nIMAP_IDLE_TIMEOUT=60\n",
        users.display(),
        pem.display()
    );
    write_private(&conf, &conf_text).map_err(|e| format!("writing {}: {e}", conf.display()))?;
    if nix::unistd::geteuid().is_root() {
        // The sessions run as the demo user and must own the maildir; the
        // user file stays root's (it is read before the drop).
        chown_tree(&maildir, uid, gid).map_err(|e| format!("chown {}: {e}", maildir.display()))?;
        std::os::unix::fs::lchown(&dir, Some(uid), Some(gid))
            .map_err(|e| format!("chown {}: {e}", dir.display()))?;
    }

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

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    fs::write(path, text)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600))
}
