//! Configuration loading: the shipped example, defaults, and one fixture per error class.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use mpterm_control::config::{
    Config, ConfigError, CongestionAlgorithm, Route, TcpConfig, TcpSideConfig, WorkerConfig,
};
use tracing::level_filters::LevelFilter;

const EXAMPLE_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mpterm.toml");

/// The smallest valid configuration; fixtures below append to it or replace one line in it.
const MINIMAL: &str = r#"
[[interface]]
name = "client-side"
port = "net_af_packet0"
address = "198.18.0.2/24"

[[interface]]
name = "backend-side"
port = "net_af_packet1"
address = "198.19.0.1/24"

[[proxy]]
listen = "198.18.0.2:5000"
backend = "198.19.0.2:6000"
"#;

fn replaced(from: &str, to: &str) -> String {
    assert!(MINIMAL.contains(from), "fixture does not contain {from:?}");
    MINIMAL.replacen(from, to, 1)
}

fn error_of(text: &str) -> ConfigError {
    match Config::from_toml_str(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(error) => error,
    }
}

/// Checks the one-line message exactly: it is what an operator reads.
fn assert_message(text: &str, expected: &str) {
    let message = error_of(text).to_string();
    assert_eq!(message, expected);
    assert!(!message.contains('\n'), "message spans lines: {message:?}");
}

#[test]
fn example_file_parses_with_the_documented_values() {
    let config = Config::from_file(EXAMPLE_PATH).unwrap();
    assert_eq!(config.eal_args.len(), 7);
    assert_eq!(config.eal_args[0], "--no-huge");
    assert_eq!(config.eal_args[2], "512");
    assert_eq!(config.interfaces.len(), 2);
    let client = &config.interfaces[0];
    assert_eq!(client.name, "client-side");
    assert_eq!(client.port, "net_af_packet0");
    assert_eq!(client.address, Ipv4Addr::new(198, 18, 0, 2));
    assert_eq!(client.prefix_len, 24);
    assert_eq!(client.netmask(), Ipv4Addr::new(255, 255, 255, 0));
    assert_eq!(client.gateway, Some(Ipv4Addr::new(198, 18, 0, 254)));
    assert_eq!(client.mtu, 1500);
    assert_eq!(config.interfaces[1].gateway, None);
    assert!(config.mptcp.checksum_required);
    assert_eq!(config.tcp, TcpConfig::default());
    assert_eq!(
        config.proxies[0].listen,
        SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 5000))
    );
    assert_eq!(
        config.proxies[0].backend,
        SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 2), 6000)
    );
    let ipv6 = client.ipv6.expect("the example's address6");
    assert_eq!(
        ipv6.address,
        "2001:2::2".parse::<std::net::Ipv6Addr>().unwrap()
    );
    assert_eq!(ipv6.prefix_len, 64);
    assert_eq!(ipv6.gateway, Some("fe80::1".parse().unwrap()));
    assert_eq!(config.interfaces[1].ipv6, None);
    assert_eq!(
        config.proxies[1].listen,
        "[2001:2::2]:5000".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(config.proxies[1].backend, config.proxies[0].backend);
    assert_eq!(config.worker, WorkerConfig::default());
    assert_eq!(config.log.level, LevelFilter::INFO);
}

