//! [`Buf`]: per-decision scratch space on the stack when it is small.
//!
//! A prepared decision inside the component allocates a handful of short
//! lists (the resources' names, limits and amounts, the path's nodes, the
//! constraints); in the guest each allocation and free is a call into its
//! allocator, which showed as a tenth of the decision. Requests name a few
//! resources and paths are short, so these fit on the stack; larger ones
//! still work, on the heap.

use std::ops::{Deref, DerefMut};

/// `len` values, initially `fill`: inline when `len <= N`, else on the heap.
pub(crate) struct Buf<T: Copy, const N: usize> {
    inline: [T; N],
    heap: Vec<T>,
    len: usize,
}

impl<T: Copy, const N: usize> Buf<T, N> {
    pub fn new(len: usize, fill: T) -> Self {
        Buf {
            inline: [fill; N],
            heap: if len > N { vec![fill; len] } else { Vec::new() },
            len,
        }
    }
}

impl<T: Copy, const N: usize> Deref for Buf<T, N> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        if self.len > N {
            &self.heap
        } else {
            &self.inline[..self.len]
        }
    }
}

impl<T: Copy, const N: usize> DerefMut for Buf<T, N> {
    fn deref_mut(&mut self) -> &mut [T] {
        if self.len > N {
            &mut self.heap
        } else {
            &mut self.inline[..self.len]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Buf;

    #[test]
    fn small_and_large_buffers_hold_what_is_written() {
        for len in [0, 1, 4, 5, 100] {
            let mut buf: Buf<usize, 4> = Buf::new(len, 7);
            assert_eq!(buf.len(), len);
            assert!(buf.iter().all(|&v| v == 7));
            for (i, v) in buf.iter_mut().enumerate() {
                *v = i;
            }
            assert_eq!(buf.to_vec(), (0..len).collect::<Vec<_>>());
        }
    }
}
