//! In-process timings for `cargo xtask bench`: one run of `csv_processor`
//! through the `host` library against a minimal hand-written Wasmtime
//! embedding doing the same work (the floor), the compiled-module cache
//! cold against warm for every guest, and the cache's cost per module as
//! the number of distinct modules grows.
//!
//! Prints one JSON object per line, `{"name": ..., "samples_ns": [...]}`
//! (optionally `"baseline"`, `"note"`); `cargo xtask bench` turns the
//! samples into the table. `cargo bench --bench embedding -- cache-scaling`
//! runs only that part.

use std::path::{Path, PathBuf};
use std::time::Instant;

use host::{CacheMode, GuestModule, Pooling, Runtime, RuntimeConfig, Sandbox};
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

const CSV: &str = "1,2,3,4,5\n6,7,8,9,10\n";
const RUN_SAMPLES: usize = 300;
const COMPILE_SAMPLES: usize = 5;

fn main() {
    // cargo passes `--bench`; a plain word picks one part.
    if std::env::args().skip(1).any(|arg| arg == "cache-scaling") {
        return cache_scaling();
    }
    let guests = xtask::guests::build().expect("building the guests");
    let csv_path = &guests["csv_processor"];
    run_against_floor(csv_path);
    for (name, path) in &guests {
        compile_cache(name, path);
    }
    cache_scaling();
}

/// The library and the floor, sampled alternately so that both see the same
/// machine conditions.
fn run_against_floor(csv_path: &Path) {
    let on_demand = Runtime::shared().load_file(csv_path).unwrap();
    let pooled = Runtime::new(&RuntimeConfig {
        pooling: Some(Pooling::default()),
        ..RuntimeConfig::default()
    })
    .unwrap()
    .load_file(csv_path)
    .unwrap();
    let floor = Floor::new(csv_path);
    let library_run = |module: &GuestModule| {
        let outcome = Sandbox::new().stdin(CSV).run(module).unwrap();
        assert_eq!(outcome.stdout, b"55\n");
    };
    let floor_run = || assert_eq!(floor.run(CSV.as_bytes()), b"55\n");
    for _ in 0..RUN_SAMPLES / 10 {
        library_run(&on_demand);
        library_run(&pooled);
        floor_run();
    }
    let (mut library, mut pooling, mut bare) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUN_SAMPLES {
        library.push(time(|| library_run(&on_demand)));
        pooling.push(time(|| library_run(&pooled)));
        bare.push(time(floor_run));
    }
    report("run csv_processor: host library", &library);
    report("run csv_processor: host library, pooling allocator", &pooling);
    report("run csv_processor: bare wasmtime (floor)", &bare);
}

/// The least code that runs a WASI command with Wasmtime and captures its
/// stdout: a compiled module and a linker made once, a store per run.
struct Floor {
    engine: Engine,
    module: Module,
    linker: Linker<WasiP1Ctx>,
}

impl Floor {
    fn new(path: &Path) -> Self {
        let engine = Engine::default();
        let module = Module::from_file(&engine, path).unwrap();
        let mut linker = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |ctx| ctx).unwrap();
        Self { engine, module, linker }
    }

    fn run(&self, stdin: &[u8]) -> Vec<u8> {
        let stdout = MemoryOutputPipe::new(1 << 20);
        let wasi = WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(stdin.to_vec()))
            .stdout(stdout.clone())
            .build_p1();
        let mut store = Store::new(&self.engine, wasi);
        let instance = self.linker.instantiate(&mut store, &self.module).unwrap();
        let start = instance.get_typed_func::<(), ()>(&mut store, "_start").unwrap();
        if let Err(error) = start.call(&mut store, ()) {
            assert!(error.downcast_ref::<wasmtime_wasi::I32Exit>().is_some_and(|e| e.0 == 0));
        }
        drop(store);
        stdout.contents().to_vec()
    }
}

