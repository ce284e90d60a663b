//! What the store suites share.

/// Runs each scenario twice, as `<scenario>::memory` and `<scenario>::redis`, on the
/// suite's `Fixture::memory()` and `Fixture::redis()`.
macro_rules! for_both_stores {
    ($($scenario:ident),* $(,)?) => {$(
        mod $scenario {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn memory() {
                super::$scenario(super::Fixture::memory().await).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$scenario(super::Fixture::redis().await).await
            }
        }
    )*};
}
