//! PAM: checking a system user's password with `pam_authenticate` and `pam_acct_mgmt`
//! under a configured service name (`/etc/pam.d/<service>`, default `mdimap`).
//!
//! libpam is loaded at run time (`dlopen("libpam.so.0")`) rather than linked: the
//! server then builds without PAM headers or a C toolchain's bindgen, runs on systems
//! without PAM when PAM is not configured, and reports a missing libpam as "unavailable"
//! instead of failing to start. Only the six functions below are used, declared from
//! Linux-PAM's `<security/_pam_types.h>`.
//!
//! The mail user is the system account (getpwnam): its uid, gid and home, with the
//! maildir `home/Maildir`. A name getpwnam does not know is "unknown" without asking
//! PAM, because no mail user could be made for it anyway.
//!
//! This module verifies only: it does not open a PAM session or set credentials (the
//! server does not become the user through PAM), does not change the process's
//! identity, and never logs the password. The process is root here, so pam_unix reads
//! `/etc/shadow` itself.

use super::{AuthError, Verdict, system_user};
use crate::logtext::escape;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::sync::OnceLock;

// Return codes and flags from <security/_pam_types.h> (Linux-PAM).
const PAM_SUCCESS: c_int = 0;
const PAM_PERM_DENIED: c_int = 6;
const PAM_AUTH_ERR: c_int = 7;
const PAM_CRED_INSUFFICIENT: c_int = 8;
const PAM_USER_UNKNOWN: c_int = 10;
const PAM_MAXTRIES: c_int = 11;
const PAM_NEW_AUTHTOK_REQD: c_int = 12;
const PAM_ACCT_EXPIRED: c_int = 13;
const PAM_CONV_ERR: c_int = 19;
const PAM_BUF_ERR: c_int = 5;
const PAM_AUTHTOK_EXPIRED: c_int = 27;
const PAM_SILENT: c_int = 0x8000;
const PAM_DISALLOW_NULL_AUTHTOK: c_int = 0x0001;
const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;
const PAM_MAX_NUM_MSG: c_int = 32;

#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    resp_retcode: c_int,
}

type ConvFn = extern "C" fn(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int;

#[repr(C)]
struct PamConv {
    conv: ConvFn,
    appdata_ptr: *mut c_void,
}

/// Opaque `pam_handle_t`.
#[repr(C)]
struct PamHandle {
    _private: [u8; 0],
}

type StartFn = unsafe extern "C" fn(
    service: *const c_char,
    user: *const c_char,
    conv: *const PamConv,
    handle: *mut *mut PamHandle,
) -> c_int;
type ActionFn = unsafe extern "C" fn(handle: *mut PamHandle, flags: c_int) -> c_int;
type EndFn = unsafe extern "C" fn(handle: *mut PamHandle, status: c_int) -> c_int;
type StrerrorFn = unsafe extern "C" fn(handle: *mut PamHandle, errnum: c_int) -> *const c_char;

/// The libpam entry points. The library stays loaded for the life of the process.
struct LibPam {
    start: StartFn,
    authenticate: ActionFn,
    acct_mgmt: ActionFn,
    end: EndFn,
    strerror: StrerrorFn,
}

/// Load libpam once; the error says what is missing.
fn libpam() -> Result<&'static LibPam, String> {
    static LIBPAM: OnceLock<Result<LibPam, String>> = OnceLock::new();
    LIBPAM.get_or_init(load).as_ref().map_err(Clone::clone)
}