#[test]
fn ipv6_listeners_need_an_interface_with_that_address6() {
    let text = MINIMAL.replace(
        "listen = \"198.18.0.2:5000\"",
        "listen = \"[2001:2::2]:5000\"",
    );
    assert!(
        text.contains("[2001:2::2]:5000"),
        "the fixture changed: {text}"
    );
    let error = Config::from_toml_str(&text).unwrap_err().to_string();
    assert!(
        error.contains("is not the address of any interface"),
        "{error}"
    );
    let with_address6 = text.replacen(
        "address = \"198.18.0.2/24\"",
        "address = \"198.18.0.2/24\"\naddress6 = \"2001:2::2/64\"",
        1,
    );
    let config = Config::from_toml_str(&with_address6).unwrap();
    assert_eq!(
        config.proxies[0].listen,
        "[2001:2::2]:5000".parse::<SocketAddr>().unwrap()
    );
    let duplicate = with_address6.replacen(
        "address = \"198.19.0.1/24\"",
        "address = \"198.19.0.1/24\"\naddress6 = \"2001:2::2/64\"",
        1,
    );
    let error = Config::from_toml_str(&duplicate).unwrap_err().to_string();
    assert!(error.contains("interface[1].address6"), "{error}");
    let stray_gateway = MINIMAL.replacen(
        "address = \"198.18.0.2/24\"",
        "address = \"198.18.0.2/24\"\ngateway6 = \"fe80::1\"",
        1,
    );
    let error = Config::from_toml_str(&stray_gateway)
        .unwrap_err()
        .to_string();
    assert!(error.contains("interface[0].gateway6"), "{error}");
}

#[test]
fn omitted_sections_take_their_defaults() {
    let config = Config::from_toml_str(MINIMAL).unwrap();
    assert!(config.eal_args.is_empty());
    assert!(config.mptcp.checksum_required);
    assert_eq!(config.tcp.receive_buffer, 6 * 1024 * 1024);
    assert_eq!(config.tcp.send_buffer, 1024 * 1024);
    assert_eq!(config.tcp.initial_rto_ms, 1000);
    assert_eq!(config.tcp.min_rto_ms, 200);
    assert_eq!(config.tcp.time_wait_ms, 60_000);
    assert_eq!(config.tcp.max_connections, 65_536);
    assert_eq!(config.worker.burst, 32);
    assert_eq!(config.worker.core, None);
    assert_eq!(config.log.level, LevelFilter::INFO);
    assert_eq!(config.interfaces[0].mtu, 1500);
}

