//! Request handling, the broker's top layer: the client connection loop, the one door every
//! request comes through (hello, admission), and the routes to the features. Nothing below this
//! layer imports it.

mod admission;
mod approvals;
pub mod connection;
mod door;
mod person;
mod reach;
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
    /// Requests held for the user's approval.
    pub waiting: approvals::Holds,
}

impl App {
    /// The app around `core`, with no shells or forwards yet.
    pub fn new(core: Arc<Core>) -> Arc<Self> {
        Arc::new(Self {
            core,
            shells: Arc::default(),
            forwards: Arc::default(),
            waiting: approvals::Holds::default(),
        })
    }

    /// At broker start: requests an earlier broker held expire; then they are swept while it runs.
    pub fn start_approvals(self: &Arc<Self>) {
        approvals::expire_after_restart(&self.core);
        tokio::spawn(approvals::sweeper(self.clone()));
    }
}
