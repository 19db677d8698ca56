//! A library-style guest: the host asks it for a buffer with `alloc`, writes
//! a string there, and calls `process` to upper-case it in place.

/// Reserves `len` bytes in guest memory for the host to write into.
#[unsafe(no_mangle)]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    let mut buffer = Vec::<u8>::with_capacity(len);
    let ptr = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    ptr
}

/// Frees a buffer returned by `alloc`.
///
/// # Safety
/// `ptr` and `len` must come from one earlier call to `alloc`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn dealloc(ptr: *mut u8, len: usize) {
    // SAFETY: the caller passes back exactly what `alloc` handed out.
    drop(unsafe { Vec::from_raw_parts(ptr, 0, len) });
}

/// Upper-cases the ASCII letters of `len` bytes at `ptr`, in place, and
/// returns the length of the result.
///
/// # Safety
/// `ptr..ptr + len` must be guest memory the host owns. If it runs past the
/// end of memory the guest traps; the host sees a typed trap, not a crash.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn process(ptr: *mut u8, len: usize) -> usize {
    // SAFETY: see above; wasm bounds-checks every access regardless.
    let bytes = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    bytes.make_ascii_uppercase();
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `process` over a buffer from `alloc`, as the host calls it.
    fn processed(text: &str) -> String {
        let ptr = alloc(text.len());
        // SAFETY: `alloc` gave `text.len()` bytes, freed below.
        unsafe {
            std::ptr::copy_nonoverlapping(text.as_ptr(), ptr, text.len());
            let len = process(ptr, text.len());
            let result = String::from_utf8(std::slice::from_raw_parts(ptr, len).to_vec()).unwrap();
            dealloc(ptr, text.len());
            result
        }
    }

    #[test]
    fn ascii_letters_are_upper_cased_in_place() {
        assert_eq!(processed("hello, World 42"), "HELLO, WORLD 42");
    }

    #[test]
    fn other_characters_are_left_as_they_are() {
        assert_eq!(processed("été ß"), "éTé ß");
        assert_eq!(processed(""), "");
    }
}