#[test]
fn every_optional_key_is_read() {
    let text = format!(
        "{MINIMAL}
[mptcp]
checksum = \"off\"
[tcp]
receive_buffer = 65536
receive_buffer_initial = 65536
receive_buffer_autotuning = false
send_buffer = 1073741824
initial_rto_ms = 500
min_rto_ms = 500
time_wait_ms = 0
max_connections = 1
connect_timeout_ms = 3000
max_time_wait = 0
time_wait_reuse = false
local_port_range = [20000, 20009]
congestion_control = \"olia\"
backend_congestion_control = \"newreno\"
ecn = false
pacing = false
[tcp.backend]
keepalive = false
keepalive_idle_ms = 1000
keepalive_interval_ms = 100
keepalive_probes = 100
fin_wait_2_timeout_ms = 1000
user_timeout_ms = 0
[worker]
burst = 512
core = 3
[log]
level = \"DEBUG\"
[eal]
args = [\"--no-huge\"]
"
    );
    let config = Config::from_toml_str(&text).unwrap();
    assert!(!config.mptcp.checksum_required);
    assert_eq!(
        config.tcp,
        TcpConfig {
            receive_buffer: 65_536,
            receive_buffer_initial: 65_536,
            receive_buffer_autotuning: false,
            send_buffer: 1 << 30,
            initial_rto_ms: 500,
            min_rto_ms: 500,
            time_wait_ms: 0,
            max_connections: 1,
            connect_timeout_ms: 3000,
            max_time_wait: 0,
            time_wait_reuse: false,
            local_port_range: (20_000, 20_009),
            congestion_control: CongestionAlgorithm::Olia,
            backend_congestion_control: CongestionAlgorithm::NewReno,
            ecn: false,
            pacing: false,
            client: TcpSideConfig::default(),
            backend: TcpSideConfig {
                keepalive: false,
                keepalive_idle_ms: 1000,
                keepalive_interval_ms: 100,
                keepalive_probes: 100,
                fin_wait_2_timeout_ms: 1000,
                user_timeout_ms: 0,
            },
        }
    );
    assert_eq!(
        config.worker,
        WorkerConfig {
            burst: 512,
            core: Some(3)
        }
    );
    assert_eq!(config.log.level, LevelFilter::DEBUG);
    assert_eq!(config.eal_args, vec!["--no-huge".to_owned()]);
}

#[test]
fn the_receive_buffer_autotunes_from_128_kib_to_6_mib_by_default_and_starts_within_its_maximum() {
    let config = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(config.tcp.receive_buffer, 6 << 20);
    assert_eq!(config.tcp.receive_buffer_initial, 128 << 10);
    assert!(config.tcp.receive_buffer_autotuning);
    // An initial size above the maximum is the maximum.
    let text =
        format!("{MINIMAL}\n[tcp]\nreceive_buffer = 131072\nreceive_buffer_initial = 1048576\n");
    let config = Config::from_toml_str(&text).unwrap();
    assert_eq!(config.tcp.receive_buffer_initial, 128 << 10);
}

#[test]
fn routes_prefer_the_longest_on_link_prefix_then_the_first_gateway() {
    let text = r#"
[[interface]]
name = "wide"
port = "p0"
address = "198.18.0.2/15"
[[interface]]
name = "narrow"
port = "p1"
address = "198.19.0.1/24"
gateway = "198.19.0.254"
[[proxy]]
listen = "198.18.0.2:80"
backend = "198.19.0.9:80"
"#;
    let config = Config::from_toml_str(text).unwrap();
    // 198.19.0.9 is inside both 198.18.0.0/15 and 198.19.0.0/24: the /24 wins.
    assert_eq!(
        config.route_to(Ipv4Addr::new(198, 19, 0, 9)),
        Some(Route {
            interface: 1,
            next_hop: Ipv4Addr::new(198, 19, 0, 9)
        })
    );
    assert_eq!(
        config.route_to(Ipv4Addr::new(198, 18, 5, 5)),
        Some(Route {
            interface: 0,
            next_hop: Ipv4Addr::new(198, 18, 5, 5)
        })
    );
    // Off-link everywhere: through the only gateway.
    assert_eq!(
        config.route_to(Ipv4Addr::new(198, 51, 100, 1)),
        Some(Route {
            interface: 1,
            next_hop: Ipv4Addr::new(198, 19, 0, 254)
        })
    );
    let no_gateway = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(no_gateway.route_to(Ipv4Addr::new(198, 51, 100, 1)), None);
}

#[test]
fn backend_off_link_is_accepted_when_an_interface_has_a_gateway() {
    let text = replaced("198.19.0.2:6000", "198.51.100.7:6000").replacen(
        "address = \"198.19.0.1/24\"",
        "address = \"198.19.0.1/24\"\ngateway = \"198.19.0.254\"",
        1,
    );
    let config = Config::from_toml_str(&text).unwrap();
    assert_eq!(
        config.route_to(*config.proxies[0].backend.ip()),
        Some(Route {
            interface: 1,
            next_hop: Ipv4Addr::new(198, 19, 0, 254)
        })
    );
}

#[test]
fn missing_file_is_a_read_error() {
    let error = Config::from_file("/nonexistent/mpterm.toml").unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }));
    assert!(error
        .to_string()
        .starts_with("cannot read config file /nonexistent/mpterm.toml: "));
}

#[test]
fn toml_syntax_error_names_the_line() {
    let error = error_of("[[interface]]\nname = \"x\"\nport = \n");
    assert!(
        matches!(error, ConfigError::Syntax { line: 3, .. }),
        "{error:?}"
    );
    assert!(!error.to_string().contains('\n'));
}

