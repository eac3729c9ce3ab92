//! `sshkeep mcp --http ADDRESS:PORT`: the same adapter over MCP's Streamable HTTP transport.
//!
//! A TCP port is open to every local process and, through DNS rebinding, to web pages the user
//! visits, where the stdio adapter is reachable only by the process that started it. So each
//! request passes three gates before rmcp sees it:
//! - `Host` must name the loopback address and port it was sent to (a rebound page's request
//!   names the page's own host), unless the user chose `--allow-public`;
//! - an `Origin`, which browsers add and MCP clients do not, must be this server's own;
//! - `Authorization: Bearer TOKEN` must carry a token the user made (`sshkeep mcp token
//!   create`), checked by the broker, which keeps only hashes and audits every refusal.
//!
//! A request then works under its token's profile: there is one rmcp service per profile, whose
//! adapters name that profile in the hello of every broker connection, so a session never changes
//! profile and a session id from one profile is unknown to the others. The token is taken off the
//! request before rmcp sees it, and never logged.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, HOST, HeaderMap, ORIGIN, WWW_AUTHENTICATE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use super::Adapter;
use crate::client::{BrokerError, Client, McpTokenValid};
use crate::paths::Paths;
use crate::protocol::{ErrorCode, Request as BrokerRequest, SecretString};

/// The path MCP clients are given.
pub const PATH: &str = "/mcp";

type Reply = Response<BoxBody<Bytes, Infallible>>;
type Service = StreamableHttpService<Adapter, LocalSessionManager>;

/// Serves MCP over HTTP at `addr` until interrupted. The URL goes to stdout once listening.
pub async fn serve_http(
    paths: Paths,
    minimal: bool,
    roots: Vec<std::path::PathBuf>,
    addr: SocketAddr,
    allow_public: bool,
) -> Result<()> {
    if !addr.ip().is_loopback() && !allow_public {
        bail!(
            "refusing to serve MCP on {addr}: that is not a loopback address, so other machines could reach it; use 127.0.0.1 (or ::1), or add --allow-public if you mean it"
        );
    }
    let adapter = Adapter::new(paths.clone(), minimal, super::absolute_roots(roots)?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let bound = listener.local_addr()?;
    let gate = Arc::new(Gate::new(paths, adapter, bound, allow_public));
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "sshkeep mcp: serving MCP over HTTP at http://{bound}{PATH}"
        )?;
        out.flush()?;
    }
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors, say: wait a little rather than spin.
                    tracing::warn!("cannot accept an HTTP connection: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut interrupted => break,
        };
        let gate = gate.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let gate = gate.clone();
                async move { Ok::<_, Infallible>(gate.handle(req).await) }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!("HTTP connection ended: {e}");
            }
        });
    }
    gate.config.cancellation_token.cancel();
    Ok(())
}

/// What stands between the port and the adapter.
struct Gate {
    paths: Paths,
    /// The adapter every session starts from, under no profile until a token names one.
    adapter: Adapter,
    bound: SocketAddr,
    public: bool,
    config: StreamableHttpServerConfig,
    /// One rmcp service (and its sessions) per profile.
    services: Mutex<HashMap<String, Service>>,
}

impl Gate {
    fn new(paths: Paths, adapter: Adapter, bound: SocketAddr, public: bool) -> Self {
        let config = StreamableHttpServerConfig::default();
        // rmcp checks Host and Origin too: the same rule, said twice.
        let config = if public {
            config.disable_allowed_hosts().disable_allowed_origins()
        } else {
            let port = bound.port();
            let names = ["127.0.0.1", "localhost", "[::1]"];
            config
                .with_allowed_hosts(names.map(|n| format!("{n}:{port}")))
                .with_allowed_origins(names.map(|n| format!("http://{n}:{port}")))
        };
        Self {
            paths,
            adapter,
            bound,
            public,
            config,
            services: Mutex::new(HashMap::new()),
        }
    }