fn load() -> Result<LibPam, String> {
    const SONAME: &CStr = c"libpam.so.0";
    // SAFETY: dlopen with a valid C string; RTLD_GLOBAL lets PAM modules that rely on the
    // application's namespace find libpam's symbols.
    let handle = unsafe { libc::dlopen(SONAME.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if handle.is_null() {
        return Err(format!(
            "cannot load libpam.so.0 ({}); install the PAM library (Debian: libpam0g)",
            dl_error()
        ));
    }
    let symbol = |name: &CStr| -> Result<*mut c_void, String> {
        // SAFETY: `handle` is a live handle from dlopen and `name` a valid C string.
        let address = unsafe { libc::dlsym(handle, name.as_ptr()) };
        if address.is_null() {
            Err(format!(
                "libpam.so.0 has no {}: {}",
                name.to_string_lossy(),
                dl_error()
            ))
        } else {
            Ok(address)
        }
    };
    // SAFETY: each symbol is the Linux-PAM function of that name, whose C prototype the
    // corresponding fn type above declares.
    unsafe {
        Ok(LibPam {
            start: std::mem::transmute::<*mut c_void, StartFn>(symbol(c"pam_start")?),
            authenticate: std::mem::transmute::<*mut c_void, ActionFn>(symbol(
                c"pam_authenticate",
            )?),
            acct_mgmt: std::mem::transmute::<*mut c_void, ActionFn>(symbol(c"pam_acct_mgmt")?),
            end: std::mem::transmute::<*mut c_void, EndFn>(symbol(c"pam_end")?),
            strerror: std::mem::transmute::<*mut c_void, StrerrorFn>(symbol(c"pam_strerror")?),
        })
    }
}

fn dl_error() -> String {
    // SAFETY: dlerror returns NULL or a valid C string owned by libdl.
    let text = unsafe { libc::dlerror() };
    if text.is_null() {
        "unknown dynamic loader error".to_string()
    } else {
        // SAFETY: non-null, NUL-terminated, valid until the next dl call on this thread.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    }
}

/// What the conversation function answers with.
struct Answers {
    user: CString,
    password: CString,
}

impl Drop for Answers {
    fn drop(&mut self) {
        scrub_cstring(&mut self.password);
    }
}

/// Overwrite a C string's bytes before they are freed.
fn scrub_cstring(text: &mut CString) {
    let taken = std::mem::take(text);
    let mut bytes = taken.into_bytes_with_nul();
    super::secret::scrub(&mut bytes);
}

/// A malloc'd copy of `text` for libpam, which frees responses with free(3).
fn malloc_copy(text: &CStr) -> *mut c_char {
    let bytes = text.to_bytes_with_nul();
    // SAFETY: malloc of a non-zero size; the copy stays within the allocation.
    unsafe {
        let copy = libc::malloc(bytes.len()).cast::<c_char>();
        if !copy.is_null() {
            std::ptr::copy_nonoverlapping(bytes.as_ptr().cast::<c_char>(), copy, bytes.len());
        }
        copy
    }
}

/// Free a response array built by `converse`, zeroing the strings (they may hold the password).
///
/// # Safety
/// `responses` must come from calloc with `count` entries whose `resp` fields are NULL or
/// malloc'd C strings.
unsafe fn free_responses(responses: *mut PamResponse, count: usize) {
    for i in 0..count {
        // SAFETY: i < count, within the calloc'd array (caller's contract).
        let entry = unsafe { &mut *responses.add(i) };
        if !entry.resp.is_null() {
            // SAFETY: a malloc'd NUL-terminated string (caller's contract).
            unsafe {
                let len = libc::strlen(entry.resp);
                std::ptr::write_bytes(entry.resp, 0, len);
                libc::free(entry.resp.cast());
            }
            entry.resp = std::ptr::null_mut();
        }
    }
    // SAFETY: the array itself came from calloc.
    unsafe { libc::free(responses.cast()) };
}

/// The PAM conversation: the password for echo-off prompts, the user name for echo-on
/// prompts (a module asking "login:"), and informational messages go to the log.
extern "C" fn converse(
    num_msg: c_int,
    msg: *mut *const PamMessage,
    resp: *mut *mut PamResponse,
    appdata: *mut c_void,
) -> c_int {
    if num_msg <= 0 || num_msg > PAM_MAX_NUM_MSG || msg.is_null() || resp.is_null() {
        return PAM_CONV_ERR;
    }
    if appdata.is_null() {
        return PAM_CONV_ERR;
    }
    // SAFETY: appdata is the `Answers` that `authenticate` put in the PamConv, alive for
    // the whole PAM transaction.
    let answers = unsafe { &*appdata.cast::<Answers>() };
    let count = num_msg as usize;
    // SAFETY: calloc for `count` zeroed responses (NULL resp, 0 retcode).
    let responses =
        unsafe { libc::calloc(count, std::mem::size_of::<PamResponse>()) }.cast::<PamResponse>();
    if responses.is_null() {
        return PAM_BUF_ERR;
    }
    for i in 0..count {
        // SAFETY: Linux-PAM passes an array of `num_msg` pointers to messages.
        let message = unsafe { *msg.add(i) };
        if message.is_null() {
            // SAFETY: `responses` is our calloc'd array of `count` entries.
            unsafe { free_responses(responses, count) };
            return PAM_CONV_ERR;
        }
        // SAFETY: a non-null message from libpam.
        let message = unsafe { &*message };
        let answer = match message.msg_style {
            PAM_PROMPT_ECHO_OFF => Some(answers.password.as_c_str()),
            PAM_PROMPT_ECHO_ON => Some(answers.user.as_c_str()),
            PAM_ERROR_MSG | PAM_TEXT_INFO => {
                if !message.msg.is_null() {
                    // SAFETY: libpam's message text is a NUL-terminated string.
                    let text = unsafe { CStr::from_ptr(message.msg) };
                    log::info!("pam: {}", escape(text.to_bytes()));
                }
                None
            }
            _ => {
                // SAFETY: as above.
                unsafe { free_responses(responses, count) };
                return PAM_CONV_ERR;
            }
        };
        if let Some(answer) = answer {
            let copy = malloc_copy(answer);
            if copy.is_null() {
                // SAFETY: as above.
                unsafe { free_responses(responses, count) };
                return PAM_BUF_ERR;
            }
            // SAFETY: i < count.
            unsafe { (*responses.add(i)).resp = copy };
        }
    }
    // SAFETY: resp is non-null; libpam takes ownership of the array.
    unsafe { *resp = responses };
    PAM_SUCCESS
}

/// Check `password` for system user `user` through PAM service `service`.
pub(crate) fn authenticate(
    service: &str,
    user: &str,
    password: &[u8],
) -> Result<Verdict, AuthError> {
    let Some(mail_user) = system_user(user)? else {
        return Ok(Verdict::UnknownUser);
    };
    let (Ok(service_c), Ok(user_c)) = (CString::new(service), CString::new(user)) else {
        return Err(AuthError::Unavailable(format!(
            "the PAM service name {service:?} or the user name contains NUL"
        )));
    };
    let Ok(password_c) = CString::new(password) else {
        return Ok(Verdict::Rejected("the password contains NUL".to_string()));
    };
    let lib = libpam().map_err(AuthError::Unavailable)?;
    let answers = Answers {
        user: user_c.clone(),
        password: password_c,
    };
    let conversation = PamConv {
        conv: converse,
        appdata_ptr: std::ptr::from_ref(&answers).cast_mut().cast(),
    };
    let mut handle: *mut PamHandle = std::ptr::null_mut();
    // SAFETY: valid C strings; `conversation` and `answers` outlive the handle (pam_end
    // below is called before they are dropped).
    let started = unsafe {
        (lib.start)(
            service_c.as_ptr(),
            user_c.as_ptr(),
            &conversation,
            &mut handle,
        )
    };
    if started != PAM_SUCCESS || handle.is_null() {
        return Err(AuthError::Unavailable(format!(
            "pam_start for service {service} failed ({})",
            describe(lib, std::ptr::null_mut(), started)
        )));
    }
    let flags = PAM_SILENT | PAM_DISALLOW_NULL_AUTHTOK;
    // SAFETY: a live handle from pam_start.
    let auth = unsafe { (lib.authenticate)(handle, flags) };
    let result = match auth {
        PAM_SUCCESS => {
            // SAFETY: as above.
            let account = unsafe { (lib.acct_mgmt)(handle, flags) };
            match account {
                PAM_SUCCESS => Ok(Verdict::Accepted(mail_user)),
                PAM_ACCT_EXPIRED | PAM_NEW_AUTHTOK_REQD | PAM_AUTHTOK_EXPIRED | PAM_PERM_DENIED
                | PAM_AUTH_ERR | PAM_USER_UNKNOWN => Ok(Verdict::Rejected(format!(
                    "PAM service {service} refuses the account: {}",
                    describe(lib, handle, account)
                ))),
                other => Err(AuthError::Unavailable(format!(
                    "pam_acct_mgmt for service {service}: {}",
                    describe(lib, handle, other)
                ))),
            }
        }
        PAM_USER_UNKNOWN => Ok(Verdict::UnknownUser),
        PAM_AUTH_ERR | PAM_CRED_INSUFFICIENT | PAM_MAXTRIES | PAM_PERM_DENIED => {
            Ok(Verdict::Rejected(format!(
                "PAM service {service}: {}",
                describe(lib, handle, auth)
            )))
        }
        other => Err(AuthError::Unavailable(format!(
            "pam_authenticate for service {service}: {}",
            describe(lib, handle, other)
        ))),
    };
    let last = match &result {
        Ok(Verdict::Accepted(_)) => PAM_SUCCESS,
        _ => auth,
    };
    // SAFETY: the live handle, ended exactly once.
    unsafe { (lib.end)(handle, last) };
    result
}

/// libpam's text for `code`, with the number for searching the documentation.
fn describe(lib: &LibPam, handle: *mut PamHandle, code: c_int) -> String {
    // SAFETY: pam_strerror accepts any code and (in Linux-PAM) ignores the handle, which
    // may be NULL; it returns a static string.
    let text = unsafe { (lib.strerror)(handle, code) };
    let text = if text.is_null() {
        "unknown PAM error".to_string()
    } else {
        // SAFETY: non-null static C string.
        unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned()
    };
    format!("{text} (PAM code {code})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libpam_loads() {
        let lib = libpam().expect("libpam.so.0 must be loadable on the test machine");
        assert_eq!(
            describe(lib, std::ptr::null_mut(), PAM_AUTH_ERR),
            "Authentication failure (PAM code 7)"
        );
        assert_eq!(
            describe(lib, std::ptr::null_mut(), PAM_USER_UNKNOWN),
            "User not known to the underlying authentication module (PAM code 10)"
        );
    }

    #[test]
    fn unknown_system_user_is_unknown_without_pam() {
        assert!(matches!(
            authenticate("mdimap", "no-such-user-mdimap-test", b"x"),
            Ok(Verdict::UnknownUser)
        ));
    }

    /// Drive the conversation function as libpam would, and check the answers and that
    /// the responses are released with free(3) without trouble.
    #[test]
    fn conversation_answers_prompts() {
        let answers = Answers {
            user: CString::new("alice").unwrap(),
            password: CString::new("s3cret").unwrap(),
        };
        let prompts = [
            PamMessage {
                msg_style: PAM_PROMPT_ECHO_OFF,
                msg: c"Password: ".as_ptr(),
            },
            PamMessage {
                msg_style: PAM_TEXT_INFO,
                msg: c"hello".as_ptr(),
            },
            PamMessage {
                msg_style: PAM_PROMPT_ECHO_ON,
                msg: c"login: ".as_ptr(),
            },
        ];
        let mut pointers: Vec<*const PamMessage> = prompts.iter().map(std::ptr::from_ref).collect();
        let mut responses: *mut PamResponse = std::ptr::null_mut();
        let appdata = std::ptr::from_ref(&answers).cast_mut().cast();
        let rc = converse(3, pointers.as_mut_ptr(), &mut responses, appdata);
        assert_eq!(rc, PAM_SUCCESS);
        unsafe {
            let texts: Vec<Option<String>> = (0..3)
                .map(|i| {
                    let r = (*responses.add(i)).resp;
                    (!r.is_null()).then(|| CStr::from_ptr(r).to_string_lossy().into_owned())
                })
                .collect();
            assert_eq!(
                texts,
                vec![Some("s3cret".to_string()), None, Some("alice".to_string())]
            );
            free_responses(responses, 3);
        }
        // An unknown message style is a conversation error.
        let odd = PamMessage {
            msg_style: 99,
            msg: c"?".as_ptr(),
        };
        let mut pointers = vec![std::ptr::from_ref(&odd)];
        let mut responses: *mut PamResponse = std::ptr::null_mut();
        assert_eq!(
            converse(1, pointers.as_mut_ptr(), &mut responses, appdata),
            PAM_CONV_ERR
        );
        assert_eq!(
            converse(0, pointers.as_mut_ptr(), &mut responses, appdata),
            PAM_CONV_ERR
        );
    }
}
