//! The one bounds check for host reads and writes of guest memory.

use std::ops::Range;

use crate::Error;

/// The byte range `offset..offset + len`, if it lies inside a memory of `size` bytes.
pub(crate) fn checked_range(offset: u64, len: u64, size: usize) -> Result<Range<usize>, Error> {
    let out_of_bounds = || Error::MemoryOutOfBounds {
        offset,
        len,
        size: size as u64,
    };
    let end = offset.checked_add(len).ok_or_else(out_of_bounds)?;
    if end > size as u64 {
        return Err(out_of_bounds());
    }
    Ok(offset as usize..end as usize)
}

#[cfg(test)]
mod tests {
    use super::checked_range;

    #[test]
    fn ranges_inside_memory_pass_and_others_fail() {
        assert_eq!(checked_range(0, 4, 4).unwrap(), 0..4);
        assert_eq!(checked_range(4, 0, 4).unwrap(), 4..4);
        assert!(checked_range(1, 4, 4).is_err());
        assert!(checked_range(5, 0, 4).is_err());
        assert!(checked_range(u64::MAX, 2, 4).is_err());
    }
}
