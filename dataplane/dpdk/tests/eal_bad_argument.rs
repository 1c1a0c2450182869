//! A bad EAL argument ends start-up with one line that names it. Its own test binary (and so its
//! own process), because the EAL can be initialised only once per process.

use mpterm_dpdk::{DpdkError, Eal};

#[test]
fn unknown_eal_option_is_named_in_a_one_line_error() {
    let args: Vec<String> = [
        "--no-huge",
        "-m",
        "256",
        "--no-pci",
        "--no-shconf",
        "--frobnicate-queues",
    ]
    .iter()
    .map(|arg| (*arg).to_owned())
    .collect();
    let error = Eal::init(&args).expect_err("the EAL refuses an unknown option");
    match &error {
        DpdkError::EalInit {
            argument, errno, ..
        } => {
            assert_eq!(argument.as_deref(), Some("--frobnicate-queues"));
            assert_eq!(*errno, 22, "EINVAL");
        }
        other => panic!("unexpected error {other:?}"),
    }
    let text = error.to_string();
    eprintln!("error line: {text}");
    assert!(text.contains("--frobnicate-queues"), "{text}");
    assert!(!text.contains('\n'), "one line: {text}");
    // The EAL refuses a second attempt in the same process, and says so.
    assert!(matches!(
        Eal::init(&args),
        Err(DpdkError::EalAlreadyInitialised)
    ));
}
