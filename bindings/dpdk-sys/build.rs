//! Finds DPDK 22.11 with pkg-config, compiles the C shim for DPDK's `static inline` functions and
//! generates the raw bindings with bindgen.

use std::env;
use std::path::PathBuf;

/// The DPDK release the bindings are written against; the ABI of 22.11 (DPDK 23.0 ABI) is stable
/// within the LTS branch, so any 22.11.x is accepted.
const DPDK_SERIES: &str = "22.11";

fn main() {
    println!("cargo:rerun-if-changed=csrc/wrapper.h");
    println!("cargo:rerun-if-changed=csrc/shim.h");
    println!("cargo:rerun-if-changed=csrc/shim.c");

    let dpdk = pkg_config::Config::new()
        .atleast_version(DPDK_SERIES)
        .probe("libdpdk")
        .unwrap_or_else(|error| {
            panic!(
                "pkg-config could not find libdpdk >= {DPDK_SERIES} (install libdpdk-dev): {error}"
            )
        });
    if !dpdk.version.starts_with(DPDK_SERIES) {
        println!(
            "cargo:warning=dpdk-sys is written against DPDK {DPDK_SERIES}, found {}",
            dpdk.version
        );
    }

    // pkg-config hands out flags that are not include paths (`-include rte_config.h`,
    // `-march=...`); the static inline functions need them, so both the shim and bindgen get the
    // full list verbatim.
    let compile_flags = dpdk_compile_flags(&dpdk);

    let mut shim = cc::Build::new();
    shim.file("csrc/shim.c").include("csrc").warnings(true);
    for flag in &compile_flags {
        shim.flag(flag);
    }
    shim.compile("dpdk_sys_shim");

    let mut builder = bindgen::Builder::default()
        .header("csrc/wrapper.h")
        .clang_arg("-Icsrc")
        .clang_args(compile_flags.iter())
        .allowlist_function("rte_.*")
        .allowlist_function("shim_rte_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*")
        .allowlist_var("SOCKET_ID_ANY")
        .allowlist_var("E_RTE_.*")
        .derive_default(true)
        .derive_debug(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()));
    // Debian's 22.11 headers declare these protocol headers as packed structs holding aligned
    // unions/bitfields, which Rust cannot express; nothing here reads their fields.
    for opaque in OPAQUE_TYPES {
        builder = builder.opaque_type(opaque);
    }
    let bindings = builder
        .generate()
        .expect("bindgen failed on csrc/wrapper.h");

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings
        .write_to_file(out.join("bindings.rs"))
        .expect("could not write bindings.rs");
}

/// Types bindgen must leave opaque (a byte array of the right size and alignment).
const OPAQUE_TYPES: &[&str] = &["rte_l2tpv2_.*", "rte_gtp_.*", "rte_arp_hdr", "rte_arp_ipv4"];

/// Returns the C compiler flags for DPDK: every `Cflags` token pkg-config reports, which includes
/// `-include rte_config.h` and `-march`. The pkg-config crate keeps only the include paths, so
/// the tool is asked again; if that fails the include paths alone are used.
fn dpdk_compile_flags(dpdk: &pkg_config::Library) -> Vec<String> {
    let output =
        std::process::Command::new(env::var("PKG_CONFIG").unwrap_or_else(|_| "pkg-config".into()))
            .args(["--cflags", "libdpdk"])
            .output();
    let text = output
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .unwrap_or_default();
    let mut flags: Vec<String> = Vec::new();
    let mut tokens = text.split_whitespace();
    while let Some(token) = tokens.next() {
        if token == "-include" {
            if let Some(file) = tokens.next() {
                flags.push("-include".into());
                flags.push(file.into());
            }
        } else {
            flags.push(token.into());
        }
    }
    if flags.is_empty() {
        flags.extend(
            dpdk.include_paths
                .iter()
                .map(|path| format!("-I{}", path.display())),
        );
    }
    flags
}
