//! A hint to the processor to bring memory into the cache ahead of use.
#![allow(unsafe_code)]

/// Asks for the cache line holding `x` to be loaded; never faults.
#[inline(always)]
pub fn read<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: the instruction needs SSE, which every x86_64 processor has;
    // a prefetch has no effect on memory and cannot fault, and `x` is a
    // valid reference anyway.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (x as *const T).cast::<i8>(),
        )
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}
