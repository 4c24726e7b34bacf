//! A connection to a pod, kept between the console's reads: reached when first read through,
//! kept while reads answer, reached anew after one fails (the pod may be gone or replaced). An
//! instance's tabs and vitals, and pgBouncer's pools, all read this way.

/// What is kept open: a connection and the way it goes (a port-forward, whose kubelet may
/// say why a read failed).
pub trait Explains {
    /// `error` from a read, with what the way to the pod said about it.
    fn explain(&self, error: String) -> String;
}

pub struct Kept<C> {
    open: Option<C>,
}

impl<C> Default for Kept<C> {
    fn default() -> Self {
        Self { open: None }
    }
}

impl<C: Explains> Kept<C> {
    /// What `read` makes of the kept connection; `reach` is awaited only when none is open.
    /// A failed read's error says what the way to the pod said, and the connection goes.
    pub async fn read<T>(
        &mut self,
        reach: impl Future<Output = Result<C, String>>,
        read: impl AsyncFnOnce(&C) -> Result<T, String>,
    ) -> Result<T, String> {
        let open = match self.open.take() {
            Some(open) => open,
            None => reach.await?,
        };
        let result = read(&open).await.map_err(|e| open.explain(e));
        if result.is_ok() {
            self.open = Some(open);
        }
        result
    }
}
