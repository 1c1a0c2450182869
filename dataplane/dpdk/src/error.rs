//! The error type of every fallible DPDK call in this crate.

use std::ffi::CStr;

/// A DPDK call that failed, with the `rte_errno` (or negative return code) it reported.
///
/// Every variant renders as one line, so that start-up failures end the program with one clear
/// message even though the EAL also writes its own log lines.
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// `rte_eal_init` refused its arguments. `argument` is the argument that was refused when it
    /// could be identified (an option the EAL does not know, or an argument the EAL's own error
    /// log names); `eal_log` is the EAL's last error line, if it wrote one.
    #[error("EAL initialisation failed{}: {reason} (rte_errno {errno}: {message}){}",
        argument.as_ref().map(|a| format!(" on argument `{a}`")).unwrap_or_default(),
        eal_log.as_ref().map(|l| format!("; EAL said: {l}")).unwrap_or_default())]
    EalInit {
        /// The refused argument, when known.
        argument: Option<String>,
        /// Why this argument is blamed, in words.
        reason: &'static str,
        /// `rte_errno` after the failed call.
        errno: i32,
        /// `rte_strerror(errno)`.
        message: String,
        /// The EAL's last error log line during initialisation.
        eal_log: Option<String>,
    },
    /// The EAL was already initialised in this process; DPDK allows that only once.
    #[error("EAL is already initialised in this process (rte_eal_init may run only once)")]
    EalAlreadyInitialised,
    /// An argument cannot be passed to C because it contains a NUL byte.
    #[error("argument `{0}` contains a NUL byte")]
    NulInArgument(String),
    /// A DPDK call failed; `call` names it, `errno` is `rte_errno` or the negated return code.
    #[error("{call} failed: {message} (errno {errno})")]
    Call {
        /// The DPDK function that failed, with the object it was called on.
        call: String,
        /// `rte_errno` or the negated return value.
        errno: i32,
        /// `rte_strerror(errno)`.
        message: String,
    },
    /// No ethernet device has this name (a `--vdev` name such as `net_af_packet0`).
    #[error("no DPDK port named `{0}` (was it given to the EAL with --vdev?)")]
    PortNotFound(String),
    /// No ethernet device has this id.
    #[error("no DPDK port with id {0}")]
    InvalidPortId(u16),
    /// The port was already opened in this process; each port has one handle.
    #[error("DPDK port {0} is already open (a port has one handle per process)")]
    PortAlreadyOpen(u16),
    /// The port cannot be configured again: its queues are handed out, and reconfiguring would
    /// free the driver's queues under them.
    #[error("DPDK port {0} cannot be reconfigured once its queues are handed out")]
    QueuesInUse(u16),
    /// The queue was never configured or its handle was already taken.
    #[error("{kind} queue {queue} of port {port} is not configured or already taken")]
    QueueUnavailable {
        /// `"rx"` or `"tx"`.
        kind: &'static str,
        /// The port id.
        port: u16,
        /// The queue id.
        queue: u16,
    },
}

impl DpdkError {
    /// Builds a [`DpdkError::Call`] from `rte_errno` of the calling thread.
    pub(crate) fn from_rte_errno(call: impl Into<String>) -> Self {
        // SAFETY: reading the calling thread's rte_errno has no preconditions.
        let errno = unsafe { dpdk_sys::shim_rte_errno() };
        Self::from_errno(call, errno)
    }

    /// Builds a [`DpdkError::Call`] from a negative return code such as `-EINVAL`.
    pub(crate) fn from_return_code(call: impl Into<String>, code: i32) -> Self {
        Self::from_errno(call, code.saturating_abs())
    }

    fn from_errno(call: impl Into<String>, errno: i32) -> Self {
        Self::Call {
            call: call.into(),
            errno,
            message: strerror(errno),
        }
    }
}

/// Returns DPDK's text for an errno value (covers both libc and `E_RTE_*` codes).
pub(crate) fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror accepts any value and returns a pointer to a NUL-terminated string
    // that stays valid at least until the next call on this thread; it is copied at once.
    unsafe {
        let text = dpdk_sys::rte_strerror(errno);
        if text.is_null() {
            return format!("unknown error {errno}");
        }
        CStr::from_ptr(text).to_string_lossy().into_owned()
    }
}

/// Turns a DPDK return code (0 on success, negative errno on failure) into a `Result`.
pub(crate) fn check(call: impl FnOnce() -> String, code: i32) -> Result<(), DpdkError> {
    if code < 0 {
        Err(DpdkError::from_return_code(call(), code))
    } else {
        Ok(())
    }
}
