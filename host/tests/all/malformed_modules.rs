//! Malformed and mismatched modules: each is a typed `host::Error` naming
//! what is wrong, never a panic, and the host goes on running guests.

use host::{Error, Runtime, Sandbox};

use crate::support;

fn load(name: &str, bytes: impl AsRef<[u8]>) -> Result<host::GuestModule, Error> {
    Runtime::shared().load_bytes(name, bytes)
}

fn invalid_reason(result: Result<host::GuestModule, Error>, name: &str) -> String {
    match result {
        Err(error @ Error::InvalidModule { .. }) => {
            assert_eq!(error.module().as_deref(), Some(name));
            causes(&error)
        }
        Err(other) => panic!("{name}: expected InvalidModule, got {other:?}"),
        Ok(_) => panic!("{name}: loaded"),
    }
}

/// The causes under `error`, as its `source` chain keeps them.
fn causes(error: &Error) -> String {
    let mut text = Vec::new();
    let mut cause = std::error::Error::source(error);
    while let Some(next) = cause {
        text.push(next.to_string());
        cause = next.source();
    }
    text.join(": ")
}

/// A real guest's bytes.
fn real_module() -> Vec<u8> {
    std::fs::read(xtask::guests::artifact("hostile").unwrap()).unwrap()
}

#[test]
fn an_empty_file_is_not_a_module() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.wasm");
    std::fs::write(&path, b"").unwrap();
    let reason = invalid_reason(Runtime::shared().load_file(&path), "empty.wasm");
    assert!(!reason.is_empty());
    invalid_reason(load("empty", b""), "empty");
}

#[test]
fn a_missing_file_is_a_read_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.wasm");
    match Runtime::shared().load_file(&path) {
        Err(Error::ReadModule { path: named, .. }) => assert_eq!(named, path),
        other => panic!("{:?}", other.map(|m| m.name().to_owned())),
    }
}

#[test]
fn wrong_magic_and_wrong_versions_are_invalid() {
    let reason = invalid_reason(load("magic", b"\0asn\x01\0\0\0"), "magic");
    assert!(
        reason.contains("magic"),
        "the reason names the bad magic number: {reason}"
    );
    for version in [[2u8, 0, 0, 0], [0, 0, 0, 1], [0xff, 0xff, 0xff, 0xff]] {
        let mut bytes = b"\0asm".to_vec();
        bytes.extend(version);
        let reason = invalid_reason(load("version", &bytes), "version");
        assert!(reason.contains("version"), "{version:?}: {reason}");
    }
    let mut elf = real_module();
    elf[..4].copy_from_slice(b"\x7fELF");
    let reason = invalid_reason(load("elf", elf), "elf");
    assert!(reason.contains("magic"), "{reason}");
}

#[test]
fn truncated_modules_are_invalid() {
    let bytes = real_module();
    // (Exactly 8 bytes, the header alone, is a valid empty module.)
    for len in [1, 4, 7, 9, 20, bytes.len() / 3, bytes.len() / 2, bytes.len() - 1] {
        invalid_reason(load("truncated", &bytes[..len]), "truncated");
    }
}

#[test]
fn random_bytes_are_invalid_with_or_without_a_valid_header() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: deterministic, so a failure is reproducible.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    for round in 0..500 {
        let len = (next() % 2048) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if round % 2 == 1 {
            bytes.splice(0..0, *b"\0asm\x01\0\0\0");
        }
        invalid_reason(load("random", &bytes), "random");
    }
}

#[test]
fn a_component_in_binary_or_text_loads_as_a_component() {
    let text = r#"(component
        (core module $m (func (export "_start")))
        (core instance (instantiate $m)))"#;
    let binary = wat::parse_str(text).unwrap();
    for (name, bytes) in [("component.wasm", binary), ("component.wat", text.as_bytes().to_vec())] {
        let loaded = load(name, bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(loaded.is_component(), "{name}");
    }
}

#[test]
fn a_module_without_start_cannot_be_run() {
    let module = support::wat(
        "library",
        r#"(module (func (export "add") (param i32 i32) (result i32) local.get 0))"#,
    );
    match Sandbox::new().run(&module) {
        Err(Error::MissingExport { module, export }) => {
            assert_eq!((module.as_str(), export.as_str()), ("library", "_start"))
        }
        other => panic!("{other:?}"),
    }
    let not_a_function = support::wat("memory-start", r#"(module (memory (export "_start") 1))"#);
    assert!(matches!(
        Sandbox::new().run(&not_a_function),
        Err(Error::MissingExport { .. })
    ));
}

#[test]
fn an_unknown_import_is_named() {
    let module = support::wat(
        "missiles",
        r#"(module
             (import "env" "launch_missiles" (func (param i32)))
             (func (export "_start")))"#,
    );
    let error = Sandbox::new().run(&module).unwrap_err();
    match &error {
        Error::UnknownImport {
            module,
            import_module,
            import_name,
        } => assert_eq!(
            (module.as_str(), import_module.as_str(), import_name.as_str()),
            ("missiles", "env", "launch_missiles")
        ),
        other => panic!("{other:?}"),
    }
    assert!(error.to_string().contains("env::launch_missiles"), "{error}");
    assert!(matches!(
        Sandbox::new().instantiate(&module),
        Err(Error::UnknownImport { .. })
    ));
}

