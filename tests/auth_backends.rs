//! The authentication backends against the real thing: PAM with pam_unix and a
//! throw-away system user, a checkpassword program, and Courier's authdaemond (Debian's
//! courier-authdaemon with the userdb and pipe modules) started privately for the test.
//!
//! These tests change the system (a user, a PAM service file, a private mount namespace)
//! and so must run as root, as CI does; test.sh installs the Courier packages. A missing
//! tool or package is a failure with a message saying what to install, never a skip.

use mdimap::auth::AuthError;
use mdimap::auth::backend::{Backend, authenticate, clear_password};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
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

/// A fresh directory under /tmp, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("mdimap-auth-backends-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
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

/// A system user and a PAM service file, both removed on drop.
struct PamFixture {
    user: String,
    service: String,
}

impl PamFixture {
    fn new(password: &str) -> PamFixture {
        require("/usr/sbin/useradd", "passwd");
        require("/usr/sbin/chpasswd", "passwd");
        require("/usr/sbin/userdel", "passwd");
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
        let fixture = PamFixture {
            user: format!("mdpam{pid}"),
            service: format!("mdimap-test-{pid}"),
        };
        let _ = Command::new("/usr/sbin/userdel")
            .arg(&fixture.user)
            .stderr(Stdio::null())
            .status();
        std::fs::write(
            fixture.service_file(),
            "# mdimap test service, removed by the test\n\
             auth     required pam_unix.so nodelay\n\
             account  required pam_unix.so\n",
        )
        .unwrap();
        run(
            "/usr/sbin/useradd",
            &[
                "--no-create-home",
                "--home-dir",
                &format!("/nonexistent/{}", fixture.user),
                "--shell",
                "/usr/sbin/nologin",
                &fixture.user,
            ],
            None,
        );
        run(
            "/usr/sbin/chpasswd",
            &[],
            Some(&format!("{}:{password}\n", fixture.user)),
        );
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
        let _ = Command::new("/usr/sbin/userdel").arg(&self.user).status();
        let _ = std::fs::remove_file(self.service_file());
    }
}

#[test]
fn pam_checks_a_system_user() {
    require_root();
    let fixture = PamFixture::new("Pam pass 1");
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
    run(
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
/// from descriptor 3, runs its last argument for nobody/"right pass", exits 111 for the
/// password "tempfail" and 1 otherwise. It also records its arguments.
const CHECKPASSWORD: &str = r#"#!/bin/sh
dir=$(dirname "$0")
printf '%s\n' "$@" > "$dir/argv"
input=$(head -c 512 <&3 | tr '\0' '\n')
user=$(printf '%s\n' "$input" | sed -n 1p)
pass=$(printf '%s\n' "$input" | sed -n 2p)
for last; do :; done
if [ "$pass" = tempfail ]; then exit 111; fi
if [ "$user" = nobody ] && [ "$pass" = "right pass" ]; then exec "$last"; fi
exit 1
"#;

#[test]
fn checkpassword_program() {
    require_root();
    require("/bin/true", "coreutils");
    let nobody = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("the system user nobody (Debian's base-passwd) is missing");
    let dir = TempDir::new("checkpw");
    let program = dir.write("checkpw", CHECKPASSWORD, 0o755);
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

/// An authpipe program that knows one user, carol, with a clear-text password, so that
/// PRE answers carry PASSWD2 (userdb never returns a clear password on PRE).
const AUTH_PROG: &str = r#"#!/bin/sh
record() {
    printf 'UID=4400\nGID=4401\nHOME=/home/carol\nADDRESS=carol@example.org\n'
    printf 'MAILDIR=box\nPASSWD2=Cl3ar pw\n.\n'
}
while IFS= read -r line; do
    case "$line" in
        "PRE . "*" carol") record ;;
        "AUTH "*)
            n=${line#AUTH }
            body=$(dd bs=1 count="$n" 2>/dev/null)
            if [ "$body" = "$(printf 'imap\nlogin\ncarol\nCl3ar pw')" ]; then record; else echo FAIL; fi ;;
        *) echo FAIL ;;
    esac
done
"#;

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
makeuserdb
exec /usr/lib/courier/courier-authlib/authdaemond
"#;

struct AuthDaemon {
    dir: TempDir,
    child: Child,
}

impl AuthDaemon {
    fn start() -> AuthDaemon {
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
        let dir = TempDir::new("authdaemond");
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
        std::fs::write(etc.join("authProg"), AUTH_PROG).unwrap();
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
                started.elapsed() < Duration::from_secs(20),
                "authdaemond did not create {} within 20 s:\n{}",
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
    let daemon = AuthDaemon::start();
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
