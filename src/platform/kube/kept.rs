//! A connection through a port-forward, kept between the console's reads: reached when first
//! read through, kept while reads answer, reached anew after one fails (the pod may be gone or
//! replaced). An instance's tabs and vitals, and pgBouncer's pools, all read this way.

use super::forward::Forward;

/// What is kept open: a connection and the port-forward it goes through, whose kubelet may say
/// why a read failed.
pub trait Forwarded {
    fn forward(&self) -> &Forward;
}

pub struct Kept<C> {
    open: Option<C>,
}

impl<C> Default for Kept<C> {
    fn default() -> Self {
        Self { open: None }
    }
}

impl<C: Forwarded> Kept<C> {
    /// What `read` makes of the kept connection; `reach` is awaited only when none is open.
    /// A failed read's error says what the port-forward said, and the connection goes.
    pub async fn read<T>(
        &mut self,
        reach: impl Future<Output = Result<C, String>>,
        read: impl AsyncFnOnce(&C) -> Result<T, String>,
    ) -> Result<T, String> {
        let open = match self.open.take() {
            Some(open) => open,
            None => reach.await?,
        };
        let result = read(&open).await.map_err(|e| open.forward().explain(e));
        if result.is_ok() {
            self.open = Some(open);
        }
        result
    }
}