#[test]
fn unknown_key_is_rejected_with_its_path() {
    let error = error_of(&replaced(
        "port = \"net_af_packet1\"",
        "port = \"net_af_packet1\"\nmut = 1500",
    ));
    let message = error.to_string();
    assert!(matches!(error, ConfigError::Schema { .. }));
    assert!(
        message.starts_with("config key interface[1].mut: unknown field `mut`"),
        "{message}"
    );
    assert!(message.ends_with("(line 10)"), "{message}");
}

#[test]
fn unknown_section_is_rejected() {
    let message = error_of(&format!("{MINIMAL}\n[workers]\nburst = 1\n")).to_string();
    assert!(
        message.starts_with("config key workers: unknown field `workers`"),
        "{message}"
    );
}

#[test]
fn wrong_type_names_the_key() {
    let message = error_of(&format!("{MINIMAL}\n[worker]\nburst = \"many\"\n")).to_string();
    assert!(
        message.starts_with("config key worker.burst: invalid type: string \"many\""),
        "{message}"
    );
}

#[test]
fn negative_number_names_the_key() {
    let message = error_of(&format!("{MINIMAL}\n[tcp]\ntime_wait_ms = -1\n")).to_string();
    assert!(
        message.starts_with("config key tcp.time_wait_ms: "),
        "{message}"
    );
}

#[test]
fn missing_required_key_names_the_entry() {
    let message = error_of(&replaced("port = \"net_af_packet0\"\n", "")).to_string();
    assert!(
        message.starts_with("config key interface[0]: missing field `port`"),
        "{message}"
    );
}

#[test]
fn invalid_socket_address_names_the_key() {
    assert_message(
        &replaced("198.19.0.2:6000", "198.19.0.2"),
        "config key proxy[0].backend: invalid socket address \"198.19.0.2\", expected A.B.C.D:PORT",
    );
}

#[test]
fn zero_port_is_rejected() {
    assert_message(
        &replaced("198.18.0.2:5000", "198.18.0.2:0"),
        "config key proxy[0].listen: port 0 is not allowed in 198.18.0.2:0",
    );
}

#[test]
fn prefix_length_above_32_is_rejected() {
    assert_message(
        &replaced("198.19.0.1/24", "198.19.0.1/33"),
        "config key interface[1].address: prefix length 33 out of range 0..=32",
    );
}

#[test]
fn interface_address_without_prefix_is_rejected() {
    assert_message(
        &replaced("198.18.0.2/24", "198.18.0.2"),
        "config key interface[0].address: invalid IPv4 interface address \"198.18.0.2\", expected A.B.C.D/LEN",
    );
    assert!(matches!(
        error_of(&replaced("198.18.0.2/24", "198.18.0.2/+8")),
        ConfigError::InvalidInterfaceAddress { .. }
    ));
    assert!(matches!(
        error_of(&replaced("198.18.0.2/24", "198.18.0.256/24")),
        ConfigError::InvalidInterfaceAddress { .. }
    ));
}

#[test]
fn invalid_gateway_address_is_rejected() {
    assert_message(
        &replaced(
            "address = \"198.18.0.2/24\"",
            "address = \"198.18.0.2/24\"\ngateway = \"router\"",
        ),
        "config key interface[0].gateway: invalid IPv4 address \"router\"",
    );
}

#[test]
fn gateway_outside_the_prefix_is_rejected() {
    assert_message(
        &replaced(
            "address = \"198.18.0.2/24\"",
            "address = \"198.18.0.2/24\"\ngateway = \"198.18.1.1\"",
        ),
        "config key interface[0].gateway: gateway 198.18.1.1 is not on-link of 198.18.0.2/24",
    );
}

#[test]
fn gateway_equal_to_own_address_is_rejected() {
    assert_message(
        &replaced(
            "address = \"198.18.0.2/24\"",
            "address = \"198.18.0.2/24\"\ngateway = \"198.18.0.2\"",
        ),
        "config key interface[0].gateway: gateway 198.18.0.2 is the interface's own address",
    );
}

