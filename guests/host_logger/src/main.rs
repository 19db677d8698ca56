//! Calls the host's `host.log` import once, with "hello".

#[link(wasm_import_module = "host")]
unsafe extern "C" {
    #[link_name = "log"]
    fn host_log(ptr: *const u8, len: usize);
}

fn main() {
    let message = "hello";
    // SAFETY: the pointer and length describe a live string in our memory.
    unsafe { host_log(message.as_ptr(), message.len()) };
}
