//! The `mpterm` binary as an operator meets it: exit codes and messages of the command line.

use std::path::PathBuf;
use std::process::{Command, Output};

const EXAMPLE_CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../control/examples/mpterm.toml"
);

fn mpterm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mpterm"))
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("the mpterm binary runs")
}

/// A config file in the target directory's temp area, unique per test and process.
fn write_config(test_name: &str, text: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let path = dir.join(format!("{test_name}-{}.toml", std::process::id()));
    std::fs::write(&path, text).expect("the temp config is written");
    path
}

#[test]
fn check_config_accepts_the_shipped_example() {
    let output = mpterm(&["--config", EXAMPLE_CONFIG, "--check-config"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("is valid"), "{stdout}");
    assert!(
        stdout.contains("interface client-side: port net_af_packet0 address 198.18.0.2/24"),
        "{stdout}"
    );
    assert!(
        stdout.contains("proxy 198.18.0.2:5000 -> 198.19.0.2:6000 via backend-side"),
        "{stdout}"
    );
}

#[test]
fn bad_config_exits_2_with_one_line_naming_the_key() {
    let text = std::fs::read_to_string(EXAMPLE_CONFIG)
        .unwrap()
        .replace("backend = \"198.19.0.2:6000\"", "backend = \"198.19.0.2\"");
    let path = write_config("bad-backend", &text);
    let output = mpterm(&["--config", path.to_str().unwrap(), "--check-config"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr,
        "mpterm: config key proxy[0].backend: invalid socket address \"198.19.0.2\", expected A.B.C.D:PORT\n"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn bad_config_exits_2_also_without_check_config() {
    let text = std::fs::read_to_string(EXAMPLE_CONFIG)
        .unwrap()
        .replace("address = \"198.19.0.1/24\"", "address = \"198.19.0.1/33\"");
    let path = write_config("bad-prefix", &text);
    let output = mpterm(&["--config", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(
        stderr,
        "mpterm: config key interface[1].address: prefix length 33 out of range 0..=32\n"
    );
}

#[test]
fn missing_config_file_exits_2() {
    let output = mpterm(&["--config", "/nonexistent/mpterm.toml", "--check-config"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr.starts_with("mpterm: cannot read config file /nonexistent/mpterm.toml: "),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}

#[test]
fn invalid_log_level_is_a_usage_error() {
    let output = mpterm(&["--config", EXAMPLE_CONFIG, "--log-level", "loud"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--log-level"));
}

#[test]
fn version_prints_the_package_version() {
    let output = mpterm(&["--version"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("mpterm {}\n", env!("CARGO_PKG_VERSION"))
    );
}

/// Needs DPDK's EAL (root on the project's machines, as CI runs): an argument the EAL refuses
/// ends start-up with exit code 1 and an error line that names the argument, no backtrace.
#[test]
fn refused_eal_argument_is_named_in_one_error_line() {
    let text = std::fs::read_to_string(EXAMPLE_CONFIG)
        .unwrap()
        .replace("\"--no-pci\",", "\"--no-pci\", \"--no-such-eal-option\",");
    let path = write_config("bad-eal", &text);
    let output = mpterm(&[
        "--config",
        path.to_str().unwrap(),
        "--stats-interval-ms",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("ERROR"))
        .collect();
    assert_eq!(error_lines.len(), 1, "stderr: {stderr}");
    assert!(
        error_lines[0].contains("`--no-such-eal-option`"),
        "{}",
        error_lines[0]
    );
    assert!(!stderr.contains("panicked"), "stderr: {stderr}");
}

/// An interface whose device the EAL cannot create (no such kernel interface) is named too.
#[test]
fn missing_interface_device_is_named_in_one_error_line() {
    let text = std::fs::read_to_string(EXAMPLE_CONFIG)
        .unwrap()
        .replace("iface=a0", "iface=mpterm-no-such-if0");
    let path = write_config("bad-vdev", &text);
    let output = mpterm(&[
        "--config",
        path.to_str().unwrap(),
        "--stats-interval-ms",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let error_lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("ERROR"))
        .collect();
    assert_eq!(error_lines.len(), 1, "stderr: {stderr}");
    assert!(
        error_lines[0].contains("mpterm-no-such-if0"),
        "{}",
        error_lines[0]
    );
}

/// Needs DPDK (root): the whole data plane starts on two `net_ring` loopback ports, the control
/// thread logs statistics at the requested interval, and SIGTERM stops it with exit code 0 well
/// within the 5 s an orchestrator waits before it kills.
#[test]
fn runs_on_ring_ports_and_stops_cleanly_on_sigterm() {
    let text = std::fs::read_to_string(EXAMPLE_CONFIG)
        .unwrap()
        .replace("\"-m\", \"512\"", "\"-m\", \"256\", \"-l\", \"0\"")
        .replace("--vdev=net_af_packet0,iface=a0", "--vdev=net_ring0")
        .replace("--vdev=net_af_packet1,iface=b0", "--vdev=net_ring1")
        .replace("port = \"net_af_packet0\"", "port = \"net_ring0\"")
        .replace("port = \"net_af_packet1\"", "port = \"net_ring1\"");
    let path = write_config("ring-run", &text);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mpterm"))
        .args([
            "--config",
            path.to_str().unwrap(),
            "--stats-interval-ms",
            "200",
        ])
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("the mpterm binary runs");
    // Start-up time varies with the machine's load, so the clock starts at "worker running".
    let lines = {
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = sender.send(line);
            }
        });
        receiver
    };
    let mut log = Vec::new();
    let started_by = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !log
        .iter()
        .any(|line: &String| line.contains("worker running"))
    {
        let wait = started_by.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(wait) {
            Ok(line) => log.push(line),
            Err(_) => panic!("no \"worker running\" within 30 s; stderr: {log:#?}"),
        }
    }
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert!(
        child.try_wait().unwrap().is_none(),
        "mpterm ended before it was asked to"
    );
    let signalled = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    let stopping_took = signalled.elapsed();
    log.extend(lines.iter());
    let stderr = log.join("\n");
    assert_eq!(status.code(), Some(0), "stderr: {stderr}");
    assert!(
        stopping_took < std::time::Duration::from_secs(2),
        "stopping took {stopping_took:?}"
    );
    assert!(stderr.contains("worker running"), "stderr: {stderr}");
    // About five reports in the second after start-up at 200 ms; three even on a loaded machine.
    let reports = stderr
        .lines()
        .filter(|line| line.contains("INFO") && line.contains(" statistics totals="))
        .count();
    assert!(reports >= 3, "{reports} statistics lines; stderr: {stderr}");
    assert!(stderr.contains("final statistics"), "stderr: {stderr}");
    assert!(stderr.contains("worker stopped"), "stderr: {stderr}");
    assert!(!stderr.contains("ERROR"), "stderr: {stderr}");
}
