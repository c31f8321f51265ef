//! The authentication backends against the real thing: PAM with pam_unix and a
//! throw-away system user, a checkpassword program, and Courier's authdaemond (Debian's
//! courier-authdaemon with the userdb and pipe modules) started privately for the test.
//!
//! Two levels: the library (`auth::backend::authenticate` and `clear_password`), and end
//! to end, where the real `mdimapd` serves one TCP connection on fd 0/1 with a
//! configuration naming the backend, a test client logs in over IMAP (LOGIN, AUTHENTICATE
//! PLAIN, CRAM-MD5/SHA1/SHA256), selects INBOX, and /proc shows which user the session
//! runs as. The end-to-end tests look only at what a client and an administrator see:
//! responses, log lines, /proc; the CRAM digests are computed here as a client would.
//!
//! These tests change the system (users, a PAM service file, a private mount namespace)
//! and so must run as root, as CI does; test.sh installs the Courier packages. A missing
//! tool or package is a failure with a message saying what to install, never a skip.
//! Every system change is undone on drop, also when a test fails.

mod common;

use common::{
    Client, HANG_GUARD, Read1, Response, Server, base64, chown_tree, deliver, make_maildir, message,
};
use mdimap::auth::AuthError;
use mdimap::auth::backend::{Backend, authenticate, clear_password};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "tests/auth_backends.rs must run as root (it adds a system user, a PAM service \
         file and mounts in a private namespace); run it as root, as CI does"
    );
}

fn require(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing; install the Debian package {package} (test.sh does: \
         apt-get install {package})"
    );
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    if let Some(text) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{program} {args:?} failed: {status}");
}

/// A fresh directory under /tmp, removed on drop. Mode 0755 whatever the umask: the
/// end-to-end tests keep mail users' homes in it, and a session that has dropped root must
/// be able to walk down to its maildir.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("mdimap-auth-backends-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, content: &str, mode: u32) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, content).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A user file with one user, `name`, whose password is `password`.
fn user_file(dir: &TempDir, name: &str, password: &str, uid: u32) -> Backend {
    let hash = mdimap::auth::password::hash(password.as_bytes()).unwrap();
    let path = dir.write(
        &format!("users-{name}"),
        &format!("{name}:{hash}:{uid}:{uid}:/var/vmail/{name}\n"),
        0o600,
    );
    Backend::UserFile(path)
}

// ---------------------------------------------------------------------------------------
// PAM

/// useradd, userdel, chpasswd and chage lock /etc/passwd and /etc/shadow and fail rather
/// than wait when another one holds the lock; the tests of this file run in parallel
/// threads, so they take turns here.
static SYSTEM_DATABASE: Mutex<()> = Mutex::new(());

fn change_system_database(program: &str, args: &[&str], stdin: Option<&str>) {
    let _turn = SYSTEM_DATABASE.lock().unwrap_or_else(|e| e.into_inner());
    run(program, args, stdin);
}

/// A system account (useradd, with nologin as its shell and no home created), removed on
/// drop. A leftover of an interrupted run with the same name is removed first.
struct SystemUser {
    name: String,
}

impl SystemUser {
    fn add(name: String, home: &Path, password: Option<&str>) -> SystemUser {
        require("/usr/sbin/useradd", "passwd");
        require("/usr/sbin/chpasswd", "passwd");
        require("/usr/sbin/userdel", "passwd");
        {
            let _turn = SYSTEM_DATABASE.lock().unwrap_or_else(|e| e.into_inner());
            let _ = Command::new("/usr/sbin/userdel")
                .arg(&name)
                .stderr(Stdio::null())
                .status();
        }
        // Made before useradd runs, so that a failure below still removes the account.
        let user = SystemUser { name };
        change_system_database(
            "/usr/sbin/useradd",
            &[
                "--no-create-home",
                "--home-dir",
                home.to_str().unwrap(),
                "--shell",
                "/usr/sbin/nologin",
                &user.name,
            ],
            None,
        );
        if let Some(password) = password {
            change_system_database(
                "/usr/sbin/chpasswd",
                &[],
                Some(&format!("{}:{password}\n", user.name)),
            );
        }
        user
    }

    fn account(&self) -> nix::unistd::User {
        nix::unistd::User::from_name(&self.name)
            .unwrap()
            .unwrap_or_else(|| panic!("useradd did not make the user {}", self.name))
    }
}

impl Drop for SystemUser {
    fn drop(&mut self) {
        let _turn = SYSTEM_DATABASE.lock().unwrap_or_else(|e| e.into_inner());
        let _ = Command::new("/usr/sbin/userdel").arg(&self.name).status();
    }
}

/// A system user with a password and a PAM service file (pam_unix), both removed on
/// drop. `tag` keeps the names of fixtures of tests running at the same time apart.
struct PamFixture {
    user: String,
    service: String,
    // Dropped after the service file is removed (fields drop after `drop` runs).
    account: SystemUser,
}

impl PamFixture {
    fn new(tag: &str, password: &str, home: Option<&Path>) -> PamFixture {
        let pam_unix = [
            "/usr/lib/x86_64-linux-gnu/security/pam_unix.so",
            "/lib/x86_64-linux-gnu/security/pam_unix.so",
            "/usr/lib/aarch64-linux-gnu/security/pam_unix.so",
            "/lib/aarch64-linux-gnu/security/pam_unix.so",
            "/usr/lib/security/pam_unix.so",
            "/lib/security/pam_unix.so",
        ];
        assert!(
            pam_unix.iter().any(|p| Path::new(p).exists()),
            "pam_unix.so is missing; install the Debian package libpam-modules"
        );
        let pid = std::process::id();
        let user = format!("mdpam{tag}{pid}");
        let service = format!("mdimap-test-{tag}-{pid}");
        let home = home
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(format!("/nonexistent/{user}")));
        let account = SystemUser::add(user.clone(), &home, Some(password));
        let fixture = PamFixture {
            user,
            service,
            account,
        };
        std::fs::write(
            fixture.service_file(),
            "# mdimap test service, removed by the test\n\
             auth     required pam_unix.so nodelay\n\
             account  required pam_unix.so\n",
        )
        .unwrap();
        fixture
    }

    fn service_file(&self) -> PathBuf {
        PathBuf::from(format!("/etc/pam.d/{}", self.service))
    }

    fn backend(&self) -> Backend {
        Backend::Pam {
            service: self.service.clone(),
        }
    }
}

impl Drop for PamFixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.service_file());
    }
}

