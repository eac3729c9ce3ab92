//! Length-prefixed JSON frames over any async byte stream.
//!
//! Buffers are zeroized after use because requests may carry secrets (key imports, passphrases).
//!
//! A frame's body is read in steps as its bytes arrive, not allocated whole from its header, and
//! all connections together may hold at most [`MAX_PENDING`] bytes of frames still arriving: a
//! client that announces large frames and sends them slowly cannot make the broker's memory
//! grow past that.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use zeroize::Zeroizing;

use crate::protocol::MAX_FRAME;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the stream between frames.
    #[error("connection closed")]
    Closed,
    /// The length prefix exceeds [`MAX_FRAME`]; the stream cannot be resynchronised.
    #[error("frame of {0} bytes is larger than the {MAX_FRAME}-byte limit")]
    TooLarge(usize),
    /// Frames still arriving on all connections already hold [`MAX_PENDING`] bytes; the stream
    /// cannot be resynchronised.
    #[error(
        "the broker is holding {MAX_PENDING} bytes of requests still arriving; send this one again later"
    )]
    Busy,
    /// The frame is not valid JSON for the expected type; the stream is still in sync.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// I/O failure.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one frame and parses it.
pub async fn read_frame<T: DeserializeOwned, R: AsyncRead + Unpin>(
    r: &mut R,
) -> Result<T, FrameError> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    let buf = read_body(r, len).await?;
    // The serde error names a position and an expectation, never the input's content.
    serde_json::from_slice(&buf).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Bytes of frames still arriving, over all connections, at most.
pub const MAX_PENDING: usize = 64 * 1024 * 1024;
/// The most a frame's buffer grows by before the bytes to fill it have arrived.
const STEP: usize = 64 * 1024;

static PENDING: AtomicUsize = AtomicUsize::new(0);

/// A share of [`MAX_PENDING`], given back on drop.
struct Held(usize);

impl Held {
    fn take(&mut self, n: usize) -> Result<(), FrameError> {
        let before = PENDING.fetch_add(n, Ordering::SeqCst);
        if before + n > MAX_PENDING {
            PENDING.fetch_sub(n, Ordering::SeqCst);
            return Err(FrameError::Busy);
        }
        self.0 += n;
        Ok(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        PENDING.fetch_sub(self.0, Ordering::SeqCst);
    }
}

/// Reads a body of `len` bytes in steps. The buffer grows by copying into a larger zeroizing
/// one (a `Vec` reallocation would leave the old bytes behind unzeroized).
async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, FrameError> {
    let mut held = Held(0);
    let mut buf = Zeroizing::new(Vec::new());
    while buf.len() < len {
        let step = (len - buf.len()).min(STEP);
        held.take(step)?;
        if buf.capacity() < buf.len() + step {
            let cap = (buf.len() + step).max(buf.capacity() * 2).min(len);
            let mut bigger = Zeroizing::new(Vec::with_capacity(cap));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        let start = buf.len();
        buf.resize(start + step, 0);
        match r.read_exact(&mut buf[start..]).await {
            Ok(_) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(buf)
}

/// Serializes and writes one frame.
pub async fn write_frame<T: Serialize, W: AsyncWrite + Unpin>(
    w: &mut W,
    msg: &T,
) -> Result<(), FrameError> {
    let body =
        Zeroizing::new(serde_json::to_vec(msg).map_err(|e| FrameError::Malformed(e.to_string()))?);
    if body.len() > MAX_FRAME {
        return Err(FrameError::TooLarge(body.len()));
    }
    let mut out = Zeroizing::new(Vec::with_capacity(body.len() + 4));
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    w.write_all(&out).await?;
    w.flush().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::Request;

    #[tokio::test]
    async fn round_trip_and_limits() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &Request::Status)
            .await
            .expect("write");
        let got: Request = read_frame(&mut buf.as_slice()).await.expect("read");
        assert!(matches!(got, Request::Status));

        let huge = ((MAX_FRAME + 1) as u32).to_be_bytes();
        let err = read_frame::<Request, _>(&mut huge.as_slice())
            .await
            .expect_err("too large");
        assert!(matches!(err, FrameError::TooLarge(_)));

        let mut bad = 5u32.to_be_bytes().to_vec();
        bad.extend_from_slice(b"{nope");
        let err = read_frame::<Request, _>(&mut bad.as_slice())
            .await
            .expect_err("malformed");
        assert!(matches!(err, FrameError::Malformed(_)));

        let err = read_frame::<Request, _>(&mut [].as_slice())
            .await
            .expect_err("closed");
        assert!(matches!(err, FrameError::Closed));
    }
}
