//! Length-prefixed JSON frames over any async byte stream.
//!
//! Buffers are zeroized after use because requests may carry secrets (key imports, passphrases).

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
    let mut buf = Zeroizing::new(vec![0u8; len]);
    r.read_exact(&mut buf).await?;
    // The serde error names a position and an expectation, never the input's content.
    serde_json::from_slice(&buf).map_err(|e| FrameError::Malformed(e.to_string()))
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
