//! Request handling, the broker's top layer: the client connection loop, the one door every
//! request comes through (hello, admission), and the routes to the features. Nothing below this
//! layer imports it.

pub mod connection;
mod door;
mod routes;
mod streaming;

use std::sync::Arc;

use crate::broker::core::Core;
use crate::broker::forwards::Forwards;
use crate::broker::shells::Shells;

/// What requests are served with: the core, and the state features keep for themselves.
pub struct App {
    pub core: Arc<Core>,
    pub shells: Arc<Shells>,
    pub forwards: Arc<Forwards>,
}

impl App {
    /// The app around `core`, with no shells or forwards yet.
    pub fn new(core: Arc<Core>) -> Arc<Self> {
        Arc::new(Self {
            core,
            shells: Arc::default(),
            forwards: Arc::default(),
        })
    }
}
