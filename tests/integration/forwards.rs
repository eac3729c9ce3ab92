//! Port forwards held by the broker, through a real sshd: `-L` carries a TCP echo both ways,
//! `-D` is a SOCKS5 proxy curl uses, binds other machines could reach are refused unless asked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;

use crate::fixture::{Home, Sshd};

/// A TCP echo server on loopback; returns its port.
pub fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for s in l.incoming().take(64).flatten() {
            std::thread::spawn(move || {
                let mut r = s.try_clone().expect("clone");
                let mut w = s;
                let _ = std::io::copy(&mut r, &mut w);
            });
        }
    });
    port
}

/// An HTTP server on loopback that answers every request with `body`; returns its port.
fn http_server(body: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for mut s in l.incoming().take(4).flatten() {
            let mut reader = BufReader::new(s.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn local_and_socks_forwards_carry_traffic_and_outlive_the_cli() {
    let sshd = Sshd::start();
    let home = Home::with_vault();
    home.connect_to(&sshd, "k", "srv");

    let echo = echo_server();
    let f = home
        .run(&[
            "forward",
            "srv",
            "-L",
            &format!("0:127.0.0.1:{echo}"),
            "--json",
        ])
        .ok()
        .json();
    let id = f["forward_id"].as_str().expect("id").to_string();
    assert_eq!(f["bind_address"], "127.0.0.1", "{f}");
    let port = f["bind_port"].as_u64().expect("port");
    // The CLI that asked has exited; the broker carries the connection.
    let mut s = TcpStream::connect(("127.0.0.1", port as u16)).expect("connect to the forward");
    s.write_all(b"ping through sshd\n").expect("write");
    let mut got = [0u8; 18];
    s.read_exact(&mut got).expect("echo back");
    assert_eq!(&got, b"ping through sshd\n");
    drop(s);

    let http = http_server("hello over socks");
    let d = home
        .run(&["forward", "srv", "-D", "0", "--json"])
        .ok()
        .json();
    let socks = d["bind_port"].as_u64().expect("port");
    let out = Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "20",
            "--socks5-hostname",
            &format!("127.0.0.1:{socks}"),
            &format!("http://localhost:{http}/"),
        ])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello over socks");

    let list = home.run(&["forward", "list", "--json"]).ok().json();
    let listed = list
        .as_array()
        .expect("list")
        .iter()
        .find(|x| x["forward_id"] == id.as_str())
        .expect("listed")
        .clone();
    assert!(listed["total"].as_u64() >= Some(1), "{listed}");

    // A bind address other machines can reach needs --allow-public.
    let r = home
        .run(&[
            "forward",
            "srv",
            "-L",
            &format!("0.0.0.0:0:127.0.0.1:{echo}"),
        ])
        .fails();
    assert!(r.stderr.contains("--allow-public"), "{}", r.stderr);

    home.run(&["forward", "close", &id]).ok();
    assert!(
        TcpStream::connect(("127.0.0.1", port as u16)).is_err(),
        "a closed forward no longer listens"
    );
    let audit = home.run(&["audit", "--json"]).ok().stdout;
    assert!(audit.contains("forward_open") && audit.contains("forward_close"));
}
