//! The SOCKS5 side of a dynamic forward (`ssh -D`): the greeting without authentication and
//! the CONNECT request, read from the local client.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads a SOCKS5 greeting (no authentication) and CONNECT request; returns where to connect.
pub async fn request(tcp: &mut TcpStream) -> Result<(String, u16), String> {
    let io = |e: std::io::Error| e.to_string();
    let mut head = [0u8; 2];
    tcp.read_exact(&mut head).await.map_err(io)?;
    if head[0] != 5 {
        return Err("not a SOCKS5 client".into());
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    tcp.read_exact(&mut methods).await.map_err(io)?;
    if !methods.contains(&0) {
        let _ = tcp.write_all(&[5, 0xff]).await;
        return Err("the SOCKS client offers no method without authentication".into());
    }
    tcp.write_all(&[5, 0]).await.map_err(io)?;
    let mut req = [0u8; 4];
    tcp.read_exact(&mut req).await.map_err(io)?;
    if req[1] != 1 {
        // Only CONNECT: answer "command not supported".
        let _ = tcp.write_all(&[5, 7, 0, 1, 0, 0, 0, 0, 0, 0]).await;
        return Err(format!(
            "SOCKS command {} is not supported (only CONNECT)",
            req[1]
        ));
    }
    let host = match req[3] {
        1 => {
            let mut a = [0u8; 4];
            tcp.read_exact(&mut a).await.map_err(io)?;
            std::net::Ipv4Addr::from(a).to_string()
        }
        4 => {
            let mut a = [0u8; 16];
            tcp.read_exact(&mut a).await.map_err(io)?;
            std::net::Ipv6Addr::from(a).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            tcp.read_exact(&mut len).await.map_err(io)?;
            let mut name = vec![0u8; usize::from(len[0])];
            tcp.read_exact(&mut name).await.map_err(io)?;
            String::from_utf8(name).map_err(|_| "the SOCKS host name is not UTF-8".to_string())?
        }
        t => return Err(format!("SOCKS address type {t} is not supported")),
    };
    let mut port = [0u8; 2];
    tcp.read_exact(&mut port).await.map_err(io)?;
    Ok((host, u16::from_be_bytes(port)))
}
