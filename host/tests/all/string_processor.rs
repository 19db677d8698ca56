//! Scenario 2: a library-style Rust guest that upper-cases a buffer the
//! host asked it to allocate.

use host::{Error, GuestInstance, Sandbox, TrapKind};

use crate::support;

fn processor() -> GuestInstance {
    Sandbox::new()
        .instantiate(&support::modules::string_processor())
        .unwrap()
}

/// Copies `input` into a guest buffer from `alloc`, runs `process`, reads the result.
fn process(guest: &mut GuestInstance, input: &[u8]) -> Result<Vec<u8>, Error> {
    let ptr: i32 = guest.call("alloc", input.len() as i32)?;
    guest.write_memory(ptr as u32 as u64, input)?;
    let len: i32 = guest.call("process", (ptr, input.len() as i32))?;
    let output = guest.read_memory(ptr as u32 as u64, len as u32 as u64)?;
    guest.call::<(i32, i32), ()>("dealloc", (ptr, input.len() as i32))?;
    Ok(output)
}

#[test]
fn hello_world_is_upper_cased() {
    assert_eq!(process(&mut processor(), b"hello world").unwrap(), b"HELLO WORLD");
}

#[test]
fn empty_input_gives_empty_output() {
    assert_eq!(process(&mut processor(), b"").unwrap(), b"");
}

#[test]
fn the_buffer_comes_from_the_guest_not_offset_zero() {
    let mut guest = processor();
    let ptr: i32 = guest.call("alloc", 64).unwrap();
    assert_ne!(ptr, 0, "alloc hands out a real heap address");
    // Several calls on one instance: the guest's allocator keeps working.
    for word in [&b"abc"[..], b"MiXeD 123", b"z"] {
        assert_eq!(process(&mut guest, word).unwrap(), word.to_ascii_uppercase());
    }
}

#[test]
fn a_length_past_the_end_of_memory_traps_in_the_guest() {
    let mut guest = processor();
    let size = guest.memory_size().unwrap();
    let ptr = (size - 8) as i32;
    let error = guest.call::<(i32, i32), i32>("process", (ptr, 64)).unwrap_err();
    match error {
        Error::Trap { trap, .. } => assert_eq!(trap.kind, TrapKind::MemoryOutOfBounds, "{trap}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    // The host is unharmed and the instance still answers.
    assert_eq!(process(&mut guest, b"still fine").unwrap(), b"STILL FINE");
}

#[test]
fn host_reads_past_the_end_of_memory_are_errors() {
    let mut guest = processor();
    let size = guest.memory_size().unwrap();
    let error = guest.read_memory(size - 2, 10).unwrap_err();
    assert!(
        matches!(error, Error::MemoryOutOfBounds { offset, len: 10, size: s } if offset == size - 2 && s == size),
        "{error:?}"
    );
    assert!(matches!(
        guest.write_memory(u64::MAX, b"x"),
        Err(Error::MemoryOutOfBounds { .. })
    ));
}