#[test]
fn pam_checks_a_system_user() {
    require_root();
    let fixture = PamFixture::new("lib", "Pam pass 1", None);
    let account = nix::unistd::User::from_name(&fixture.user)
        .unwrap()
        .expect("useradd made the user");
    let pam = [fixture.backend()];

    let user = authenticate(&pam, "imap", &fixture.user, b"Pam pass 1").unwrap();
    assert_eq!(user.name, fixture.user);
    assert_eq!(user.uid, account.uid.as_raw());
    assert_eq!(user.gid, account.gid.as_raw());
    assert_eq!(
        user.home,
        PathBuf::from(format!("/nonexistent/{}", fixture.user))
    );
    assert_eq!(
        user.maildir,
        PathBuf::from(format!("/nonexistent/{}/Maildir", fixture.user))
    );

    assert!(matches!(
        authenticate(&pam, "imap", &fixture.user, b"Pam pass 2"),
        Err(AuthError::Failed)
    ));
    assert!(matches!(
        authenticate(&pam, "imap", &fixture.user, b""),
        Err(AuthError::Failed)
    ));
    assert!(matches!(
        authenticate(&pam, "imap", "no-such-user-mdimap", b"Pam pass 1"),
        Err(AuthError::Failed)
    ));

    // PAM knows the user, so a same-named user-file entry further down is never reached;
    // a user PAM does not know falls through to the user file.
    let dir = TempDir::new("pam");
    let shadowed = user_file(&dir, &fixture.user, "file pass", 7001);
    let chain = [fixture.backend(), shadowed];
    assert!(matches!(
        authenticate(&chain, "imap", &fixture.user, b"file pass"),
        Err(AuthError::Failed)
    ));
    let virtual_user = user_file(&dir, "mdvirtual", "virtual pass", 7002);
    let chain = [fixture.backend(), virtual_user];
    assert_eq!(
        authenticate(&chain, "imap", "mdvirtual", b"virtual pass")
            .unwrap()
            .uid,
        7002
    );
    // clear_password: PAM holds no clear-text password.
    assert_eq!(clear_password(&pam, "imap", &fixture.user).unwrap(), None);

    // pam_acct_mgmt is consulted: an expired account is refused with the right password.
    require("/usr/bin/chage", "passwd");
    change_system_database(
        "/usr/bin/chage",
        &["--expiredate", "1", &fixture.user],
        None,
    );
    assert!(matches!(
        authenticate(&pam, "imap", &fixture.user, b"Pam pass 1"),
        Err(AuthError::Failed)
    ));
}

// ---------------------------------------------------------------------------------------
// checkpassword

/// A checkpassword program after the qmail interface: reads `user\0password\0timestamp\0`
/// from descriptor 3, runs its last argument for one of `users` with `password`, exits 111
/// for the password "tempfail" and 1 otherwise. It records its arguments in `argv` and
/// appends each user name it is asked about to `seen`, both next to itself.
fn checkpassword_script(users: &[&str], password: &str) -> String {
    for word in users.iter().chain([&password]) {
        assert!(
            !word.contains(['\'', '\n']),
            "the test's checkpassword script quotes {word:?} in single quotes"
        );
    }
    let users = users.join(" ");
    format!(
        r#"#!/bin/sh
dir=$(dirname "$0")
printf '%s\n' "$@" > "$dir/argv"
input=$(head -c 512 <&3 | tr '\0' '\n')
user=$(printf '%s\n' "$input" | sed -n 1p)
pass=$(printf '%s\n' "$input" | sed -n 2p)
printf '%s\n' "$user" >> "$dir/seen"
for last; do :; done
if [ "$pass" = tempfail ]; then exit 111; fi
case ' {users} ' in
    *" $user "*) if [ "$pass" = '{password}' ]; then exec "$last"; fi ;;
esac
exit 1
"#
    )
}

#[test]
fn checkpassword_program() {
    require_root();
    require("/bin/true", "coreutils");
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("the system user nobody (Debian's base-passwd) is missing");
    let dir = TempDir::new("checkpw");
    let program = dir.write(
        "checkpw",
        &checkpassword_script(&["nobody"], "right pass"),
        0o755,
    );
    let backend = Backend::CheckPassword {
        program: program.clone(),
        args: vec!["-v".to_string()],
    };
    let chain = [backend.clone()];

    let user = authenticate(&chain, "imap", "nobody", b"right pass").unwrap();
    assert_eq!(
        (user.uid, user.gid),
        (nobody.uid.as_raw(), nobody.gid.as_raw())
    );
    assert_eq!(user.home, nobody.dir);
    assert_eq!(user.maildir, nobody.dir.join("Maildir"));
    assert_eq!(
        std::fs::read_to_string(dir.0.join("argv")).unwrap(),
        "-v\n/bin/true\n"
    );

    assert!(matches!(
        authenticate(&chain, "imap", "nobody", b"wrong pass"),
        Err(AuthError::Failed)
    ));
    assert!(matches!(
        authenticate(&chain, "imap", "nobody", b"tempfail"),
        Err(AuthError::Unavailable(_))
    ));

    // A temporary failure passes to the next backend; a user unknown to the system is not
    // checkpassword's to decide.
    let file = user_file(&dir, "nobody", "tempfail", 7003);
    assert_eq!(
        authenticate(&[backend.clone(), file], "imap", "nobody", b"tempfail")
            .unwrap()
            .uid,
        7003
    );
    let file = user_file(&dir, "mdvirtual", "virtual pass", 7004);
    assert_eq!(
        authenticate(&[backend, file], "imap", "mdvirtual", b"virtual pass")
            .unwrap()
            .uid,
        7004
    );
}

// ---------------------------------------------------------------------------------------
// authdaemond

const AUTHDAEMOND: &str = "/usr/lib/courier/courier-authlib/authdaemond";

/// An authpipe program that knows two users with clear-text passwords, so that PRE
/// answers carry PASSWD2 (userdb never returns a clear password on PRE): carol, with a
/// made-up home, for the library test, and mdcram, whose home is `@T@/cram` (the test's
/// directory, filled in when the program is written), for logins over IMAP.
const AUTH_PROG: &str = r#"#!/bin/sh
record() {
    printf 'UID=4400\nGID=4401\nHOME=/home/carol\nADDRESS=carol@example.org\n'
    printf 'MAILDIR=box\nPASSWD2=Cl3ar pw\n.\n'
}
cram_record() {
    printf 'UID=4331\nGID=4331\nHOME=@T@/cram\nPASSWD2=Cr4m-pw9\n.\n'
}
while IFS= read -r line; do
    case "$line" in
        "PRE . "*" carol") record ;;
        "PRE . "*" mdcram") cram_record ;;
        "AUTH "*)
            n=${line#AUTH }
            body=$(dd bs=1 count="$n" 2>/dev/null)
            if [ "$body" = "$(printf 'imap\nlogin\ncarol\nCl3ar pw')" ]; then record
            elif [ "$body" = "$(printf 'imap\nlogin\nmdcram\nCr4m-pw9')" ]; then cram_record
            else echo FAIL; fi ;;
        *) echo FAIL ;;
    esac