#[test]
fn out_of_range_numbers_are_rejected_with_the_range() {
    let cases = [
        (
            "[tcp]\nreceive_buffer = 65535",
            "config key tcp.receive_buffer: 65535 out of range 65536..=1073741824",
        ),
        (
            "[tcp]\nreceive_buffer_initial = 65535",
            "config key tcp.receive_buffer_initial: 65535 out of range 65536..=1073741824",
        ),
        (
            "[tcp]\nsend_buffer = 1073741825",
            "config key tcp.send_buffer: 1073741825 out of range 65536..=1073741824",
        ),
        (
            "[tcp]\ninitial_rto_ms = 0",
            "config key tcp.initial_rto_ms: 0 out of range 1..=60000",
        ),
        (
            "[tcp]\ntime_wait_ms = 240001",
            "config key tcp.time_wait_ms: 240001 out of range 0..=240000",
        ),
        (
            "[tcp]\nmax_connections = 0",
            "config key tcp.max_connections: 0 out of range 1..=16777216",
        ),
        (
            "[tcp]\nconnect_timeout_ms = 99",
            "config key tcp.connect_timeout_ms: 99 out of range 100..=600000",
        ),
        (
            "[tcp]\nlocal_port_range = [1023, 2000]",
            "config key tcp.local_port_range: 1023 out of range 1024..=65535",
        ),
        (
            "[tcp]\nlocal_port_range = [3000, 2000]",
            "config key tcp.local_port_range: 2000 out of range 3000..=65535",
        ),
        (
            "[tcp.client]\nuser_timeout_ms = 999",
            "config key tcp.client.user_timeout_ms: 999 out of range 1000..=86400000",
        ),
        (
            "[tcp.backend]\nkeepalive_probes = 0",
            "config key tcp.backend.keepalive_probes: 0 out of range 1..=100",
        ),
        (
            "[tcp.client]\nfin_wait_2_timeout_ms = 999",
            "config key tcp.client.fin_wait_2_timeout_ms: 999 out of range 1000..=3600000",
        ),
        (
            "[worker]\nburst = 0",
            "config key worker.burst: 0 out of range 1..=512",
        ),
        (
            "[worker]\nburst = 513",
            "config key worker.burst: 513 out of range 1..=512",
        ),
        (
            "[worker]\ncore = 1024",
            "config key worker.core: 1024 out of range 0..=1023",
        ),
    ];
    for (section, expected) in cases {
        assert_message(&format!("{MINIMAL}\n{section}\n"), expected);
    }
    assert_message(
        &replaced(
            "address = \"198.19.0.1/24\"",
            "address = \"198.19.0.1/24\"\nmtu = 575",
        ),
        "config key interface[1].mtu: 575 out of range 576..=9000",
    );
}

#[test]
fn min_rto_above_initial_rto_is_rejected() {
    assert_message(
        &format!("{MINIMAL}\n[tcp]\ninitial_rto_ms = 300\nmin_rto_ms = 301\n"),
        "config key tcp.min_rto_ms: 301 is larger than tcp.initial_rto_ms (300)",
    );
}

#[test]
fn empty_name_is_rejected() {
    assert_message(
        &replaced("name = \"client-side\"", "name = \"  \""),
        "config key interface[0].name: must not be empty",
    );
}

#[test]
fn duplicate_interface_port_is_rejected() {
    assert_message(
        &replaced("port = \"net_af_packet1\"", "port = \"net_af_packet0\""),
        "config key interface[1].port: net_af_packet0 is already used by interface[0].port",
    );
}

#[test]
fn duplicate_interface_address_is_rejected() {
    assert_message(
        &replaced("198.19.0.1/24", "198.18.0.2/16"),
        "config key interface[1].address: 198.18.0.2 is already used by interface[0].address",
    );
}

#[test]
fn duplicate_interface_name_is_rejected() {
    assert_message(
        &replaced("name = \"backend-side\"", "name = \"client-side\""),
        "config key interface[1].name: client-side is already used by interface[0].name",
    );
}

