//! The Environment Abstraction Layer: process-wide DPDK initialisation and clean-up.

use std::ffi::{c_char, c_int, CStr, CString};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{strerror, DpdkError};

/// Set once `rte_eal_init` has been called in this process, successful or not: DPDK refuses a
/// second call (and a failed first call leaves the EAL in an unusable state).
static EAL_INIT_CALLED: AtomicBool = AtomicBool::new(false);

/// The program name handed to the EAL as `argv[0]`; the EAL prints it in its usage text.
const PROGRAM_NAME: &str = "mpterm";

/// EAL 22.11 options that take a value, as `getopt_long` sees them (see `eal_common_options.c`).
const EAL_LONG_OPTIONS_WITH_VALUE: &[&str] = &[
    "allow",
    "base-virtaddr",
    "block",
    "file-prefix",
    "force-max-simd-bitwidth",
    "huge-dir",
    "iova-mode",
    "lcores",
    "log-level",
    "main-lcore",
    "mbuf-pool-ops-name",
    "proc-type",
    "service-corelist",
    "service-coremask",
    "socket-limit",
    "socket-mem",
    "syslog",
    "trace",
    "trace-bufsz",
    "trace-dir",
    "trace-mode",
    "vdev",
    "vfio-intr",
    "vfio-vf-token",
    "huge-worker-stack",
];

/// EAL 22.11 options that take no value.
const EAL_LONG_FLAGS: &[&str] = &[
    "create-uio-dev",
    "help",
    "huge-unlink",
    "in-memory",
    "legacy-mem",
    "match-allocations",
    "no-hpet",
    "no-huge",
    "no-pci",
    "no-shconf",
    "no-telemetry",
    "single-file-segments",
    "telemetry",
    "version",
    "vmware-tsc-map",
];

/// EAL 22.11 short options that take a value (its getopt string is `a:b:c:s:d:hl:S:m:n:r:v`).
const EAL_SHORT_OPTIONS_WITH_VALUE: &[char] = &['a', 'b', 'c', 's', 'd', 'l', 'S', 'm', 'n', 'r'];
/// EAL 22.11 short options without a value.
const EAL_SHORT_FLAGS: &[char] = &['h', 'v'];

/// Proof that the EAL is initialised; every other handle in this crate is created from it.
///
/// Dropping it calls `rte_eal_cleanup`, which releases all DPDK memory. Every handle derived from
/// it ([`crate::Mempool`], [`crate::Port`], the queues, [`crate::Mbuf`], [`crate::MbufSlice`],
/// [`crate::MbufBatch`]) borrows it, so that cannot happen while one of them lives (see the
/// crate documentation):
///
/// ```compile_fail,E0505
/// # use mpterm_dpdk::{Eal, Mempool};
/// let eal = Eal::init(&[]).unwrap();
/// let pool = Mempool::new(&eal, "pool", 1023, 0, Mempool::DEFAULT_DATA_ROOM).unwrap();
/// let moved = eal; // refused: `pool` still borrows the EAL
/// drop(pool);
/// ```
#[derive(Debug)]
pub struct Eal {
    /// Keeps `Eal` from being built outside [`Eal::init`].
    _private: (),
}