done
"#;

/// mdcram's password in AUTH_PROG.
const CRAM_PASSWORD: &str = "Cr4m-pw9";
/// mdcram's uid and gid in AUTH_PROG.
const CRAM_UID: u32 = 4331;

/// mdauth-erin: a userdb user whose home is `$T/erin`, for logins over IMAP.
const ERIN_PASSWORD: &str = "Er1n pass";
const ERIN_UID: u32 = 4330;

/// Sets up the userdb and starts authdaemond in a private mount namespace, where the
/// test's directories are bound over /etc/courier and /run/courier/authdaemon (Debian's
/// authdaemond has both paths compiled in). The socket appears in the test's directory.
const NAMESPACE_SCRIPT: &str = r#"set -e
mount --bind "$T/courier" /etc/courier
mount --bind "$T/run" /run/courier/authdaemon
userdb mdauth-alice set home=/home/alice uid=4321 gid=4322 mail=/srv/mail/alice \
    quota=1000S options=disableshared=1
printf 'Secr3t\n' | userdbpw -md5 | userdb mdauth-alice set systempw
userdb mdauth-bob set home=/home/bob uid=4323 gid=4322
printf 'B0b pass\n' | userdbpw -md5 | userdb mdauth-bob set systempw
userdb mdauth-erin set home="$T/erin" uid=4330 gid=4330
printf 'Er1n pass\n' | userdbpw -md5 | userdb mdauth-erin set systempw
makeuserdb
exec /usr/lib/courier/courier-authlib/authdaemond
"#;

struct AuthDaemon {
    dir: TempDir,
    child: Child,
}