#[test]
fn duplicate_proxy_listen_is_rejected() {
    let text = format!(
        "{MINIMAL}\n[[proxy]]\nlisten = \"198.18.0.2:5000\"\nbackend = \"198.19.0.3:7000\"\n"
    );
    assert_message(
        &text,
        "config key proxy[1].listen: 198.18.0.2:5000 is already used by proxy[0].listen",
    );
}

#[test]
fn listen_on_a_foreign_address_is_rejected() {
    assert_message(
        &replaced("198.18.0.2:5000", "198.18.0.3:5000"),
        "config key proxy[0].listen: 198.18.0.3:5000 is not the address of any interface",
    );
}

#[test]
fn unreachable_backend_is_rejected() {
    assert_message(
        &replaced("198.19.0.2:6000", "198.51.100.7:6000"),
        "config key proxy[0].backend: 198.51.100.7:6000 is not on-link of any interface and no interface has a gateway",
    );
}

#[test]
fn backend_on_an_own_address_is_rejected() {
    assert_message(
        &replaced("198.19.0.2:6000", "198.19.0.1:6000"),
        "config key proxy[0].backend: 198.19.0.1:6000 is an address of this appliance",
    );
}

#[test]
fn missing_interfaces_or_proxies_are_rejected() {
    assert_message(
        "[[proxy]]\nlisten = \"198.18.0.2:5000\"\nbackend = \"198.19.0.2:6000\"\n",
        "config key interface: at least one [[interface]] section is required",
    );
    let without_proxy = &MINIMAL[..MINIMAL.find("[[proxy]]").unwrap()];
    assert_message(
        without_proxy,
        "config key proxy: at least one [[proxy]] section is required",
    );
}

#[test]
fn multipath_settings_default_and_are_read_and_checked() {
    use mpterm_control::config::Scheduler;
    let config = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(config.mptcp.max_subflows, 8);
    assert!(config.mptcp.allow_join_initial_address);
    assert_eq!(config.proxies[0].scheduler, Scheduler::LowestRtt);
    let config = Config::from_toml_str(&format!(
        "{MINIMAL}\n[mptcp]\nallow_join_initial_address = false\n"
    ))
    .unwrap();
    assert!(!config.mptcp.allow_join_initial_address);
    let config = Config::from_toml_str(&format!(
        "{}\n[mptcp]\nmax_subflows = 2\n",
        replaced(
            "backend = \"198.19.0.2:6000\"",
            "backend = \"198.19.0.2:6000\"\nscheduler = \"round-robin\""
        )
    ))
    .unwrap();
    assert_eq!(config.mptcp.max_subflows, 2);
    assert_eq!(config.proxies[0].scheduler, Scheduler::RoundRobin);
    assert_message(
        &format!("{MINIMAL}\n[mptcp]\nmax_subflows = 9\n"),
        "config key mptcp.max_subflows: 9 out of range 1..=8",
    );
    assert_message(
        &replaced(
            "backend = \"198.19.0.2:6000\"",
            "backend = \"198.19.0.2:6000\"\nscheduler = \"fastest\"",
        ),
        "config key proxy[0].scheduler: unknown value \"fastest\", expected one of lowest-rtt, round-robin",
    );
}

#[test]
fn unknown_checksum_mode_is_rejected() {
    assert_message(
        &format!("{MINIMAL}\n[mptcp]\nchecksum = \"on\"\n"),
        "config key mptcp.checksum: unknown value \"on\", expected one of required, off",
    );
}

