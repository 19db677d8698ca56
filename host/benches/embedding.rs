//! In-process timings for `cargo xtask bench`: one run of `csv_processor`
//! through the `host` library against the fastest hand-written Wasmtime
//! embedding doing the same work (the floor: `InstancePre` and the pooling
//! allocator), each allocator against its own floor, the compiled-module cache
//! cold against warm for every guest, and the cache's cost per module as
//! the number of distinct modules grows.
//!
//! Prints one JSON object per line, `{"name": ..., "samples_ns": [...]}`
//! (optionally `"baseline"`, `"note"`); `cargo xtask bench` turns the
//! samples into the table. `cargo bench --bench embedding -- run` (or
//! `-- cache-scaling`) runs only that part.

use std::path::{Path, PathBuf};
use std::time::Instant;

use host::{CacheMode, GuestModule, Pooling, Runtime, RuntimeConfig, Sandbox};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module, Store};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};

const CSV: &str = "1,2,3,4,5\n6,7,8,9,10\n";
const RUN_SAMPLES: usize = 300;
const COMPILE_SAMPLES: usize = 5;

fn main() {
    // cargo passes `--bench`; a plain word picks one part.
    let part = |name: &str| std::env::args().skip(1).any(|arg| arg == name);
    if part("cache-scaling") {
        return cache_scaling();
    }
    let guests = xtask::guests::build().expect("building the guests");
    run_against_floor(&guests["csv_processor"]);
    if part("run") {
        return;
    }
    for (name, path) in &guests {
        compile_cache(name, path);
    }
    cache_scaling();
}

/// The library and the bare floors, sampled in turn so that all see the
/// same machine conditions.
fn run_against_floor(csv_path: &Path) {
    let on_demand = Runtime::new(&RuntimeConfig::default().pooling(None))
        .unwrap()
        .load_file(csv_path)
        .unwrap();
    let default = Runtime::shared().load_file(csv_path).unwrap();
    let pooled = Runtime::new(&RuntimeConfig::default().pooling(Some(Pooling::default())))
        .unwrap()
        .load_file(csv_path)
        .unwrap();
    let bare = Floor::new(csv_path, false);
    let bare_pooled = Floor::new(csv_path, true);
    let library_run = |module: &GuestModule| {
        let outcome = Sandbox::new().stdin(CSV).run(module).unwrap();
        assert_eq!(outcome.stdout, b"55\n");
    };
    let floor_run = |floor: &Floor| assert_eq!(floor.run(CSV.as_bytes()), b"55\n");
    let runs: [Sampled; 5] = [
        (LIBRARY_DEFAULT, Some(FASTEST_FLOOR), &|| library_run(&default)),
        (
            "run csv_processor: host library, pooling allocator",
            Some(FASTEST_FLOOR),
            &|| library_run(&pooled),
        ),
        (
            "run csv_processor: host library, on-demand allocator",
            Some(ON_DEMAND_FLOOR),
            &|| library_run(&on_demand),
        ),
        (FASTEST_FLOOR, None, &|| floor_run(&bare_pooled)),
        (ON_DEMAND_FLOOR, Some(FASTEST_FLOOR), &|| floor_run(&bare)),
    ];
    for _ in 0..RUN_SAMPLES / 10 {
        runs.iter().for_each(|(_, _, run)| run());
    }
    let mut samples = vec![Vec::with_capacity(RUN_SAMPLES); runs.len()];
    for _ in 0..RUN_SAMPLES {
        for ((_, _, run), samples) in runs.iter().zip(&mut samples) {
            samples.push(time(run));
        }
    }
    for ((name, baseline, _), samples) in runs.iter().zip(&samples) {
        report_row(name, samples, *baseline, None);
    }
}

/// A row's name, the row it is compared with, and one run.
type Sampled<'a> = (&'a str, Option<&'a str>, &'a dyn Fn());

/// The library as `Runtime::shared()` and `Sandbox::new()` give it.
const LIBRARY_DEFAULT: &str = "run csv_processor: host library, default";
/// The fastest bare Wasmtime embedding: `InstancePre` and the pooling allocator.
const FASTEST_FLOOR: &str = "run csv_processor: bare wasmtime, InstancePre + pooling (floor)";
const ON_DEMAND_FLOOR: &str = "run csv_processor: bare wasmtime, InstancePre, on-demand";

/// The least code that runs a WASI command with Wasmtime and captures its
/// stdout: the module compiled and linked once (`InstancePre`), a store per
/// run; instances from Wasmtime's pooling allocator or mapped on demand.
struct Floor {
    engine: Engine,
    pre: InstancePre<WasiP1Ctx>,
}

impl Floor {
    fn new(path: &Path, pooling: bool) -> Self {
        let mut config = Config::new();
        if pooling {
            config.allocation_strategy(InstanceAllocationStrategy::pooling());
        }
        let engine = Engine::new(&config).unwrap();
        let module = Module::from_file(&engine, path).unwrap();
        let mut linker = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |ctx| ctx).unwrap();
        let pre = linker.instantiate_pre(&module).unwrap();
        Self { engine, pre }
    }

    fn run(&self, stdin: &[u8]) -> Vec<u8> {
        let stdout = MemoryOutputPipe::new(1 << 20);
        let wasi = WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(stdin.to_vec()))
            .stdout(stdout.clone())
            .build_p1();
        let mut store = Store::new(&self.engine, wasi);
        let instance = self.pre.instantiate(&mut store).unwrap();
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
    let runtime = |cache| Runtime::new(&RuntimeConfig::default().cache(cache)).unwrap();
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
            let runtime =
                || Runtime::new(&RuntimeConfig::default().cache(CacheMode::OnDisk(dir.path().to_owned()))).unwrap();
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
