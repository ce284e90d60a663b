//! A child process's output, read line by line in the background so that the child
//! never blocks on a full pipe, for a test to wait for one line after another.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

pub struct LogLines {
    lines: mpsc::UnboundedReceiver<String>,
}

impl LogLines {
    /// Reads `output` to its end in a background task; the lines wait for
    /// [`LogLines::wait_for`] (and are dropped once this is).
    pub fn read<R>(output: R) -> Self
    where
        R: AsyncRead + Unpin + Send + 'static,
    {
        let (sender, lines) = mpsc::unbounded_channel();
        let mut reader = BufReader::new(output).lines();
        tokio::spawn(async move {
            while let Ok(Some(line)) = reader.next_line().await {
                let _ = sender.send(line);
            }
        });
        Self { lines }
    }

    /// Waits until a line not read yet contains `needle`, for at most `within`; the
    /// lines before it are passed over. False if the output ended, or the time passed,
    /// first.
    pub async fn wait_for(&mut self, needle: &str, within: Duration) -> bool {
        let found = async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(needle) {
                    return true;
                }
            }
            false
        };
        tokio::time::timeout(within, found).await.unwrap_or(false)
    }
}