/// Loading a guest with no cache (Cranelift runs), from the disk cache in a
/// fresh runtime (as a second process would), and from memory.
fn compile_cache(name: &str, path: &PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let runtime = |cache| {
        Runtime::new(&RuntimeConfig {
            cache,
            ..RuntimeConfig::default()
        })
        .unwrap()
    };
    runtime(CacheMode::OnDisk(dir.path().to_owned()))
        .load_file(path)
        .unwrap();
    let uncached = runtime(CacheMode::Disabled);
    let cold: Vec<u64> = (0..COMPILE_SAMPLES)
        .map(|_| time(|| drop(uncached.load_file(path).unwrap())))
        .collect();
    let disk: Vec<u64> = (0..COMPILE_SAMPLES * 4)
        .map(|_| {
            let fresh = runtime(CacheMode::OnDisk(dir.path().to_owned()));
            time(|| drop(fresh.load_file(path).unwrap()))
        })
        .collect();
    let warm = runtime(CacheMode::InMemory);
    warm.load_file(path).unwrap();
    let memory: Vec<u64> = (0..RUN_SAMPLES)
        .map(|_| time(|| drop(warm.load_file(path).unwrap())))
        .collect();
    report(&format!("load {name}: cold (compile)"), &cold);
    report(&format!("load {name}: warm (disk cache)"), &disk);
    report(&format!("load {name}: warm (memory cache)"), &memory);
}

/// Loading N distinct small modules through the disk cache, cold (an empty
/// directory: each is compiled and written) and warm (a fresh runtime reads
/// each back): the time per module should not grow with N, nor the memory.
fn cache_scaling() {
    const SIZES: [u32; 3] = [100, 1_000, 10_000];
    let modules: Vec<Vec<u8>> = (0..SIZES[2])
        .map(|n| wat::parse_str(format!(r#"(module (func (export "n") (result i32) i32.const {n}))"#)).unwrap())
        .collect();
    for phase in ["cold", "warm"] {
        for n in SIZES {
            let name = |n| format!("cache scaling: {n} distinct modules, {phase} (per module)");
            let dir = tempfile::tempdir().unwrap();
            let runtime = || {
                Runtime::new(&RuntimeConfig {
                    cache: CacheMode::OnDisk(dir.path().to_owned()),
                    ..RuntimeConfig::default()
                })
                .unwrap()
            };
            if phase == "warm" {
                let writer = runtime();
                for module in &modules[..n as usize] {
                    writer.load_bytes("numbered", module).unwrap();
                }
            }
            reset_peak_memory();
            let runtime = runtime();
            let samples: Vec<u64> = modules[..n as usize]
                .iter()
                .map(|module| time(|| drop(runtime.load_bytes("numbered", module).unwrap())))
                .collect();
            let stats = runtime.cache_stats();
            let expected = if phase == "cold" {
                stats.compiled
            } else {
                stats.disk_hits
            };
            assert_eq!(expected, u64::from(n), "{phase}: {stats:?}");
            let note = peak_memory().map(|bytes| format!("peak RSS {} MiB", bytes >> 20));
            let baseline = (n != SIZES[0]).then(|| name(SIZES[0]));
            report_row(&name(n), &samples, baseline.as_deref(), note.as_deref());
        }
    }
}

/// Starts a new peak for [`peak_memory`] (Linux; elsewhere nothing).
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory since [`reset_peak_memory`], if known.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib = status.lines().find_map(|line| line.strip_prefix("VmHWM:"))?;
    Some(kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok()? * 1024)
}

fn time(f: impl FnOnce()) -> u64 {
    let start = Instant::now();
    f();
    start.elapsed().as_nanos() as u64
}

fn report(name: &str, samples: &[u64]) {
    report_row(name, samples, None, None);
}

/// One row: its samples, and optionally the row it is compared to (else
/// `cargo xtask bench` picks one from the name) and a note for the table.
fn report_row(name: &str, samples: &[u64], baseline: Option<&str>, note: Option<&str>) {
    let samples: Vec<String> = samples.iter().map(u64::to_string).collect();
    // Debug quoting is JSON's for the plain text used here.
    let json = |text: Option<&str>| text.map_or_else(|| "null".to_owned(), |t| format!("{t:?}"));
    println!(
        "{{\"name\": {name:?}, \"samples_ns\": [{}], \"baseline\": {}, \"note\": {}}}",
        samples.join(","),
        json(baseline),
        json(note)
    );
}