#[test]
fn an_import_of_the_wrong_type_is_an_instantiation_error_naming_it() {
    let module = support::wat(
        "wide-log",
        r#"(module
             (import "host" "log" (func (param i64 i64)))
             (func (export "_start")))"#,
    );
    match Sandbox::new().run(&module) {
        Err(error @ Error::Instantiate { .. }) => {
            assert_eq!(error.module().as_deref(), Some("wide-log"));
            let reason = causes(&error);
            assert!(reason.contains("host") && reason.contains("log"), "{reason}");
            assert_eq!(
                error.to_string(),
                "cannot instantiate wide-log",
                "the causes are its source"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_export_with_the_wrong_signature_is_named_with_both_types() {
    let module = support::wat(
        "odd-start",
        r#"(module (func (export "_start") (param i32) (result i32) local.get 0))"#,
    );
    match Sandbox::new().run(&module) {
        Err(Error::ExportSignature {
            module, export, found, ..
        }) => {
            assert_eq!((module.as_str(), export.as_str()), ("odd-start", "_start"));
            assert!(found.contains("i32"), "{found}");
        }
        other => panic!("{other:?}"),
    }
    let mut guest = Sandbox::new().instantiate(&module).unwrap();
    assert!(matches!(
        guest.call::<(), ()>("_start", ()),
        Err(Error::ExportSignature { .. })
    ));
    assert_eq!(
        guest.call::<i32, i32>("_start", 7).unwrap(),
        7,
        "the right types still work"
    );
}

#[test]
fn after_all_that_the_host_still_runs_guests() {
    for bytes in [&b""[..], b"\0asm", b"garbage"] {
        assert!(load("bad", bytes).is_err());
    }
    let outcome = Sandbox::new().arg("env").run(&support::modules::hostile()).unwrap();
    assert!(outcome.success());
}

/// A runtime that compiles modules of at most `max` bytes, without a cache.
fn limited_to(max: usize) -> Runtime {
    let config = host::RuntimeConfig::default()
        .cache(host::CacheMode::Disabled)
        .compile_limits(host::CompileLimits {
            max_module_bytes: max,
            ..host::CompileLimits::default()
        });
    Runtime::new(&config).unwrap()
}

#[test]
fn a_module_stream_past_the_size_limit_is_read_one_byte_past_it_and_refused() {
    /// Zeros without end, counting what it gives.
    struct Endless(u64);
    impl std::io::Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(0);
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
    }
    let mut endless = Endless(0);
    match limited_to(1000).load_reader_for("endless", &mut endless, &host::Limits::default()) {
        Err(error @ Error::ModuleTooLarge { max: 1000, .. }) => {
            assert_eq!(error.module().as_deref(), Some("endless"));
        }
        other => panic!("{:?}", other.map(|m| m.name().to_owned())),
    }
    assert_eq!(endless.0, 1001, "read one byte past the limit, no more");

    let fits = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    limited_to(fits.len())
        .load_reader_for("fits", fits.as_slice(), &host::Limits::default())
        .expect("a module of exactly the limit is read");
}

#[test]
fn a_module_file_past_the_size_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("large.wasm");
    let module = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    std::fs::write(&path, &module).unwrap();
    limited_to(module.len())
        .load_file(&path)
        .expect("a file of exactly the limit is read");
    match limited_to(module.len() - 1).load_file(&path) {
        Err(Error::ModuleTooLarge { module, max }) => {
            assert_eq!(
                (module, max as usize),
                (path.display().to_string(), path.metadata().unwrap().len() as usize - 1)
            );
        }
        other => panic!("{:?}", other.map(|m| m.name().to_owned())),
    }
}

/// A FIFO would block `open(2)` until a writer came, and `/dev/zero`
/// never ends: both are refused as they are found, before a byte is read.
#[test]
fn a_module_path_that_is_a_fifo_or_a_device_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("module.fifo");
    support::mkfifo(&fifo);
    let zero = dir.path().join("zero.wasm");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    for (path, expected) in [(fifo, "a FIFO"), (zero, "a device"), ("/dev/zero".into(), "a device")] {
        let (send, receive) = std::sync::mpsc::channel();
        let asked = path.clone();
        std::thread::spawn(move || send.send(Runtime::shared().load_file(&asked).map(|m| m.name().to_owned())));
        let result = receive
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("loading {} blocked or kept reading", path.display()));
        match result {
            Err(error @ Error::ModuleNotAFile { .. }) => {
                let message = error.to_string();
                assert!(
                    message.contains(&path.display().to_string()) && message.contains(expected),
                    "{message}"
                );
            }
            other => panic!("{}: {other:?}", path.display()),
        }
    }
}