    async fn handle(&self, mut req: Request<Incoming>) -> Reply {
        if let Err(why) = self.same_origin(req.headers()) {
            return text(StatusCode::FORBIDDEN, why);
        }
        if req.uri().path() != PATH {
            return text(
                StatusCode::NOT_FOUND,
                format!("sshkeep serves MCP at {PATH}"),
            );
        }
        let token = bearer(req.headers());
        // The token goes no further than the broker.
        req.headers_mut().remove(AUTHORIZATION);
        let profile = match self.check(token).await {
            Ok(valid) => valid.profile,
            Err(reply) => return *reply,
        };
        let service = match self.services.lock() {
            Ok(mut services) => services
                .entry(profile.clone())
                .or_insert_with(|| {
                    let adapter = self.adapter.clone().under(Some(profile));
                    StreamableHttpService::new(
                        move || Ok(adapter.clone()),
                        Arc::new(LocalSessionManager::default()),
                        self.config.clone(),
                    )
                })
                .clone(),
            Err(_) => {
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the adapter's session table is unusable: restart `sshkeep mcp --http`",
                );
            }
        };
        service.handle(req).await
    }

    /// `Host` names this server (DNS rebinding), and an `Origin`, if any, is this server's.
    fn same_origin(&self, headers: &HeaderMap) -> Result<(), String> {
        let host = headers.get(HOST).and_then(|h| h.to_str().ok());
        if !self.public {
            let authority = host.and_then(|h| h.parse::<hyper::http::uri::Authority>().ok());
            let named = authority.as_ref().is_some_and(|a| {
                a.port_u16() == Some(self.bound.port())
                    && matches!(
                        a.host().to_ascii_lowercase().as_str(),
                        "127.0.0.1" | "localhost" | "[::1]"
                    )
            });
            if !named {
                return Err(format!(
                    "refused: the Host header must name this server (127.0.0.1:{} or localhost:{}); a request naming another host is a DNS rebinding attempt",
                    self.bound.port(),
                    self.bound.port()
                ));
            }
        }
        if let Some(origin) = headers.get(ORIGIN) {
            let ours = host.map(|h| format!("http://{h}"));
            let same = origin
                .to_str()
                .ok()
                .zip(ours.as_deref())
                .is_some_and(|(o, ours)| o.eq_ignore_ascii_case(ours));
            if !same {
                return Err(
                    "refused: a web page from another origin may not call this MCP server".into(),
                );
            }
        }
        Ok(())
    }

    /// The broker's word on the token: which profile it works under, or the reply that refuses
    /// the request (401 for a token that does not pass, 503 when the broker cannot say).
    async fn check(&self, token: SecretString) -> Result<McpTokenValid, Box<Reply>> {
        let asked = async {
            Client::connect(&self.paths, None)
                .await?
                .call::<McpTokenValid>(&BrokerRequest::McpTokenCheck { token })
                .await
        };
        asked.await.map_err(|e| {
            let refused = e
                .downcast_ref::<BrokerError>()
                .is_some_and(|b| b.code == ErrorCode::PermissionDenied);
            Box::new(if refused {
                let mut r = text(
                    StatusCode::UNAUTHORIZED,
                    "a bearer token is required: the user makes one with `sshkeep mcp token create NAME --profile P` and the client sends `Authorization: Bearer TOKEN`",
                );
                r.headers_mut().insert(
                    WWW_AUTHENTICATE,
                    hyper::header::HeaderValue::from_static("Bearer"),
                );
                r
            } else {
                tracing::warn!("cannot check a bearer token with the broker: {e:#}");
                text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("the broker cannot check the token: {e:#}"),
                )
            })
        })
    }
}

/// The token of an `Authorization: Bearer TOKEN` header; empty when there is none.
fn bearer(headers: &HeaderMap) -> SecretString {
    let text = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .unwrap_or_default();
    SecretString::new(text.to_string())
}

fn text(status: StatusCode, body: impl Into<String>) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from(body.into() + "\n")).boxed());
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                hyper::header::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                v.parse().expect("value"),
            );
        }
        h
    }

    fn gate(public: bool) -> Gate {
        let paths = Paths::under(std::path::Path::new("/nonexistent"));
        let adapter = Adapter::new(paths.clone(), false, Vec::new());
        Gate::new(
            paths,
            adapter,
            "127.0.0.1:4242".parse().expect("addr"),
            public,
        )
    }

    #[test]
    fn only_this_servers_host_and_origin_pass() {
        let g = gate(false);
        assert!(
            g.same_origin(&headers(&[("host", "127.0.0.1:4242")]))
                .is_ok()
        );
        assert!(
            g.same_origin(&headers(&[("host", "localhost:4242")]))
                .is_ok()
        );
        assert!(
            g.same_origin(&headers(&[
                ("host", "localhost:4242"),
                ("origin", "http://localhost:4242")
            ]))
            .is_ok()
        );
        // DNS rebinding: the page's own name, or no Host at all.
        assert!(
            g.same_origin(&headers(&[("host", "evil.example:4242")]))
                .is_err()
        );
        assert!(
            g.same_origin(&headers(&[("host", "127.0.0.1:80")]))
                .is_err()
        );
        assert!(g.same_origin(&HeaderMap::new()).is_err());
        for origin in ["http://evil.example", "null", "https://127.0.0.1:4242"] {
            let h = headers(&[("host", "127.0.0.1:4242"), ("origin", origin)]);
            assert!(g.same_origin(&h).is_err(), "{origin}");
        }
        // --allow-public: any Host, still only its own Origin.
        let p = gate(true);
        assert!(p.same_origin(&headers(&[("host", "box.lan:4242")])).is_ok());
        let h = headers(&[("host", "box.lan:4242"), ("origin", "http://evil.example")]);
        assert!(p.same_origin(&h).is_err());
    }

    #[test]
    fn the_bearer_token_is_read_from_its_header_only() {
        let h = headers(&[("authorization", "Bearer skp_abc")]);
        assert_eq!(bearer(&h).expose(), "skp_abc");
        let h = headers(&[("authorization", "bearer  skp_abc ")]);
        assert_eq!(bearer(&h).expose(), "skp_abc");
        assert!(bearer(&headers(&[("authorization", "Basic eDp5")])).is_empty());
        assert!(bearer(&HeaderMap::new()).is_empty());
    }
}
