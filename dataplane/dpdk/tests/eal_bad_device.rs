//! A `--vdev` the EAL cannot create ends start-up with an error naming that argument. Its own test
//! binary (and so its own process), because the EAL can be initialised only once per process.

use mpterm_dpdk::{DpdkError, Eal};

#[test]
fn vdev_on_missing_interface_is_named_in_the_error() {
    let bad_vdev = "--vdev=net_af_packet0,iface=mpdk-no-such-if";
    let args: Vec<String> = [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        bad_vdev,
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    let error = Eal::init(&args).expect_err("af_packet cannot open a missing interface");
    let DpdkError::EalInit {
        argument, eal_log, ..
    } = &error
    else {
        panic!("unexpected error {error:?}");
    };
    assert_eq!(argument.as_deref(), Some(bad_vdev), "{error}");
    let eal_log = eal_log.as_deref().unwrap_or_default();
    assert!(
        eal_log.contains("net_af_packet0"),
        "the PMD's own reason is quoted: {error}"
    );
    eprintln!("error line: {error}");
    assert!(!error.to_string().contains('\n'), "one line: {error}");
}
