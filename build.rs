//! Link options for the `helpdesk` binary only.
//!
//! On Linux with glibc 2.36 or later, relative relocations are packed
//! (`DT_RELR`): the dynamic linker then reads 8 KB of them at every start
//! instead of 640 KB, which a cron run with nothing to do (1 MiB less peak
//! memory) and every short command feel. The binary then needs glibc 2.36
//! where it runs, so the option is used only when building on such a
//! system for itself (not when cross-compiling).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let env = |key: &str| std::env::var(key).unwrap_or_default();
    let native = env("HOST") == env("TARGET");
    let linux_gnu = env("CARGO_CFG_TARGET_OS") == "linux" && env("CARGO_CFG_TARGET_ENV") == "gnu";
    if native && linux_gnu && glibc_at_least(2, 36) {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Whether the glibc this build script runs on is at least `major.minor`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn glibc_at_least(major: u32, minor: u32) -> bool {
    unsafe extern "C" {
        fn gnu_get_libc_version() -> *const std::ffi::c_char;
    }
    // SAFETY: glibc returns a static NUL-terminated string such as "2.36".
    let version = unsafe { std::ffi::CStr::from_ptr(gnu_get_libc_version()) };
    let mut parts = version
        .to_str()
        .unwrap_or_default()
        .split('.')
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn glibc_at_least(_major: u32, _minor: u32) -> bool {
    false
}