impl AuthDaemon {
    /// `tag` keeps the directories of daemons of tests running at the same time apart.
    fn start(tag: &str) -> AuthDaemon {
        require(AUTHDAEMOND, "courier-authdaemon");
        require("/etc/courier", "courier-authdaemon");
        require("/usr/sbin/userdb", "courier-authlib-userdb");
        require("/usr/sbin/userdbpw", "courier-authlib-userdb");
        require("/usr/sbin/makeuserdb", "courier-authlib-userdb");
        require(
            "/usr/lib/courier-authlib/libauthuserdb.so.0",
            "courier-authlib-userdb",
        );
        require(
            "/usr/lib/courier-authlib/libauthpipe.so.0",
            "courier-authlib-pipe",
        );
        require("/usr/bin/unshare", "util-linux");
        let dir = TempDir::new(&format!("authdaemond-{tag}"));
        let etc = dir.0.join("courier");
        std::fs::create_dir(&etc).unwrap();
        std::fs::set_permissions(&etc, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::create_dir(dir.0.join("run")).unwrap();
        std::fs::write(
            etc.join("authdaemonrc"),
            "authmodulelist=\"authuserdb authpipe\"\n\
             authmodulelistorig=\"authuserdb authpipe\"\n\
             daemons=2\n\
             authdaemonvar=/run/courier/authdaemon\n\
             DEBUG_LOGIN=0\n\
             DEFAULTOPTIONS=\"\"\n\
             LOGGEROPTS=\"\"\n",
        )
        .unwrap();
        std::fs::write(etc.join("userdb"), "").unwrap();
        std::fs::set_permissions(etc.join("userdb"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        let dir_text = dir.0.to_str().unwrap();
        assert!(
            !dir_text.contains(['\\', '\'', ' ']),
            "{dir_text} would need quoting in authProg"
        );
        std::fs::write(etc.join("authProg"), AUTH_PROG.replace("@T@", dir_text)).unwrap();
        std::fs::set_permissions(etc.join("authProg"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        // The mount point must exist; on a machine that never started authdaemond it may not.
        std::fs::create_dir_all("/run/courier/authdaemon").unwrap();
        let log = std::fs::File::create(dir.0.join("log")).unwrap();
        let child = Command::new("/usr/bin/unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "/bin/sh",
                "-c",
                NAMESPACE_SCRIPT,
            ])
            .env("T", &dir.0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("cannot run unshare");
        let mut daemon = AuthDaemon { dir, child };
        let socket = daemon.socket();
        let started = Instant::now();
        while !socket.exists() {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!(
                    "authdaemond setup exited ({status}) before its socket appeared:\n{}",
                    daemon.log()
                );
            }
            assert!(
                started.elapsed() < HANG_GUARD,
                "authdaemond did not create {} within {HANG_GUARD:?}:\n{}",
                socket.display(),
                daemon.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        daemon
    }

    fn socket(&self) -> PathBuf {
        self.dir.0.join("run").join("socket")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("log")).unwrap_or_default()
    }

    fn backend(&self) -> Backend {
        Backend::AuthDaemon {
            socket: self.socket(),
        }
    }
}

impl Drop for AuthDaemon {
    fn drop(&mut self) {
        // SIGTERM lets authdaemond stop its workers (and their authpipe programs).
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }
}

#[test]
fn authdaemond_userdb_and_pipe() {
    require_root();
    let daemon = AuthDaemon::start("lib");
    let chain = [daemon.backend()];

    // userdb: a virtual user with mail, quota and options.
    let alice = authenticate(&chain, "imap", "mdauth-alice", b"Secr3t")
        .unwrap_or_else(|e| panic!("{e}\nauthdaemond log:\n{}", daemon.log()));
    assert_eq!(alice.name, "mdauth-alice");
    assert_eq!((alice.uid, alice.gid), (4321, 4322));
    assert_eq!(alice.home, PathBuf::from("/home/alice"));
    assert_eq!(alice.maildir, PathBuf::from("/srv/mail/alice"));
    assert_eq!(alice.quota.as_deref(), Some("1000S"));
    assert!(alice.option_enabled("disableshared"));

    // No mail field: home/Maildir.
    let bob = authenticate(&chain, "imap", "mdauth-bob", b"B0b pass").unwrap();
    assert_eq!((bob.uid, bob.gid), (4323, 4322));
    assert_eq!(bob.maildir, PathBuf::from("/home/bob/Maildir"));
    assert_eq!(bob.quota, None);

    assert!(matches!(
        authenticate(&chain, "imap", "mdauth-alice", b"Secr3t!"),
        Err(AuthError::Failed)
    ));
    assert!(matches!(
        authenticate(&chain, "imap", "mdauth-nobody", b"Secr3t"),
        Err(AuthError::Failed)
    ));

    // authdaemond knows alice, so it decides; users it does not know fall through.
    let dir = TempDir::new("authd-chain");
    let same_name = user_file(&dir, "mdauth-alice", "file pass", 7005);
    assert!(matches!(
        authenticate(
            &[daemon.backend(), same_name],
            "imap",
            "mdauth-alice",
            b"file pass"
        ),
        Err(AuthError::Failed)
    ));
    let other = user_file(&dir, "mdauth-zed", "zed pass", 7006);
    assert_eq!(
        authenticate(
            &[daemon.backend(), other],
            "imap",
            "mdauth-zed",
            b"zed pass"
        )
        .unwrap()
        .uid,
        7006
    );

    // authpipe: relative maildir, ADDRESS as the name, and a clear password on PRE.
    let carol = authenticate(&chain, "imap", "carol", b"Cl3ar pw").unwrap();
    assert_eq!(carol.name, "carol@example.org");
    assert_eq!((carol.uid, carol.gid), (4400, 4401));
    assert_eq!(carol.maildir, PathBuf::from("/home/carol/box"));
    match clear_password(&chain, "imap", "carol").unwrap() {
        Some((user, clear)) => {
            assert_eq!(user.name, "carol@example.org");
            assert_eq!(user.maildir, PathBuf::from("/home/carol/box"));
            assert_eq!(clear, b"Cl3ar pw");
        }
        None => panic!("authdaemond's PRE for carol should carry PASSWD2"),
    }
    // userdb keeps only hashes: known, but no clear password. Unknown: none either.
    assert_eq!(
        clear_password(&chain, "imap", "mdauth-alice").unwrap(),
        None
    );
    assert_eq!(
        clear_password(&chain, "imap", "mdauth-nobody").unwrap(),
        None
    );

    // A user file listed first shadows authdaemond's carol for CRAM too.
    let carol_file = user_file(&dir, "carol", "whatever", 7007);
    assert_eq!(
        clear_password(&[carol_file, daemon.backend()], "imap", "carol").unwrap(),
        None
    );
    drop(daemon);
}

#[test]
fn stopped_authdaemond_is_unavailable() {
    let dir = TempDir::new("no-daemon");
    let backend = Backend::AuthDaemon {
        socket: dir.0.join("socket"),
    };
    assert!(matches!(
        authenticate(std::slice::from_ref(&backend), "imap", "anyone", b"x"),
        Err(AuthError::Unavailable(_))
    ));
    assert!(matches!(
        clear_password(&[backend], "imap", "anyone"),
        Err(AuthError::Unavailable(_))
    ));
}

// ---------------------------------------------------------------------------------------
// End to end: mdimapd over a TCP connection

/// Configuration every end-to-end server gets: failures answered at once and not cut off
/// early (the tests fail on purpose several times per connection), and plaintext logins
/// allowed whatever the peer, since the policy is not what these tests are about.
const E2E_CONFIG: &str = "# written by tests/auth_backends.rs\n\
                          MDIMAP_LOGIN_FAILURE_DELAY=0\n\
                          MDIMAP_MAX_LOGIN_FAILURES=10\n\
                          MDIMAP_PLAINTEXT_LOGIN=yes\n\
                          MDIMAP_LOGIN_TIMEOUT=30\n";

/// How long a test waits for mdimapd to write a log line or to exit (a
/// guard against a hang only).
const SERVER_WAIT: Duration = HANG_GUARD;

/// The CRAM mechanisms mdimapd offers when authdaemond is in the chain.
const CRAM_CAPABILITIES: [&str; 3] = ["AUTH=CRAM-MD5", "AUTH=CRAM-SHA1", "AUTH=CRAM-SHA256"];

/// Starts `mdimapd --config <file with E2E_CONFIG and extra> --log-stderr` on the server
/// side of a fresh 127.0.0.1 TCP connection, as tcpserver or systemd would, with the log
/// in `dir`. Returns the server (killed on drop, its log printed if the test fails) and a
/// client that has read the greeting.
fn start_mdimapd(dir: &TempDir, extra: &str) -> (Server, Client) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let conf = dir.write(
        &format!("mdimapd-{n}.conf"),
        &format!("{E2E_CONFIG}{extra}"),
        0o600,
    );
    let log = dir.0.join(format!("mdimapd-{n}.log"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client_side = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server_side, _) = listener.accept().unwrap();
    let stdin: OwnedFd = server_side.try_clone().unwrap().into();
    let stdout: OwnedFd = server_side.into();
    let child = Command::new(env!("CARGO_BIN_EXE_mdimapd"))
        .arg("--config")
        .arg(&conf)
        .arg("--log-stderr")
        .env("HOME", &dir.0)
        .env_remove("TCPREMOTEIP")
        .env_remove("TCPREMOTEPORT")
        .env_remove("MDIMAP_PROXIED")
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .expect("cannot start mdimapd");
    // The Command and with it our copies of the server side are gone: the client sees end
    // of file exactly when mdimapd closes the connection.
    let server = Server { child, log };
    let mut client = Client::new(client_side);
    client.greeting = match client.read_line_within(SERVER_WAIT) {
        Read1::Line(line) => line,
        other => panic!(
            "no greeting from mdimapd ({other:?}); log:\n{}",
            server.log_text()
        ),
    };
    assert!(
        client.greeting.starts_with("* OK [CAPABILITY "),
        "greeting: {:?}; log:\n{}",
        client.greeting,
        server.log_text()
    );
    (server, client)
}

/// An IMAP quoted string.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn login(client: &mut Client, user: &str, password: &str) -> Response {
    client.cmd(&format!("LOGIN {} {}", quoted(user), quoted(password)))
}

/// A tagged NO carrying the response code `code`.
fn assert_no(response: &Response, code: &str, what: &str) {
    assert!(
        response.is_no() && response.tagged.contains(&format!("NO [{code}]")),
        "{what}: expected a tagged `NO [{code}]`, got {response:#?}"
    );
}

fn assert_ok(response: &Response, what: &str) {
    assert!(
        response.is_ok(),
        "{what}: expected a tagged OK, got {response:#?}"
    );
}

/// Waits until the log holds `needle`; returns the whole log.
fn wait_for_log(server: &Server, needle: &str) -> String {
    let found = common::wait_for(SERVER_WAIT, || server.log_text().contains(needle));
    let log = server.log_text();
    assert!(found, "mdimapd's log never said {needle:?}; log:\n{log}");
    log
}

/// The capability words of a greeting or `* CAPABILITY` line.
fn capabilities(line: &str) -> Vec<String> {
    let start = line
        .find("CAPABILITY ")
        .unwrap_or_else(|| panic!("no CAPABILITY in {line:?}"))
        + "CAPABILITY ".len();
    let end = line[start..].find(']').map_or(line.len(), |i| start + i);
    line[start..end]
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

/// Real, effective, saved and filesystem ids of a process (`Uid:`/`Gid:` of
/// /proc/<pid>/status).
fn process_ids(pid: i32, field: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field}: line in /proc/{pid}/status:\n{status}"));
    line[field.len() + 1..]
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// The session (the same process, after its privilege drop) runs as `uid`/`gid` only.
fn assert_runs_as(server: &Server, uid: u32, gid: u32) {
    let uids = process_ids(server.pid(), "Uid");
    let gids = process_ids(server.pid(), "Gid");
    assert_eq!(
        uids,
        vec![uid; 4],
        "the logged-in session must run as uid {uid} (real, effective, saved, fs); log:\n{}",
        server.log_text()
    );
    assert_eq!(
        gids,
        vec![gid; 4],
        "the logged-in session must run as gid {gid}; log:\n{}",
        server.log_text()
    );
}

/// SELECT INBOX succeeds read-write and shows `exists` messages.
fn assert_inbox(client: &mut Client, exists: u32) {
    let r = client.cmd("SELECT INBOX");
    assert_ok(&r, "SELECT INBOX");
    assert!(r.tagged.contains("[READ-WRITE]"), "SELECT INBOX: {r:#?}");
    assert_eq!(r.count("EXISTS"), Some(exists), "SELECT INBOX: {r:#?}");
}

/// LOGOUT, then mdimapd exits by itself with status 0.
fn logout(client: &mut Client, mut server: Server) -> String {
    let r = client.cmd("LOGOUT");
    assert_ok(&r, "LOGOUT");
    let status = server.wait_exit(SERVER_WAIT);
    assert!(
        status.is_some_and(|s| s.success()),
        "mdimapd after LOGOUT: {status:?}; log:\n{}",
        server.log_text()
    );
    server.log_text()
}

/// A home with a maildir holding `messages` new messages, all owned by `uid`/`gid`.
fn make_home(home: &Path, uid: u32, gid: u32, messages: usize) {
    let maildir = home.join("Maildir");
    make_maildir(&maildir);
    for n in 0..messages {
        deliver(&maildir, &message(&format!("auth test {n}"), "hello"));
    }
    chown_tree(home, uid, gid);
}

/// The log never shows a password the test sent.
fn assert_no_password(log: &str, passwords: &[&str]) {
    for password in passwords {
        assert!(
            !log.contains(password),
            "the password {password:?} reached mdimapd's log:\n{log}"
        );
    }
}

/// Standard base64 (RFC 4648) back to bytes; the test's own decoder, for CRAM challenges.
fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut bits, mut count) = (0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c)
            .unwrap_or_else(|| panic!("not base64: {text:?}")) as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

/// HMAC of `message` keyed with `key` in lower-case hex, for the named CRAM mechanism
/// (RFC 2195 for MD5; Courier's CRAM-SHA1 and CRAM-SHA256 are the same with the other
/// hashes).
fn cram_digest(mechanism: &str, key: &[u8], message: &[u8]) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    fn keyed<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = <M as KeyInit>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }
    let bytes = match mechanism {
        "CRAM-MD5" => keyed::<Hmac<md5::Md5>>(key, message),
        "CRAM-SHA1" => keyed::<Hmac<sha1::Sha1>>(key, message),
        "CRAM-SHA256" => keyed::<Hmac<sha2::Sha256>>(key, message),
        other => panic!("no such CRAM mechanism: {other}"),
    };
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One AUTHENTICATE `mechanism` exchange as a CRAM client does it: decode the challenge,
/// answer `user SP hex(HMAC(password, challenge))`. With `spoil`, the last digit of the
/// digest is changed, as a wrong password would change it.
fn cram(client: &mut Client, mechanism: &str, user: &str, password: &str, spoil: bool) -> Response {
    let tag = client.tag();
    client.send(format!("{tag} AUTHENTICATE {mechanism}\r\n").as_bytes());
    let line = client.read_line();
    let encoded = line.strip_prefix("+ ").unwrap_or_else(|| {
        panic!("AUTHENTICATE {mechanism}: expected a `+ challenge`, got {line:?}")
    });
    let challenge = base64_decode(encoded);
    let shown = String::from_utf8_lossy(&challenge).into_owned();
    assert!(
        shown.starts_with('<') && shown.ends_with('>') && shown.contains('@'),
        "AUTHENTICATE {mechanism}: the challenge should look like <random.time@host> (RFC 2195), got {shown:?}"
    );
    let mut digest = cram_digest(mechanism, password.as_bytes(), &challenge);
    if spoil {
        let last = if digest.ends_with('0') { "1" } else { "0" };
        digest.pop();
        digest.push_str(last);
    }
    client.send(format!("{}\r\n", base64(format!("{user} {digest}").as_bytes())).as_bytes());
    client.read_until_tagged(&tag, Vec::new())
}

/// AUTHENTICATE PLAIN without an initial response: `+`, then the credentials.
fn plain_after_continuation(client: &mut Client, user: &str, password: &str) -> Response {
    let tag = client.tag();
    client.send(format!("{tag} AUTHENTICATE PLAIN\r\n").as_bytes());
    let line = client.read_line();
    assert!(
        line.starts_with('+'),
        "AUTHENTICATE PLAIN: expected `+`, got {line:?}"
    );
    client.send(format!("{}\r\n", base64(format!("\0{user}\0{password}").as_bytes())).as_bytes());
    client.read_until_tagged(&tag, Vec::new())
}

#[test]
fn cram_client_digest_matches_rfc2195() {
    // RFC 2195 section 2: the example exchange, so the client side of the tests below is
    // known to be right before it judges the server.
    assert_eq!(
        cram_digest(
            "CRAM-MD5",
            b"tanstaaftanstaaf",
            b"<1896.697170952@postoffice.reston.mci.net>"
        ),
        "b913a602c7eda7a495b4e6e7334d3890"
    );
    // RFC 2202 test case 2, RFC 4231 test case 2.
    assert_eq!(
        cram_digest("CRAM-SHA1", b"Jefe", b"what do ya want for nothing?"),
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
    );
    assert_eq!(
        cram_digest("CRAM-SHA256", b"Jefe", b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
    assert_eq!(base64_decode("Zm9vYmE="), b"fooba");
}

#[test]
fn e2e_pam_login_over_imap() {
    require_root();
    const PASSWORD: &str = "Pam e2e 7";
    const WRONG: &str = "Pam e2e 8";
    let dir = TempDir::new("pam-e2e");
    let home = dir.0.join("home");
    let fixture = PamFixture::new("e2e", PASSWORD, Some(&home));
    let account = fixture.account.account();
    let (uid, gid) = (account.uid.as_raw(), account.gid.as_raw());
    make_home(&home, uid, gid, 1);
    let extra = format!("MDIMAP_AUTH=pam\nMDIMAP_PAM_SERVICE={}\n", fixture.service);
    let user = fixture.user.clone();

    // LOGIN: wrong password, then the right one.
    let (server, mut c) = start_mdimapd(&dir, &extra);
    let caps = capabilities(&c.greeting);
    assert!(
        caps.iter().any(|w| w == "AUTH=PLAIN"),
        "greeting: {}",
        c.greeting
    );
    assert!(
        !caps.iter().any(|w| w.starts_with("AUTH=CRAM")),
        "PAM holds no clear passwords, so no CRAM may be offered: {}",
        c.greeting
    );
    assert_no(
        &login(&mut c, &user, WRONG),
        "AUTHENTICATIONFAILED",
        "LOGIN with a wrong password",
    );
    wait_for_log(
        &server,
        &format!("LOGIN FAILED, method=LOGIN, user={user}, ip=[127.0.0.1]"),
    );
    assert_no(
        &login(&mut c, "mdimap-no-such-user", PASSWORD),
        "AUTHENTICATIONFAILED",
        "LOGIN of an unknown user",
    );
    assert_ok(
        &login(&mut c, &user, PASSWORD),
        "LOGIN with the right password",
    );
    assert_runs_as(&server, uid, gid);
    assert_inbox(&mut c, 1);
    let log = logout(&mut c, server);
    assert!(
        log.contains(&format!("LOGIN, user={user}, ip=[127.0.0.1]"))
            && log.contains("method=LOGIN"),
        "no LOGIN line for {user}:\n{log}"
    );
    assert_no_password(&log, &[PASSWORD, WRONG]);

    // AUTHENTICATE PLAIN with an initial response (SASL-IR).
    let (server, mut c) = start_mdimapd(&dir, &extra);
    let r = c.cmd(&format!(
        "AUTHENTICATE PLAIN {}",
        base64(format!("\0{user}\0{PASSWORD}").as_bytes())
    ));
    assert_ok(&r, "AUTHENTICATE PLAIN with an initial response");
    assert_runs_as(&server, uid, gid);
    assert_inbox(&mut c, 1);
    let log = logout(&mut c, server);
    assert!(
        log.contains("method=PLAIN"),
        "no PLAIN login in the log:\n{log}"
    );

    // AUTHENTICATE PLAIN after a continuation: wrong, then right.
    let (server, mut c) = start_mdimapd(&dir, &extra);
    assert_no(
        &plain_after_continuation(&mut c, &user, WRONG),
        "AUTHENTICATIONFAILED",
        "AUTHENTICATE PLAIN with a wrong password",
    );
    wait_for_log(&server, &format!("LOGIN FAILED, method=PLAIN, user={user}"));
    assert_ok(
        &plain_after_continuation(&mut c, &user, PASSWORD),
        "AUTHENTICATE PLAIN",
    );
    assert_runs_as(&server, uid, gid);
    assert_inbox(&mut c, 1);
    let log = logout(&mut c, server);
    assert_no_password(&log, &[PASSWORD, WRONG]);
}

#[test]
fn e2e_checkpassword_login_over_imap() {
    require_root();
    require("/bin/true", "coreutils");
    const PASSWORD: &str = "Cp e2e 3";
    let dir = TempDir::new("checkpw-e2e");
    let home = dir.0.join("home");
    let account = SystemUser::add(format!("mdcp{}", std::process::id()), &home, None);
    let system = account.account();
    let (uid, gid) = (system.uid.as_raw(), system.gid.as_raw());
    make_home(&home, uid, gid, 2);
    let program = dir.write(
        "checkpw",
        &checkpassword_script(&[&account.name], PASSWORD),
        0o755,
    );
    let extra = format!(
        "MDIMAP_AUTH=checkpassword\nMDIMAP_CHECKPASSWORD={} -v\n",
        program.display()
    );
    let user = account.name.clone();
    let seen = || std::fs::read_to_string(dir.0.join("seen")).unwrap_or_default();

    // A temporary failure (exit 111) is the server's trouble: UNAVAILABLE, and logged as
    // such, not as a failed login (fail2ban must not ban for an outage).
    let (server, mut c) = start_mdimapd(&dir, &extra);
    assert!(
        !capabilities(&c.greeting)
            .iter()
            .any(|w| w.starts_with("AUTH=CRAM")),
        "checkpassword holds no clear passwords, so no CRAM may be offered: {}",
        c.greeting
    );
    let r = login(&mut c, &user, "tempfail");
    assert_no(&r, "UNAVAILABLE", "LOGIN while checkpassword exits 111");
    let log = wait_for_log(
        &server,
        &format!("LOGIN UNAVAILABLE, method=LOGIN, user={user}"),
    );
    assert!(
        !log.contains("LOGIN FAILED"),
        "exit 111 must not be logged as LOGIN FAILED:\n{log}"
    );

    // Wrong password: exit 1.
    assert_no(
        &login(&mut c, &user, "Cp e2e 4"),
        "AUTHENTICATIONFAILED",
        "LOGIN with a wrong password",
    );
    wait_for_log(&server, &format!("LOGIN FAILED, method=LOGIN, user={user}"));

    // A name the system does not know never reaches the program.
    assert_no(
        &login(&mut c, "mdimap-no-such-user", PASSWORD),
        "AUTHENTICATIONFAILED",
        "LOGIN of an unknown user",
    );
    assert!(
        !seen().contains("mdimap-no-such-user"),
        "checkpassword was asked about a user getpwnam does not know: {:?}",
        seen()
    );

    // The right password: the session is the system user's.
    assert_ok(
        &login(&mut c, &user, PASSWORD),
        "LOGIN with the right password",
    );
    assert_runs_as(&server, uid, gid);
    assert_inbox(&mut c, 2);
    let log = logout(&mut c, server);
    assert!(
        log.contains(&format!("LOGIN, user={user}")),
        "no LOGIN line:\n{log}"
    );
    assert_no_password(&log, &[PASSWORD, "Cp e2e 4"]);
    assert_eq!(
        std::fs::read_to_string(dir.0.join("argv")).unwrap(),
        "-v\n/bin/true\n",
        "checkpassword's arguments: the configured ones, then the subprogram"
    );
}

#[test]
fn e2e_authdaemond_login_and_cram() {
    require_root();
    let daemon = AuthDaemon::start("e2e");
    let dir = &daemon.dir;
    make_home(&dir.0.join("erin"), ERIN_UID, ERIN_UID, 1);
    make_home(&dir.0.join("cram"), CRAM_UID, CRAM_UID, 2);
    let extra = format!(
        "MDIMAP_AUTH=authdaemond\nMDIMAP_AUTHDAEMON_SOCKET={}\n",
        daemon.socket().display()
    );
    let daemon_log = || format!("authdaemond setup log:\n{}", daemon.log());

    // LOGIN through userdb; CRAM is offered, before and in CAPABILITY.
    let (server, mut c) = start_mdimapd(dir, &extra);
    let caps = capabilities(&c.greeting);
    for cram_cap in CRAM_CAPABILITIES {
        assert!(
            caps.iter().any(|w| w == cram_cap),
            "{cram_cap} missing from the greeting: {}",
            c.greeting
        );
    }
    let r = c.cmd("CAPABILITY");
    assert_ok(&r, "CAPABILITY");
    let listed = capabilities(r.line("* CAPABILITY").unwrap_or_else(|| panic!("{r:#?}")));
    for cram_cap in CRAM_CAPABILITIES {
        assert!(
            listed.iter().any(|w| w == cram_cap),
            "{cram_cap} missing from CAPABILITY: {r:#?}"
        );
    }
    assert_no(
        &login(&mut c, "mdauth-erin", "Er1n pasz"),
        "AUTHENTICATIONFAILED",
        "LOGIN with a wrong password",
    );
    let r = login(&mut c, "mdauth-erin", ERIN_PASSWORD);
    assert!(r.is_ok(), "LOGIN through userdb: {r:#?}\n{}", daemon_log());
    assert_runs_as(&server, ERIN_UID, ERIN_UID);
    assert_inbox(&mut c, 1);
    let log = logout(&mut c, server);
    assert!(
        log.contains("LOGIN, user=mdauth-erin"),
        "no LOGIN line:\n{log}"
    );
    assert_no_password(&log, &[ERIN_PASSWORD, "Er1n pasz"]);

    // LOGIN through the pipe module (authpipe answers AUTH).
    let (server, mut c) = start_mdimapd(dir, &extra);
    let r = login(&mut c, "mdcram", CRAM_PASSWORD);
    assert!(
        r.is_ok(),
        "LOGIN through authpipe: {r:#?}\n{}",
        daemon_log()
    );
    assert_runs_as(&server, CRAM_UID, CRAM_UID);
    assert_inbox(&mut c, 2);
    logout(&mut c, server);

    // CRAM-MD5: a wrong digest, a user whose backend keeps no clear password (userdb),
    // then the right digest.
    let (server, mut c) = start_mdimapd(dir, &extra);
    assert_no(
        &cram(&mut c, "CRAM-MD5", "mdcram", CRAM_PASSWORD, true),
        "AUTHENTICATIONFAILED",
        "CRAM-MD5 with a wrong digest",
    );
    wait_for_log(&server, "LOGIN FAILED, method=CRAM-MD5, user=mdcram");
    assert_no(
        &cram(&mut c, "CRAM-MD5", "mdauth-erin", ERIN_PASSWORD, false),
        "AUTHENTICATIONFAILED",
        "CRAM-MD5 for a userdb user (authdaemond has no clear password for her)",
    );
    let r = cram(&mut c, "CRAM-MD5", "mdcram", CRAM_PASSWORD, false);
    assert!(
        r.is_ok(),
        "CRAM-MD5 with the right digest: {r:#?}\n{}",
        daemon_log()
    );
    assert_runs_as(&server, CRAM_UID, CRAM_UID);
    assert_inbox(&mut c, 2);
    let log = logout(&mut c, server);
    assert!(
        log.contains("method=CRAM-MD5"),
        "no CRAM-MD5 login in the log:\n{log}"
    );
    assert_no_password(&log, &[CRAM_PASSWORD]);

    // CRAM-SHA256 and CRAM-SHA1, each on its own connection.
    for mechanism in ["CRAM-SHA256", "CRAM-SHA1"] {
        let (server, mut c) = start_mdimapd(dir, &extra);
        assert_no(
            &cram(&mut c, mechanism, "mdcram", CRAM_PASSWORD, true),
            "AUTHENTICATIONFAILED",
            &format!("{mechanism} with a wrong digest"),
        );
        let r = cram(&mut c, mechanism, "mdcram", CRAM_PASSWORD, false);
        assert!(
            r.is_ok(),
            "{mechanism} with the right digest: {r:#?}\n{}",
            daemon_log()
        );
        assert_runs_as(&server, CRAM_UID, CRAM_UID);
        assert_inbox(&mut c, 2);
        let log = logout(&mut c, server);
        assert!(
            log.contains(&format!("method={mechanism}")),
            "no {mechanism} login in the log:\n{log}"
        );
    }
}

#[test]
fn e2e_chain_userfile_then_checkpassword() {
    require_root();
    require("/bin/true", "coreutils");
    const FILE_PASSWORD: &str = "File pass 5";
    const CHECK_PASSWORD: &str = "Cp pass 5";
    let pid = std::process::id();
    let dir = TempDir::new("chain-e2e");
    // Both are system users checkpassword accepts with CHECK_PASSWORD; only `listed` is
    // also in the user file, with its own password and its own maildir.
    let listed = SystemUser::add(format!("mdchl{pid}"), &dir.0.join("listed-home"), None);
    let unlisted = SystemUser::add(format!("mdchu{pid}"), &dir.0.join("unlisted-home"), None);
    let (l_uid, l_gid) = (listed.account().uid.as_raw(), listed.account().gid.as_raw());
    let (u_uid, u_gid) = (
        unlisted.account().uid.as_raw(),
        unlisted.account().gid.as_raw(),
    );
    make_home(&dir.0.join("listed-home"), l_uid, l_gid, 1);
    make_home(&dir.0.join("unlisted-home"), u_uid, u_gid, 1);
    make_home(&dir.0.join("file-home"), l_uid, l_gid, 3);
    let hash = mdimap::auth::password::hash(FILE_PASSWORD.as_bytes()).unwrap();
    let users = dir.write(
        "users",
        &format!(
            "{}:{hash}:{l_uid}:{l_gid}:{}\n",
            listed.name,
            dir.0.join("file-home").display()
        ),
        0o600,
    );
    let program = dir.write(
        "checkpw",
        &checkpassword_script(&[&listed.name, &unlisted.name], CHECK_PASSWORD),
        0o755,
    );
    let extra = format!(
        "MDIMAP_AUTH=userfile,checkpassword\nMDIMAP_USERFILE={}\nMDIMAP_CHECKPASSWORD={}\n",
        users.display(),
        program.display()
    );
    let seen = || std::fs::read_to_string(dir.0.join("seen")).unwrap_or_default();

    // Not in the user file: the second backend decides, and serves its home.
    let (server, mut c) = start_mdimapd(&dir, &extra);
    assert_ok(
        &login(&mut c, &unlisted.name, CHECK_PASSWORD),
        "LOGIN of a user only checkpassword knows",
    );
    assert_runs_as(&server, u_uid, u_gid);
    assert_inbox(&mut c, 1);
    logout(&mut c, server);
    assert!(
        seen().contains(&unlisted.name),
        "checkpassword was not asked: {:?}",
        seen()
    );

    // In the user file with a wrong password: refused there, never passed on, even though
    // checkpassword would accept that password.
    let (server, mut c) = start_mdimapd(&dir, &extra);
    assert_no(
        &login(&mut c, &listed.name, CHECK_PASSWORD),
        "AUTHENTICATIONFAILED",
        "LOGIN with the checkpassword password of a user the user file knows",
    );
    wait_for_log(
        &server,
        &format!("LOGIN FAILED, method=LOGIN, user={}", listed.name),
    );
    assert!(
        !seen().contains(&listed.name),
        "the user file knows {}, so checkpassword must not be asked: {:?}",
        listed.name,
        seen()
    );
    // The user file's password: the user file's record (its maildir holds 3 messages).
    assert_ok(
        &login(&mut c, &listed.name, FILE_PASSWORD),
        "LOGIN with the user file's password",
    );
    assert_runs_as(&server, l_uid, l_gid);
    assert_inbox(&mut c, 3);
    logout(&mut c, server);
}

// ---------------------------------------------------------------------------------------
// What reaches the log

/// A name built to forge and to hide: a line separator (U+2028) where a log reader may
/// start a new line, a fake Courier LOGIN line with the commas and brackets log tools split
/// on (no `:`, so it fits in a user-file field), a right-to-left override (U+202E) turning what follows around, and then enough to
/// reach `bytes` bytes (U+202E and U+2028 again, so that most of it is not ASCII).
fn hostile_name(start: &str, bytes: usize) -> String {
    let mut name = format!("{start}\u{2028}LOGIN, user=root, ip=[10.0.0.1]\u{202E}gnp.exe");
    while name.len() < bytes {
        name.push_str(if name.len() % 2 == 0 {
            "\u{202E}"
        } else {
            "\u{2028}"
        });
    }
    name
}

/// Issue 6: user names, user-file entries and a backend's own output reach the log escaped
/// (printable ASCII, `\xNN` for everything else) and capped, whichever backend logs them:
/// the user file (a name listed twice, a locked hash, a malformed entry), the chain (a
/// wrong password, a user no backend knows) and checkpassword (what the program printed).
#[test]
fn e2e_log_lines_are_escaped_and_bounded() {
    require_root();
    require("/bin/true", "coreutils");
    const FILE_PASSWORD: &str = "File pass 6";
    const WRONG_PASSWORD: &str = "Wrong pass 6";
    let dir = TempDir::new("log-escape");
    let home = dir.0.join("home");
    let account = SystemUser::add(format!("mdlog{}", std::process::id()), &home, None);
    let (uid, gid) = (
        account.account().uid.as_raw(),
        account.account().gid.as_raw(),
    );
    make_home(&home, uid, gid, 0);
    let listed = hostile_name("listed", 7000);
    let locked = hostile_name("locked", 7000);
    let unknown = hostile_name("unknown", 7000);
    let hash = mdimap::auth::password::hash(FILE_PASSWORD.as_bytes()).unwrap();
    let home_text = home.display();
    let users = dir.write(
        "users",
        &format!(
            "{listed}:{hash}:{uid}:{gid}:{home_text}\n\
             {listed}:{hash}:{uid}:{gid}:{home_text}\n\
             {locked}:!{hash}:{uid}:{gid}:{home_text}\n\
             malformed:{hash}:{}:{gid}:{home_text}\n",
            hostile_name("uid", 7000)
        ),
        0o600,
    );
    // The program prints a hostile diagnostic (the first 2048 bytes are kept) and refuses.
    dir.write("said", &hostile_name("checkpassword", 7000), 0o644);
    let program = dir.write(
        "checkpw",
        "#!/bin/sh\ncat \"$(dirname \"$0\")/said\" >&2\nexit 1\n",
        0o755,
    );
    let extra = format!(
        "MDIMAP_AUTH=userfile,checkpassword\nMDIMAP_USERFILE={}\nMDIMAP_CHECKPASSWORD={}\n",
        users.display(),
        program.display()
    );

    let (server, mut c) = start_mdimapd(&dir, &extra);
    for (user, what) in [
        (&listed, "a wrong password for a user of the user file"),
        (&locked, "a user whose hash is locked"),
        (&unknown, "a user no backend knows"),
        (&account.name, "a system user checkpassword refuses"),
    ] {
        let r = c.cmd(&format!(
            "LOGIN {} {}",
            common::lit(user),
            quoted(WRONG_PASSWORD)
        ));
        assert_no(&r, "AUTHENTICATIONFAILED", what);
    }
    wait_for_log(&server, "exited with status 1");
    let log = logout(&mut c, server);

    // Each place that logs was reached, so the checks below are not vacuous.
    for needle in [
        "is listed again",
        "rejected: wrong password",
        "is locked",
        "ignoring malformed user entry",
        "no backend knows this user",
        "(exit 1) said:",
    ] {
        assert!(
            log.contains(needle),
            "no log line says {needle:?}; log:\n{log}"
        );
    }
    for line in log.lines() {
        assert!(
            line.bytes().all(|b| (0x20..0x7f).contains(&b)),
            "a log line holds a byte that is not printable ASCII \
             (U+2028 starts a new line in some log viewers, U+202E reverses text): {:?}...",
            &line[..line.floor_char_boundary(300)]
        );
        assert!(
            line.len() < 1024,
            "a log line of {} bytes: client-supplied text must be capped: {}...",
            line.len(),
            &line[..line.floor_char_boundary(200)]
        );
    }
    // The names are there, escaped, not dropped: the forged separators become \x2c, \x5b,
    // \x5d, so log tools splitting on ", " and "ip=[" cannot be fooled.
    let forged =
        "\\xe2\\x80\\xa8LOGIN\\x2c user=root\\x2c ip=\\x5b10.0.0.1\\x5d\\xe2\\x80\\xaegnp.exe";
    for start in ["listed", "locked", "unknown"] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("user {start}{forged}"))),
            "no backend line names the user {start}... escaped; log:\n{log}"
        );
    }
    assert!(
        log.contains(&format!("said: checkpassword{forged}")),
        "checkpassword's output is not in the log, escaped; log:\n{log}"
    );
    assert_no_password(&log, &[FILE_PASSWORD, WRONG_PASSWORD]);
}