#[test]
fn congestion_control_defaults_to_cubic_and_reads_every_algorithm() {
    let config = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(config.tcp.congestion_control, CongestionAlgorithm::Cubic);
    assert_eq!(
        config.tcp.backend_congestion_control,
        CongestionAlgorithm::Cubic
    );
    for (word, algorithm) in [
        ("cubic", CongestionAlgorithm::Cubic),
        ("newreno", CongestionAlgorithm::NewReno),
        ("lia", CongestionAlgorithm::Lia),
        ("olia", CongestionAlgorithm::Olia),
    ] {
        let text = format!("{MINIMAL}\n[tcp]\ncongestion_control = \"{word}\"\n");
        let config = Config::from_toml_str(&text).unwrap();
        assert_eq!(config.tcp.congestion_control, algorithm, "{word}");
        assert_eq!(algorithm.to_string(), word);
    }
}

#[test]
fn unknown_congestion_control_is_rejected() {
    assert_message(
        &format!("{MINIMAL}\n[tcp]\ncongestion_control = \"bbr\"\n"),
        "config key tcp.congestion_control: unknown value \"bbr\", expected one of cubic, newreno, lia, olia",
    );
    // The names are lower case, as the other words of the file.
    assert_message(
        &format!("{MINIMAL}\n[tcp]\ncongestion_control = \"LIA\"\n"),
        "config key tcp.congestion_control: unknown value \"LIA\", expected one of cubic, newreno, lia, olia",
    );
    // The backend connection is alone: nothing to couple.
    assert_message(
        &format!("{MINIMAL}\n[tcp]\nbackend_congestion_control = \"lia\"\n"),
        "config key tcp.backend_congestion_control: unknown value \"lia\", expected one of cubic, newreno",
    );
    assert!(
        error_of(&format!("{MINIMAL}\n[tcp]\ncongestion_control = 1\n"))
            .to_string()
            .starts_with("config key tcp.congestion_control:")
    );
}

#[test]
fn unknown_log_level_is_rejected() {
    assert_message(
        &format!("{MINIMAL}\n[log]\nlevel = \"3\"\n"),
        "config key log.level: unknown value \"3\", expected one of trace, debug, info, warn, error, off",
    );
}

#[test]
fn network_and_broadcast_addresses_are_not_host_addresses() {
    assert_message(
        &replaced("198.19.0.1/24", "198.19.0.0/24"),
        "config key interface[1].address: 198.19.0.0/24 is the network or broadcast address of its prefix",
    );
    assert!(matches!(
        error_of(&replaced("198.19.0.1/24", "198.19.0.255/24")),
        ConfigError::NotAHostAddress { .. }
    ));
    // A /31 has no network or broadcast address (RFC 3021), so both ends are hosts.
    let point_to_point =
        replaced("198.19.0.1/24", "198.19.0.0/31").replace("198.19.0.2:6000", "198.19.0.1:6000");
    let config = Config::from_toml_str(&point_to_point).unwrap();
    assert_eq!(config.interfaces[1].prefix_len, 31);
}

#[test]
fn the_control_socket_is_optional_and_read_when_given() {
    assert_eq!(Config::from_toml_str(MINIMAL).unwrap().control.socket, None);
    let text = format!("{MINIMAL}\n[control]\nsocket = \"/run/mpterm.sock\"\n");
    assert_eq!(
        Config::from_toml_str(&text).unwrap().control.socket,
        Some(std::path::PathBuf::from("/run/mpterm.sock"))
    );
}

#[test]
fn a_control_socket_path_must_fit_a_unix_socket_address() {
    let long = format!("/{}", "s".repeat(107));
    assert_message(
        &format!("{MINIMAL}\n[control]\nsocket = \"{long}\"\n"),
        "config key control.socket: path is 108 bytes long, at most 107 fit a Unix socket address",
    );
    let fits = format!("/{}", "s".repeat(106));
    let text = format!("{MINIMAL}\n[control]\nsocket = \"{fits}\"\n");
    assert!(Config::from_toml_str(&text).is_ok());
    assert_message(
        &format!("{MINIMAL}\n[control]\nsocket = \"\"\n"),
        "config key control.socket: must not be empty",
    );
}