impl Eal {
    /// Initialises the EAL with `args`, the EAL arguments without the program name (for example
    /// `["--no-huge", "-m", "256", "--no-pci", "--vdev=net_ring0"]`).
    ///
    /// Debian builds the poll-mode drivers as plugins, and the EAL of Debian's 22.11 loads them
    /// by itself from [`dpdk_sys::DPDK_PMD_DIR`] (checked: the integration test passes without
    /// `-d`). If that directory exists and the caller gave no `-d`, `-d <dir>` is added anyway, so
    /// that a DPDK built without that default plugin path still finds `net_af_packet` and
    /// `net_ring`; loading a plugin twice is harmless, since `dlopen` hands back the same handle
    /// and the drivers register once.
    ///
    /// While `rte_eal_init` runs, the EAL's log goes to a memory buffer; it is written to stderr
    /// afterwards, and on failure its last error line is put into the returned error, which also
    /// names the refused argument whenever it can be identified.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if EAL_INIT_CALLED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyInitialised);
        }
        let mut full_args = Vec::with_capacity(args.len() + 3);
        full_args.push(PROGRAM_NAME.to_owned());
        // Right after the program name, so that a `--` among the caller's arguments cannot turn
        // it into a non-EAL argument.
        if !args.iter().any(|arg| arg.starts_with("-d"))
            && Path::new(dpdk_sys::DPDK_PMD_DIR).is_dir()
        {
            full_args.push("-d".to_owned());
            full_args.push(dpdk_sys::DPDK_PMD_DIR.to_owned());
        }
        full_args.extend(args.iter().cloned());
        let c_args = full_args
            .iter()
            .map(|arg| {
                CString::new(arg.as_str()).map_err(|_| DpdkError::NulInArgument(arg.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        // The EAL keeps pointers into argv (getopt permutes it, and some options are kept by
        // reference), so the strings live for the rest of the process. This runs once.
        let argv: &'static mut [*mut c_char] = Box::leak(
            c_args
                .into_iter()
                .map(CString::into_raw)
                .chain(std::iter::once(std::ptr::null_mut()))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        );
        let argc = c_int::try_from(argv.len() - 1).expect("argument count fits in a C int");

        let capture = LogCapture::start();
        // SAFETY: argv holds argc valid NUL-terminated strings followed by a NULL, all leaked so
        // they outlive the EAL; EAL_INIT_CALLED guarantees this is the only call in the process.
        let consumed = unsafe { dpdk_sys::rte_eal_init(argc, argv.as_mut_ptr()) };
        // SAFETY: reading the calling thread's rte_errno has no preconditions.
        let errno = unsafe { dpdk_sys::shim_rte_errno() };
        let eal_log = capture.finish();
        if !eal_log.is_empty() {
            eprint!("{eal_log}");
        }
        if consumed >= 0 {
            let eal = Eal { _private: () };
            // The EAL only logs a virtual device it could not create and carries on, so an
            // af_packet device on a missing interface would surface much later as a missing port.
            if let Some((argument, device)) = missing_ethernet_vdev(args) {
                let eal_log = first_error_line_mentioning(&eal_log, &device);
                drop(eal); // rte_eal_cleanup: the process is not going to use DPDK after all.
                return Err(DpdkError::EalInit {
                    argument: Some(argument),
                    reason: "the EAL did not create this ethernet device",
                    errno: ENODEV,
                    message: strerror(ENODEV),
                    eal_log,
                });
            }
            return Ok(eal);
        }
        let last_error_line = last_error_line(&eal_log);
        let (argument, reason) = match first_unknown_option(args) {
            Some(unknown) => (Some(unknown), "the EAL does not know this option"),
            None => match argument_named_in(args, last_error_line.as_deref()) {
                Some(named) => (Some(named), "the EAL's error log names this argument"),
                None => (None, "the EAL refused its arguments"),
            },
        };
        Err(DpdkError::EalInit {
            argument,
            reason,
            errno,
            message: strerror(errno),
            eal_log: last_error_line,
        })
    }

    /// Returns the id of the logical core the calling thread runs on, or `None` for a thread the
    /// EAL did not create or register (`LCORE_ID_ANY`).
    pub fn current_lcore(&self) -> Option<u32> {
        // SAFETY: rte_lcore_id reads a thread-local and has no preconditions.
        let id = unsafe { dpdk_sys::shim_rte_lcore_id() };
        (id != u32::MAX).then_some(id)
    }

    /// Registers the calling thread (one the program started itself, not an EAL lcore) with the
    /// EAL and returns its new lcore id.
    ///
    /// A worker thread does not need this to call the burst functions, but a registered thread
    /// uses the mempools' per-lcore caches instead of the shared ring on every allocation and free.
    pub fn register_current_thread(&self) -> Result<u32, DpdkError> {
        // SAFETY: rte_thread_register only touches the calling thread's lcore state.
        if unsafe { dpdk_sys::rte_thread_register() } != 0 {
            return Err(DpdkError::from_rte_errno("rte_thread_register"));
        }
        self.current_lcore()
            .ok_or_else(|| DpdkError::from_rte_errno("rte_thread_register (no lcore id assigned)"))
    }
}

impl Drop for Eal {
    fn drop(&mut self) {
        // SAFETY: the EAL was initialised (an `Eal` exists only after a successful
        // rte_eal_init) and this is the only `Eal`, so cleanup runs once.
        let code = unsafe { dpdk_sys::rte_eal_cleanup() };
        if code < 0 {
            eprintln!("rte_eal_cleanup failed: {}", strerror(-code));
        }
    }
}

/// `ENODEV` from `<errno.h>`.
const ENODEV: i32 = 19;

/// Returns the first `--vdev` argument naming an ethernet device (`net_*`) that does not exist
/// after initialisation, with the device name.
fn missing_ethernet_vdev(args: &[String]) -> Option<(String, String)> {
    vdev_arguments(args)
        .filter(|(_, device)| device.starts_with("net_"))
        .find(|(_, device)| {
            let Ok(c_name) = CString::new(device.as_str()) else {
                return true;
            };
            let mut port = 0u16;
            // SAFETY: c_name is NUL-terminated; port is a valid out-pointer; the EAL is up.
            unsafe { dpdk_sys::rte_eth_dev_get_port_by_name(c_name.as_ptr(), &mut port) != 0 }
        })
}

/// Yields `(argument as given, device name)` for every `--vdev=NAME,...` and `--vdev NAME,...`.
fn vdev_arguments(args: &[String]) -> impl Iterator<Item = (String, String)> + '_ {
    args.iter().enumerate().filter_map(|(index, arg)| {
        let spec = match arg.strip_prefix("--vdev") {
            Some(rest) if rest.starts_with('=') => rest[1..].to_owned(),
            Some("") => args.get(index + 1)?.clone(),
            _ => return None,
        };
        let device = spec.split(',').next().unwrap_or_default().to_owned();
        let given = if arg.contains('=') {
            arg.clone()
        } else {
            format!("{arg} {spec}")
        };
        Some((given, device))
    })
}

/// The first error line of the EAL log that mentions `word`, without the function prefix.
fn first_error_line_mentioning(log: &str, word: &str) -> Option<String> {
    log.lines()
        .map(str::trim)
        .find(|line| line.contains(word) && is_error_line(line))
        .map(|line| {
            line.split_once("(): ")
                .map_or(line, |(_, rest)| rest)
                .to_owned()
        })
}

/// Whether a log line reads as an error rather than information.
fn is_error_line(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    [
        "invalid", "error", "fail", "cannot", "unable", "not ", "no such",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

/// Finds the first argument that looks like an option the EAL of 22.11 does not know.
fn first_unknown_option(args: &[String]) -> Option<String> {
    let mut expecting_value = false;
    for arg in args {
        if expecting_value {
            expecting_value = false;
            continue;
        }
        if let Some(long) = arg.strip_prefix("--") {
            if long.is_empty() {
                return None; // "--" ends the EAL's options.
            }
            let (name, has_inline_value) = match long.split_once('=') {
                Some((name, _)) => (name, true),
                None => (long, false),
            };
            if EAL_LONG_OPTIONS_WITH_VALUE.contains(&name) {
                expecting_value = !has_inline_value;
            } else if !EAL_LONG_FLAGS.contains(&name) {
                return Some(arg.clone());
            }
        } else if let Some(short) = arg.strip_prefix('-') {
            let mut letters = short.chars();
            match letters.next() {
                Some(letter) if EAL_SHORT_OPTIONS_WITH_VALUE.contains(&letter) => {
                    expecting_value = letters.as_str().is_empty();
                }
                Some(letter)
                    if EAL_SHORT_FLAGS.contains(&letter) && letters.as_str().is_empty() => {}
                _ => return Some(arg.clone()),
            }
        }
    }
    None
}

/// Returns the argument (or the value of an option) that the EAL's error line mentions.
fn argument_named_in(args: &[String], error_line: Option<&str>) -> Option<String> {
    let line = error_line?;
    args.iter()
        .find(|arg| {
            let value = arg.split_once('=').map_or(arg.as_str(), |(_, value)| value);
            let value = value.split(',').next().unwrap_or(value);
            !value.is_empty() && value.len() > 1 && line.contains(value)
        })
        .cloned()
}

/// The last line of the EAL log that reads as an error, without the `EAL: ` prefix.
fn last_error_line(log: &str) -> Option<String> {
    log.lines()
        .map(str::trim)
        .rev()
        .find(|line| is_error_line(line))
        .map(|line| line.strip_prefix("EAL: ").unwrap_or(line).to_owned())
}

unsafe extern "C" {
    fn open_memstream(buffer: *mut *mut c_char, size: *mut usize) -> *mut dpdk_sys::FILE;
    fn fclose(stream: *mut dpdk_sys::FILE) -> c_int;
    fn free(pointer: *mut std::ffi::c_void);
}

/// Redirects the DPDK log into memory while it lives, so that the EAL's start-up messages can be
/// searched for the reason of a failure.
struct LogCapture {
    stream: *mut dpdk_sys::FILE,
    buffer: Box<*mut c_char>,
    size: Box<usize>,
}

impl LogCapture {
    fn start() -> Self {
        let mut buffer = Box::new(std::ptr::null_mut());
        let mut size = Box::new(0usize);
        // SAFETY: both out-pointers point to boxed storage that outlives the stream (it is closed
        // in `finish` before the boxes are dropped).
        let stream = unsafe { open_memstream(&mut *buffer, &mut *size) };
        if !stream.is_null() {
            // SAFETY: stream is a valid FILE; the EAL writes to it until `finish` resets it.
            unsafe { dpdk_sys::rte_openlog_stream(stream) };
        }
        LogCapture {
            stream,
            buffer,
            size,
        }
    }

    fn finish(self) -> String {
        if self.stream.is_null() {
            return String::new();
        }
        // SAFETY: passing NULL restores DPDK's default log stream (stderr / syslog), after which
        // DPDK no longer references our stream, so closing it is sound. After fclose the buffer
        // holds `size` bytes plus a NUL; it was allocated by open_memstream and is freed here.
        unsafe {
            dpdk_sys::rte_openlog_stream(std::ptr::null_mut());
            fclose(self.stream);
            if self.buffer.is_null() {
                return String::new();
            }
            let text = CStr::from_ptr(*self.buffer).to_string_lossy().into_owned();
            debug_assert!(text.len() <= *self.size);
            free((*self.buffer).cast());
            text
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn known_options_are_not_blamed() {
        let args = strings(&[
            "--no-huge",
            "-m",
            "256",
            "--no-pci",
            "--vdev=net_ring0",
            "--vdev",
            "net_null0",
            "-l0",
            "--file-prefix",
            "x",
        ]);
        assert_eq!(first_unknown_option(&args), None);
    }

    #[test]
    fn unknown_long_and_short_options_are_named() {
        assert_eq!(
            first_unknown_option(&strings(&["--no-huge", "--bogus-flag"])).as_deref(),
            Some("--bogus-flag")
        );
        assert_eq!(
            first_unknown_option(&strings(&["-m", "256", "-q"])).as_deref(),
            Some("-q")
        );
        // A value that looks like an option is the value of the option before it, not an option.
        assert_eq!(
            first_unknown_option(&strings(&["--file-prefix", "--weird"])),
            None
        );
    }

    #[test]
    fn error_line_names_the_argument_it_mentions() {
        let args = strings(&["--no-huge", "--vdev=net_bogus0,iface=a0"]);
        let line = "failed to parse device \"net_bogus0\"";
        assert_eq!(
            argument_named_in(&args, Some(line)).as_deref(),
            Some("--vdev=net_bogus0,iface=a0")
        );
        assert_eq!(argument_named_in(&args, Some("something unrelated")), None);
    }

    #[test]
    fn vdev_arguments_give_device_names_in_both_spellings() {
        let args = strings(&[
            "--no-huge",
            "--vdev=net_af_packet0,iface=a0",
            "--vdev",
            "net_ring1",
            "-m",
            "256",
        ]);
        let found: Vec<_> = vdev_arguments(&args).collect();
        assert_eq!(
            found,
            vec![
                (
                    "--vdev=net_af_packet0,iface=a0".to_owned(),
                    "net_af_packet0".to_owned()
                ),
                ("--vdev net_ring1".to_owned(), "net_ring1".to_owned()),
            ]
        );
    }

    #[test]
    fn device_error_line_is_the_first_that_names_the_device() {
        let log = "EAL: Selected IOVA mode 'VA'\nrte_pmd_init_internals(): net_af_packet0: ioctl failed (SIOCGIFINDEX):No such device\nvdev_probe(): failed to initialize net_af_packet0 device\n";
        assert_eq!(
            first_error_line_mentioning(log, "net_af_packet0").as_deref(),
            Some("net_af_packet0: ioctl failed (SIOCGIFINDEX):No such device")
        );
        assert_eq!(first_error_line_mentioning(log, "net_ring0"), None);
    }

    #[test]
    fn last_error_line_skips_informational_lines() {
        let log = "EAL: Detected CPU lcores: 2\nEAL: invalid parameters for --iova-mode\nEAL: Detected NUMA nodes: 1\n";
        assert_eq!(
            last_error_line(log).as_deref(),
            Some("invalid parameters for --iova-mode")
        );
    }
}
